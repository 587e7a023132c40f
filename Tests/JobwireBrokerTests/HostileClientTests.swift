import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

/// Clients that try to make the broker hold memory or work for them: each is bounded, and the broker
/// keeps serving everyone else.
@Suite struct HostileClientTests {
    static func request(_ id: Int, _ method: String, _ params: JSONObject = [:]) -> [UInt8] {
        RPCRequest(id: .int(Int64(id)), method: method, params: params).bytes
    }

    @Test(
        "a client that never reads gets only a bounded number of its large replies; the rest are dropped",
        .timeLimit(.minutes(3)))
    func nonReadingClient() async throws {
        try await withHarness(arguments: ["--log-level", "debug"]) { harness in
            // 150 jobs with 3 KB inputs: an events.list of them is about 1 MB.
            let pad = String(repeating: "p", count: 3000)
            for _ in 0..<150 { try await harness.create(["input": ["pad": .string(pad)]]) }
            let page = try await harness.call("events.list", ["limit": 10_000])
            let replySize = JSONCodec.encode(.object(page)).count
            #expect(replySize > 500_000)
            let barrier = try await harness.subscribe("job:ready/barrier:x/")

            let reader = try Socket(harness.context, type: .dealer)
            try reader.set(.receiveHighWaterMark, 1)
            try reader.set(.receiveBufferSize, 4096)
            try reader.connect(harness.process.commands)
            let count = 200
            for id in 1...count { try reader.send([[], Self.request(id, "events.list", ["limit": 10_000])]) }
            try reader.send([
                [], Self.request(count + 1, "jobs.create", ["type": "barrier", "operation": "x", "source": "s"]),
            ])
            // Requests of one connection are taken in order: once the barrier job exists, or the broker
            // says it dropped the barrier request unrun, every events.list has been answered or dropped.
            try await eventually("the barrier request was taken", timeout: .seconds(120)) {
                !barrier.events.isEmpty
                    || harness.process.log.split(separator: "\n").contains {
                        $0.contains("request dropped unanswered") && $0.contains("rpc.id=\(count + 1) ")
                    }
            }
            #expect(try await harness.info()["seq"] != nil, "the broker serves others")

            var listed = 0
            var poller = Poller()
            poller.add(reader)
            while try poller.poll(timeout: .seconds(10)) > 0 {
                guard let frames = try reader.receiveMultipart(dontWait: true) else { continue }
                let response = try RPCResponse.decode(frames.last ?? [])
                if response.id == .int(Int64(count + 1)) { break }
                listed += 1
            }
            // libzmq queues 64 replies for the client, the broker 8 MiB more, the kernel a few MB.
            print("non-reading client: \(listed) of \(count) replies of \(replySize) bytes kept")
            #expect(listed > 0)
            #expect(listed < count / 2, "\(listed) of \(count) replies of \(replySize) bytes were kept for the client")
            await barrier.close()
        }
    }

    @Test("a request of many large frames gets -32600 and the broker keeps serving", .timeLimit(.minutes(2)))
    func manyFrames() async throws {
        try await withHarness { harness in
            let dealer = try RawDealer(context: harness.context, endpoint: harness.process.commands)
            let chunk = [UInt8](repeating: 0x61, count: 1_000_000)
            let (_, response) = try await dealer.exchange(
                [[], Self.request(1, "broker.info")] + Array(repeating: chunk, count: 20))
            guard case .failure(let error) = response.result else {
                Issue.record("a 20 MB request was answered with \(response.result)")
                return
            }
            #expect(error.code == .invalidRequest)
            #expect(error.message.contains("more frames or bytes"))
            // Within the frame limit but over the byte limit in all.
            let half = [UInt8](repeating: 0x20, count: 600_000)
            let (_, second) = try await dealer.exchange([[], Self.request(2, "broker.info"), half, half])
            #expect(throws: ProtocolError.self) { try second.result.get() }
            // One body frame over the limit and no delimiter: answered in the client's own framing.
            let big = [UInt8](repeating: 0x20, count: 1_500_000)
            let (frames, third) = try await dealer.exchange([big])
            #expect(frames.count == 1)
            #expect(throws: ProtocolError.self) { try third.result.get() }
            #expect(try await harness.info()["seq"] != nil)
            await dealer.close()
        }
    }

    @Test("a subscriber that sends a huge subscription is disconnected before libzmq keeps it", .timeLimit(.minutes(1)))
    func hugeSubscription() async throws {
        try await withHarness { harness in
            let normal = try await harness.subscribe()
            let huge = try EventSubscriber(
                context: harness.context, endpoint: harness.process.events,
                prefix: "job:ready/" + String(repeating: "x", count: 4096))
            // The huge one subscribes to heartbeats too; libzmq drops it on every reconnect.
            let start = normal.heartbeats.count
            try await eventually("three heartbeats") { normal.heartbeats.count >= start + 3 }
            #expect(huge.heartbeats.isEmpty)
            await huge.close()
            await normal.close()
        }
    }

    @Test("a subscription prefix past 256 bytes still gets its events")
    func longPrefix() async throws {
        try await withHarness { harness in
            // Names of at most 256 bytes each, a topic frame of 312.
            let type = String(repeating: "t", count: 250)
            let operation = String(repeating: "o", count: 50)
            let subscriber = try await harness.subscribe("job:ready/\(type):\(operation)/")
            let seq = try await harness.seq()
            try await harness.create(type: type, operation: operation)
            let events = try await subscriber.waitForEvents(since: seq) { !$0.isEmpty }
            #expect(events.first?.topicFrame == "job:ready/\(type):\(operation)/")
            await subscriber.close()
        }
    }

    @Test("past the most tracked prefixes every subscriber still gets its events", .timeLimit(.minutes(1)))
    func tooManyPrefixes() async throws {
        try await withHarness(arguments: ["--max-subscription-prefixes", "2"]) { harness in
            // Three distinct prefixes with the heartbeats': one goes untracked.
            let one = try await harness.subscribe("job:ready/one:x/")
            let two = try await harness.subscribe("job:ready/two:x/")
            let seq = try await harness.seq()
            try await harness.create(type: "one", operation: "x")
            try await harness.create(type: "two", operation: "x")
            try await one.waitForEvents(since: seq) { $0.contains { $0.topicFrame == "job:ready/one:x/" } }
            try await two.waitForEvents(since: seq) { $0.contains { $0.topicFrame == "job:ready/two:x/" } }
            await one.close()
            await two.close()
        }
    }

    @Test("past the most connections a client is refused until others close", .timeLimit(.minutes(3)))
    func connectionLimit() async throws {
        try await withHarness(arguments: ["--max-connections", "3"]) { harness in
            _ = try await harness.info()
            let second = try harness.newClient()
            let third = try harness.newClient()
            _ = try await second.result("broker.info")
            _ = try await third.result("broker.info")
            let fourth = try harness.newClient()
            await #expect(throws: TestSupportError.self) {
                _ = try await fourth.call("broker.info", timeout: .milliseconds(1500))
            }
            // A refusal is temporary: once a connection closes, the refused client gets in by itself (libzmq
            // ends its refused handshake after the handshake interval, 30 s, and it reconnects).
            await third.close()
            try await eventually("the refused client is admitted once another closed", timeout: .seconds(120)) {
                (try? await fourth.call("broker.info", timeout: .seconds(1))) != nil
            }
            #expect(try await second.result("broker.info")["seq"] != nil)
            await fourth.close()
            await second.close()
        }
    }
}
