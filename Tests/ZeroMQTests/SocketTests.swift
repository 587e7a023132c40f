import Testing

@testable import ZeroMQ

@Suite struct SocketTests {
    let context: Context

    init() throws {
        context = try Context()
    }

    @Test("REQ/REP round trip over tcp", .timeLimit(.minutes(1)))
    func reqRepTCP() throws {
        let rep = try bound(context, .rep)
        let endpoint = try rep.lastEndpoint
        let req = try Socket(context, type: .req)
        try req.connect(endpoint)
        try req.send(["ping".bytes])
        #expect(try receive(rep) == ["ping".bytes])
        try rep.send(["pong".bytes])
        #expect(try receive(req) == ["pong".bytes])
    }

    @Test("REQ/REP round trip over ipc", .timeLimit(.minutes(1)))
    func reqRepIPC() throws {
        let path = "ipc:///tmp/\(uniqueName("jobwire-zmq-test"))"
        let rep = try bound(context, .rep, transport: path)
        let endpoint = try rep.lastEndpoint
        #expect(endpoint == path)
        let req = try Socket(context, type: .req)
        try req.connect(endpoint)
        try req.send(["over ipc".bytes])
        #expect(try receive(rep) == ["over ipc".bytes])
        try rep.send(["ok".bytes])
        #expect(try receive(req) == ["ok".bytes])
    }

    @Test("a REQ socket refuses to send twice in a row with stateMismatch")
    func reqStateMachine() throws {
        let rep = try bound(context, .rep)
        let endpoint = try rep.lastEndpoint
        let req = try Socket(context, type: .req)
        try req.connect(endpoint)
        try req.send(["one".bytes])
        #expect(throws: ZMQError.stateMismatch) { try req.send(["two".bytes]) }
        _ = rep
    }

    @Test("multipart messages keep every frame, including empty ones, in order", .timeLimit(.minutes(1)))
    func multipart() throws {
        let name = "inproc://\(uniqueName("multipart"))"
        let pull = try bound(context, .pull, transport: name)
        let push = try Socket(context, type: .push)
        try push.connect(name)
        let frames: [[UInt8]] = ["header".bytes, [], [0, 1, 2, 255], "tail".bytes]
        try push.send(frames)
        #expect(try receive(pull) == frames)

        // Frame by frame, with `more`, from an array, a slice and a UTF-8 view.
        try push.send("a".bytes, more: true)
        try push.send("xbx".bytes.dropFirst().dropLast(), more: true)
        try push.send("c".utf8)
        let first = try #require(try pull.receiveFrame())
        #expect(first.bytes == "a".bytes && first.more)
        let second = try #require(try pull.receiveFrame())
        #expect(second.bytes == "b".bytes && second.more)
        let third = try #require(try pull.receiveFrame())
        #expect(third.bytes == "c".bytes && !third.more)
    }

    @Test("a 1 MiB frame arrives intact over tcp", .timeLimit(.minutes(1)))
    func largeFrame() throws {
        let pull = try bound(context, .pull)
        let endpoint = try pull.lastEndpoint
        let push = try Socket(context, type: .push)
        try push.connect(endpoint)
        let big = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try push.send([big, "end".bytes])
        let received = try receive(pull)
        #expect(received.count == 2)
        #expect(received.first == big)
    }

    @Test("non-blocking receive returns nil when nothing is pending")
    func nonBlockingReceive() throws {
        let pull = try bound(context, .pull)
        #expect(try pull.receiveMultipart(dontWait: true) == nil)
        #expect(try pull.receiveFrame(dontWait: true) == nil)
        #expect(try pull.hasPendingInput == false)
    }

    @Test("a dontWait send returns false once the high-water mark is full", .timeLimit(.minutes(1)))
    func fullHighWaterMark() throws {
        let name = "inproc://\(uniqueName("hwm"))"
        let pull = try Socket(context, type: .pull)
        try pull.set(.receiveHighWaterMark, 5)
        try pull.bind(name)
        let push = try Socket(context, type: .push)
        try push.set(.sendHighWaterMark, 5)
        try push.connect(name)
        var sent = 0
        while try push.send(["x".bytes], dontWait: true) {
            sent += 1
            if sent >= 100_000 {
                Issue.record("the high-water mark never pushed back")
                return
            }
        }
        // inproc adds both sides' marks: 5 + 5.
        #expect(sent == 10)
        #expect(try push.canSend == false)
        // Draining the queue lets messages through again.
        for _ in 0..<sent {
            #expect(try pull.receiveMultipart() == ["x".bytes])
        }
        // The reader's "go ahead" is a command that a send processes only every ~1 ms; asking
        // for ZMQ_EVENTS (as a poll does) processes it at once.
        #expect(try push.canSend)
        #expect(try push.send(["y".bytes], dontWait: true))
    }

    @Test("a receive timeout surfaces as wouldBlock")
    func receiveTimeout() throws {
        let pull = try bound(context, .pull)
        try pull.set(.receiveTimeout, .milliseconds(20))
        #expect(throws: ZMQError.wouldBlock) { try pull.receiveMultipart() }
    }

    @Test("options read back what was set")
    func options() throws {
        let socket = try Socket(context, type: .router)
        #expect(try socket.get(.linger) == .zero)
        try socket.set(.linger, nil)
        #expect(try socket.get(.linger) == nil)
        try socket.set(.linger, .milliseconds(1500))
        #expect(try socket.get(.linger) == .milliseconds(1500))
        try socket.set(.sendHighWaterMark, 12_345)
        #expect(try socket.get(.sendHighWaterMark) == 12_345)
        try socket.set(.receiveHighWaterMark, 77)
        #expect(try socket.get(.receiveHighWaterMark) == 77)
        try socket.set(.maxMessageSize, 4096)
        #expect(try socket.get(.maxMessageSize) == 4096)
        try socket.set(.maxMessageSize, nil)
        #expect(try socket.get(.maxMessageSize) == nil)
        try socket.set(.heartbeatInterval, .seconds(2))
        #expect(try socket.get(.heartbeatInterval) == .seconds(2))
        try socket.set(.heartbeatTimeout, .seconds(6))
        #expect(try socket.get(.heartbeatTimeout) == .seconds(6))
        try socket.set(.heartbeatTTL, .seconds(10))
        #expect(try socket.get(.heartbeatTTL) == .seconds(10))
        try socket.set(.reconnectInterval, .milliseconds(250))
        #expect(try socket.get(.reconnectInterval) == .milliseconds(250))
        try socket.set(.reconnectIntervalMax, .seconds(5))
        #expect(try socket.get(.reconnectIntervalMax) == .seconds(5))
        try socket.set(.receiveTimeout, .microseconds(1))  // rounds up, never to "don't wait"
        #expect(try socket.get(.receiveTimeout) == .milliseconds(1))
        try socket.set(.sendTimeout, nil)
        #expect(try socket.get(.sendTimeout) == nil)
        try socket.set(.tcpKeepalive, true)
        #expect(try socket.get(.tcpKeepalive) == true)
        try socket.set(.tcpKeepalive, nil)
        #expect(try socket.get(.tcpKeepalive) == nil)
        try socket.set(.immediate, true)
        #expect(try socket.get(.immediate) == true)
        try socket.set(.routingId, "worker-1".bytes)
        #expect(try socket.get(.routingId) == "worker-1".bytes)
        try socket.set(.zapDomain, "jobwire")
        #expect(try socket.get(.zapDomain) == "jobwire")
        try socket.set(.routerMandatory, true)
        try socket.set(.routerHandover, true)
        #expect(socket.type == .router)
    }

    @Test("unbind and disconnect undo bind and connect; unknown endpoints are noEntry")
    func unbindDisconnect() throws {
        let pull = try bound(context, .pull)
        let endpoint = try pull.lastEndpoint
        let push = try Socket(context, type: .push)
        try push.connect(endpoint)
        try push.disconnect(endpoint)
        #expect(throws: ZMQError.noEntry) { try push.disconnect(endpoint) }
        try pull.unbind(endpoint)
        #expect(throws: ZMQError.noEntry) { try pull.unbind(endpoint) }
    }
}
