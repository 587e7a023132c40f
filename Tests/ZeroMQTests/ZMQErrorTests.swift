import Testing
import ZeroMQ

@Suite struct ZMQErrorTests {
    let context: Context

    init() throws {
        context = try Context()
    }

    @Test("malformed endpoints map to named errors")
    func badEndpoints() throws {
        let socket = try Socket(context, type: .dealer)
        #expect(throws: ZMQError.invalidArgument) { try socket.connect("no-transport-here") }
        #expect(throws: ZMQError.protocolNotSupported) { try socket.connect("carrier-pigeon://home") }
        #expect(throws: ZMQError.invalidArgument) { try socket.connect("tcp://") }
    }

    @Test("binding a port twice is addressInUse")
    func addressInUse() throws {
        let first = try bound(context, .rep)
        let endpoint = try first.lastEndpoint
        let second = try Socket(context, type: .rep)
        #expect(throws: ZMQError.addressInUse) { try second.bind(endpoint) }
        _ = first
    }

    @Test("catch ZMQError.wouldBlock matches through any Error")
    func catchPattern() throws {
        let pull = try bound(context, .pull)
        try pull.set(.receiveTimeout, .milliseconds(1))
        var caught = false
        do {
            // An untyped throw, as application code sees it.
            let error: any Error = try #require(throws: ZMQError.self) { _ = try pull.receiveMultipart() }
            throw error
        } catch ZMQError.wouldBlock {
            caught = true
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(caught)
    }

    @Test("sending on a SUB socket is notSupported")
    func notSupported() throws {
        let sub = try Socket(context, type: .sub)
        #expect(throws: ZMQError.notSupported) { try sub.send(["x".bytes]) }
    }

    @Test("an error describes itself with libzmq's text")
    func description() {
        #expect(ZMQError.contextTerminated.message == "Context was terminated")
        #expect(ZMQError.wouldBlock.description.contains("Resource temporarily unavailable"))
        #expect(ZMQError.stateMismatch != ZMQError.wouldBlock)
    }
}
