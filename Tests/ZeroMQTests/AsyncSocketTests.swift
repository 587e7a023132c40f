import Foundation
import Testing
import ZeroMQ

@Suite struct AsyncSocketTests {
    let context: Context

    init() throws {
        context = try Context()
    }

    @Test("received messages arrive in order as an AsyncSequence", .timeLimit(.minutes(1)))
    func messagesInOrder() async throws {
        let name = "inproc://\(uniqueName("async-order"))"
        let pull = try AsyncSocket(context: context, type: .pull) { try $0.bind(name) }
        let push = try Socket(context, type: .push)
        try push.connect(name)
        for i in 0..<100 {
            try push.send(["n".bytes, "\(i)".bytes])
        }
        var seen: [String] = []
        for try await frames in pull.messages {
            #expect(frames.count == 2)
            seen.append(frames[1].text)
            if seen.count == 100 { break }
        }
        #expect(seen == (0..<100).map(String.init))
        await pull.close()
    }

    @Test("concurrent sends from many tasks all arrive", .timeLimit(.minutes(1)))
    func concurrentSends() async throws {
        let name = "inproc://\(uniqueName("async-concurrent"))"
        let pull = try AsyncSocket(context: context, type: .pull) { try $0.bind(name) }
        let push = try AsyncSocket(context: context, type: .push) { try $0.connect(name) }
        let tasks = 32
        let perTask = 100
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<tasks {
                group.addTask {
                    for i in 0..<perTask {
                        push.send(["\(t)".bytes, "\(i)".bytes])
                    }
                }
            }
        }
        var perSender: [String: [String]] = [:]
        var received = 0
        for try await frames in pull.messages {
            perSender[frames[0].text, default: []].append(frames[1].text)
            received += 1
            if received == tasks * perTask { break }
        }
        #expect(perSender.count == tasks)
        for (_, values) in perSender {
            // Each task's messages keep their order.
            #expect(values == (0..<perTask).map(String.init))
        }
        #expect(try await pull.withSocket { try $0.hasPendingInput } == false)
        await push.close()
        await pull.close()
    }

    @Test("sends queue while the peer is missing and flow once it binds", .timeLimit(.minutes(1)))
    func queuedUntilWritable() async throws {
        let name = "inproc://\(uniqueName("late-bind"))"
        let push = try AsyncSocket(context: context, type: .push) { try $0.connect(name) }
        for i in 0..<10 { push.send(["\(i)".bytes]) }
        let pull = try AsyncSocket(context: context, type: .pull) { try $0.bind(name) }
        var received: [[[UInt8]]] = []
        for try await frames in pull.messages {
            received.append(frames)
            if received.count == 10 { break }
        }
        #expect(received == (0..<10).map { ["\($0)".bytes] })
        await push.close()
        await pull.close()
    }

    @Test("withSocket runs on the I/O thread: subscribing at runtime changes what arrives", .timeLimit(.minutes(1)))
    func withSocketSubscribes() async throws {
        let name = "inproc://\(uniqueName("async-pubsub"))"
        let pub = try AsyncSocket(context: context, type: .pub) { try $0.bind(name) }
        let sub = try AsyncSocket(context: context, type: .sub) { try $0.connect(name) }
        let type = try await sub.withSocket { socket in
            try socket.subscribe("job:")
            return socket.type
        }
        #expect(type == .sub)
        await #expect(throws: ZMQError.invalidArgument) {
            try await sub.withSocket { try $0.connect("nonsense") }
        }

        // Publish until the subscription has reached the publisher (slow joiner).
        let publisher = Task {
            var i = 0
            while !Task.isCancelled {
                pub.send(["other/".bytes, "\(i)".bytes])
                pub.send(["job:ready/".bytes, "\(i)".bytes])
                i += 1
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        var received = 0
        for try await frames in sub.messages {
            #expect(frames[0] == "job:ready/".bytes)
            received += 1
            if received == 5 { break }
        }
        publisher.cancel()
        await publisher.value
        await sub.close()
        await pub.close()
    }

    @Test("close is idempotent, finishes messages and rejects later work", .timeLimit(.minutes(1)))
    func closeFinishes() async throws {
        let socket = try AsyncSocket(context: context, type: .pull) { try $0.bind("tcp://127.0.0.1:*") }
        let consumer = Task {
            var count = 0
            for try await _ in socket.messages { count += 1 }
            return count
        }
        await socket.close()
        await socket.close()
        #expect(try await consumer.value == 0)
        #expect(socket.send(["late".bytes]) == false)
        await #expect(throws: AsyncSocketError.closed) { try await socket.withSocket { _ in 1 } }
    }

    @Test("waiting AsyncSockets never block the cooperative pool", .timeLimit(.minutes(1)))
    func poolStaysFree() async throws {
        // More waiting sockets and consumers than cores: each would pin a pool thread if it blocked.
        var sockets: [AsyncSocket] = []
        for _ in 0..<8 {
            sockets.append(try AsyncSocket(context: context, type: .pull) { try $0.bind("tcp://127.0.0.1:*") })
        }
        var consumers: [Task<Void, any Error>] = []
        for socket in sockets {
            consumers.append(Task { for try await _ in socket.messages {} })
        }
        // Give the consumers a moment to start waiting.
        await Task.yield()
        let finished = await withTaskGroup(of: Int.self) { group in
            for n in 0..<16 {
                group.addTask {
                    var x = UInt64(n)
                    for i in 0..<10_000 { x = x &* 6_364_136_223_846_793_005 &+ UInt64(i) }
                    await Task.yield()
                    return x == 42 ? 2 : 1
                }
            }
            return await group.reduce(0, +)
        }
        #expect(finished == 16)
        for socket in sockets { await socket.close() }
        for consumer in consumers { try await consumer.value }
    }
}
