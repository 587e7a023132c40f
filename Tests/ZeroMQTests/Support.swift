import Testing
import ZeroMQ

/// A socket of `type` bound to a fresh loopback port (read it back with `lastEndpoint`).
func bound(_ context: Context, _ type: SocketType, transport: String = "tcp://127.0.0.1:*") throws -> Socket {
    let socket = try Socket(context, type: type)
    try socket.bind(transport)
    return socket
}

/// Receives one multipart message, failing the test instead of waiting forever.
func receive(_ socket: borrowing Socket, within timeout: Duration = .seconds(5)) throws -> [[UInt8]] {
    var poller = Poller()
    poller.add(socket)
    guard try poller.poll(timeout: timeout) > 0 else {
        throw TestTimeout()
    }
    return try #require(try socket.receiveMultipart(dontWait: true))
}

struct TestTimeout: Error {}

extension String {
    var bytes: [UInt8] { Array(utf8) }
}

extension Array where Element == UInt8 {
    var text: String { String(decoding: self, as: UTF8.self) }
}

/// A unique name for `inproc://` and `ipc://` endpoints, so parallel tests never collide.
func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UInt64.random(in: 0...UInt64.max))"
}
