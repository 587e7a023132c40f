import Foundation
import Testing
import ZeroMQ

@Suite struct PollerTests {
    let context: Context

    init() throws {
        context = try Context()
    }

    @Test("poll times out with nothing ready, then reports a readable socket", .timeLimit(.minutes(1)))
    func wakesOnSocket() throws {
        let name = "inproc://\(uniqueName("poller"))"
        let pull = try bound(context, .pull, transport: name)
        let push = try Socket(context, type: .push)
        try push.connect(name)

        var poller = Poller()
        let index = poller.add(pull)
        #expect(try poller.poll(timeout: .milliseconds(20)) == 0)
        #expect(poller.events(at: index).isEmpty)

        try push.send(["wake".bytes])
        #expect(try poller.poll(timeout: .seconds(5)) == 1)
        #expect(poller.events(at: index) == .readable)
        #expect(try pull.receiveMultipart(dontWait: true) == ["wake".bytes])
    }

    @Test("poll wakes when another thread writes to a pipe", .timeLimit(.minutes(1)))
    func wakesOnFileDescriptor() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let pull = try bound(context, .pull)
        var poller = Poller()
        let socketIndex = poller.add(pull)
        let pipeIndex = poller.add(fileDescriptor: fds[0], events: .readable)

        let writeEnd = fds[1]
        let writer = Thread {
            usleep(20_000)
            var byte: UInt8 = 1
            _ = write(writeEnd, &byte, 1)
        }
        writer.start()
        #expect(try poller.poll(timeout: .seconds(5)) == 1)
        #expect(poller.events(at: pipeIndex).contains(.readable))
        #expect(poller.events(at: socketIndex).isEmpty)
    }

    @Test("a writable PUSH with a peer polls as writable")
    func writable() throws {
        let name = "inproc://\(uniqueName("writable"))"
        let pull = try bound(context, .pull, transport: name)
        let push = try Socket(context, type: .push)
        var poller = Poller()
        let index = poller.add(push, events: .writable)
        // No peer yet: a PUSH cannot send.
        #expect(try poller.poll(timeout: .zero) == 0)
        try push.connect(name)
        #expect(try poller.poll(timeout: .seconds(5)) == 1)
        #expect(poller.events(at: index) == .writable)
        _ = pull
    }
}
