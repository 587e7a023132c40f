import Testing

@testable import ZeroMQ

@Suite struct MonitorTests {
    @Test("a monitor reports a connection's descriptor when accepted and when closed; its frames carry it")
    func acceptedAndDisconnected() throws {
        let context = try Context()
        let router = try bound(context, .router)
        try router.monitor("inproc://monitor-test", events: [.accepted, .disconnected])
        let events = try Socket(context, type: .pair)
        try events.set(.receiveTimeout, .seconds(10))
        try events.connect("inproc://monitor-test")
        let dealer = try Socket(context, type: .dealer)
        try dealer.set(.linger, .zero)
        try dealer.connect(try router.lastEndpoint)
        try dealer.send([[], "hello".bytes])
        let first = try events.receiveMultipart() ?? []
        let accepted = try #require(SocketEvent(frames: first))
        #expect(accepted.event == .accepted)
        #expect(try receive(router).count == 3)
        #expect(router.lastFrameDescriptor() == Int32(bitPattern: accepted.value))
        dealer.close()
        let second = try events.receiveMultipart() ?? []
        let closed = try #require(SocketEvent(frames: second))
        #expect(closed.event == .disconnected)
        #expect(closed.value == accepted.value)
    }
}
