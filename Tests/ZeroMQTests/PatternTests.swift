import Synchronization
import Testing
import ZeroMQ

@Suite struct PatternTests {
    let context: Context

    init() throws {
        context = try Context()
    }

    @Test("a SUB gets the topics it subscribed to and not the others", .timeLimit(.minutes(1)))
    func pubSubPrefixFiltering() throws {
        let pub = try bound(context, .pub)
        let sub = try Socket(context, type: .sub)
        try sub.subscribe("job:ready/")
        try sub.connect(try pub.lastEndpoint)

        // Slow joiner: the subscription reaches the publisher some time after connect, so publish
        // until the first message gets through.
        var poller = Poller()
        poller.add(sub)
        var first: [[UInt8]]?
        for _ in 0..<500 where first == nil {
            try pub.send(["job:ready/warmup/".bytes, "{}".bytes])
            if try poller.poll(timeout: .milliseconds(10)) > 0 {
                first = try sub.receiveMultipart(dontWait: true)
            }
        }
        #expect(first?.first == "job:ready/warmup/".bytes)
        while try sub.receiveMultipart(dontWait: true) != nil {}  // drop extra warm-ups

        try pub.send(["job:updated/workbook:export/".bytes, "1".bytes])
        try pub.send(["job:ready/workbook:export/".bytes, "2".bytes])
        try pub.send(["job:readyish/".bytes, "3".bytes])
        try pub.send(["job:ready/sheet:validate/".bytes, "4".bytes])
        try pub.send(["job:ready/end/".bytes, "end".bytes])

        var seen: [String] = []
        while true {
            let message = try receive(sub)
            seen.append(message[1].text)
            if message[1] == "end".bytes { break }
        }
        #expect(seen == ["2", "4", "end"])
    }

    @Test("a verbose XPUB receives every subscribe and unsubscribe", .timeLimit(.minutes(1)))
    func xpubSubscriptions() throws {
        let xpub = try Socket(context, type: .xpub)
        try xpub.set(.xpubVerbose, true)
        try xpub.bind("tcp://127.0.0.1:*")
        let endpoint = try xpub.lastEndpoint
        let first = try Socket(context, type: .sub)
        let second = try Socket(context, type: .sub)
        try first.connect(endpoint)
        try second.connect(endpoint)
        try first.subscribe("job:")
        #expect(try receive(xpub) == [[1] + "job:".bytes])
        // Verbose: the same topic from a second subscriber is passed on, not swallowed.
        try second.subscribe("job:")
        #expect(try receive(xpub) == [[1] + "job:".bytes])
        try first.unsubscribe("job:")
        // Unsubscribes are passed on only when the last subscriber leaves (ZMQ_XPUB_VERBOSER does more).
        try second.unsubscribe("job:")
        #expect(try receive(xpub) == [[0] + "job:".bytes])
    }

    @Test("DEALER/ROUTER with 1000 requests in flight gets every reply matched", .timeLimit(.minutes(1)))
    func dealerRouterInFlight() throws {
        let router = try bound(context, .router)
        try router.set(.routerMandatory, true)
        let dealer = try Socket(context, type: .dealer)
        try dealer.set(.routingId, "client-7".bytes)
        try dealer.connect(try router.lastEndpoint)

        let count = 1000
        for i in 0..<count {
            try dealer.send([[], "req-\(i)".bytes])
        }
        for _ in 0..<count {
            let request = try receive(router)
            #expect(request.count == 3)
            #expect(request[0] == "client-7".bytes)
            #expect(request[1] == [])
            try router.send([request[0], [], "rep-".bytes + request[2].dropFirst(4)])
        }
        var replies = Set<String>()
        for _ in 0..<count {
            let reply = try receive(dealer)
            #expect(reply.count == 2 && reply[0] == [])
            replies.insert(reply[1].text)
        }
        #expect(replies == Set((0..<count).map { "rep-\($0)" }))
        #expect(throws: ZMQError.hostUnreachable) { try router.send(["nobody".bytes, [], "x".bytes]) }
    }

    @Test(
        "a limited receive copies the first frames and bytes and drops the rest of the message", .timeLimit(.minutes(1))
    )
    func limitedReceive() throws {
        let pull = try Socket(context, type: .pull)
        try pull.bind("tcp://127.0.0.1:*")
        let push = try Socket(context, type: .push)
        try push.connect(try pull.lastEndpoint)
        let frame = [UInt8](repeating: 1, count: 1000)
        try push.send(Array(repeating: frame, count: 10))
        try push.send([frame, frame])
        try push.send([frame, frame, [2]])
        var poller = Poller()
        poller.add(pull)
        _ = try poller.poll(timeout: .seconds(5))
        let big = try #require(try pull.receiveMultipart(maxFrames: 4, maxBytes: 100_000))
        #expect(big.frames.count == 4)
        #expect(big.isTruncated)
        #expect(big.frameCount == 10)
        #expect(big.byteCount == 10_000)
        let small = try #require(try pull.receiveMultipart(maxFrames: 4, maxBytes: 100_000))
        #expect(small.frames == [frame, frame])
        #expect(!small.isTruncated)
        // Past the byte limit nothing more is copied, also a small frame after a big one.
        let bytes = try #require(try pull.receiveMultipart(maxFrames: 4, maxBytes: 1500))
        #expect(bytes.frames == [frame])
        #expect(bytes.isTruncated)
        #expect(bytes.frameCount == 3)
        #expect(try pull.receiveMultipart(dontWait: true, maxFrames: 4, maxBytes: 1500) == nil)
    }

    @Test("a message larger than maxMessageSize never arrives; the sender is disconnected", .timeLimit(.minutes(1)))
    func maxMessageSize() throws {
        let pull = try Socket(context, type: .pull)
        try pull.set(.maxMessageSize, 1024)
        try pull.bind("tcp://127.0.0.1:*")
        let push = try Socket(context, type: .push)
        try push.set(.reconnectInterval, .milliseconds(10))
        try push.connect(try pull.lastEndpoint)

        try push.send([[UInt8](repeating: 7, count: 1024)])  // exactly the limit: allowed
        #expect(try receive(pull).first?.count == 1024)
        try push.send([[UInt8](repeating: 9, count: 1025)])
        // libzmq closes the connection on the oversize frame; the PUSH reconnects and later
        // messages flow again, but the oversize one is gone.
        var poller = Poller()
        poller.add(pull)
        var got: [[UInt8]]?
        for _ in 0..<500 where got == nil {
            try push.send(["small".bytes], dontWait: true)
            if try poller.poll(timeout: .milliseconds(10)) > 0 {
                got = try pull.receiveMultipart(dontWait: true)
            }
        }
        #expect(got == ["small".bytes])
        while let more = try pull.receiveMultipart(dontWait: true) {
            #expect(more == ["small".bytes])
        }
    }

    @Test("a zero-copy Message round-trips, adopting a buffer freed by libzmq", .timeLimit(.minutes(1)))
    func zeroCopyMessage() async throws {
        let pull = try bound(context, .pull)
        let push = try Socket(context, type: .push)
        try push.connect(try pull.lastEndpoint)

        let header = try Message(bytes: "hdr".utf8)
        #expect(header.count == 3)
        try push.send(header, more: true)
        #expect(header.count == 0)  // libzmq took the content

        let size = 1 << 20
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        for i in 0..<size { raw[i] = UInt8(truncatingIfNeeded: i) }
        let freed = FreedFlag()
        let body = try Message(adopting: raw) { buffer in
            buffer.deallocate()
            freed.set()
        }
        try push.send(body)

        let received = Message()
        try #require(try pull.receive(into: received))
        #expect(received.bytes == "hdr".bytes)
        #expect(received.more)
        try #require(try pull.receive(into: received))
        #expect(!received.more)
        #expect(received.count == size)
        received.withUnsafeBytes { bytes in
            #expect(bytes[0] == 0 && bytes[size - 1] == UInt8(truncatingIfNeeded: size - 1))
        }
        // The I/O thread frees the adopted buffer once it is written to the wire.
        for _ in 0..<500 where !freed.value {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(freed.value)

        let filled = try Message(size: 4)
        filled.withUnsafeMutableBytes { $0.copyBytes(from: [1, 2, 3, 4]) }
        try push.send(filled)
        #expect(try receive(pull) == [[1, 2, 3, 4]])
    }
}

final class FreedFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var value: Bool { flag.withLock { $0 } }
}
