import JobwireProtocol
import ZeroMQ

/// A ROUTER on a loopback port that takes requests and never answers: a broker that dies before it replies.
public final class SilentBroker: Sendable {
    /// Where it listens, `tcp://127.0.0.1:PORT`.
    public let endpoint: String
    private let socket: AsyncSocket
    private let received: Locked<[RPCRequest]>
    private let reader: Task<Void, Never>

    static let context: Context = {
        // Failing here means the process cannot open file descriptors at all.
        try! Context()
    }()

    public init() throws {
        var bound = ""
        socket = try AsyncSocket(context: Self.context, type: .router) { socket in
            try socket.set(.linger, .zero)
            try socket.bind("tcp://127.0.0.1:*")
            bound = try socket.lastEndpoint
        }
        endpoint = bound
        let received = Locked<[RPCRequest]>([])
        self.received = received
        reader = Task { [socket] in
            do {
                for try await frames in socket.messages {
                    guard let body = frames.last, case .success(let request) = RPCRequest.decode(body) else { continue }
                    received.withLock { $0.append(request) }
                }
            } catch {}
        }
    }

    /// The methods of the requests received so far, in order.
    public var methods: [String] { received.withLock { $0.map(\.method) } }

    /// Closes its socket: its clients see the connection drop.
    public func close() async {
        reader.cancel()
        await socket.close()
    }

    /// A loopback port nothing listens on now, for a broker to start on later (`tcp://127.0.0.1:PORT`).
    public static func freeEndpoint() throws -> String {
        let socket = try Socket(context, type: .router)
        try socket.set(.linger, .zero)
        try socket.bind("tcp://127.0.0.1:*")
        let endpoint = try socket.lastEndpoint
        socket.close()
        return endpoint
    }
}
