import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

@Suite struct RestartTests {
    enum Stop: String, CaseIterable, Sendable {
        case sigterm, sigkill
        var signal: Int32 { self == .sigterm ? SIGTERM : SIGKILL }
    }

    @Test(
        "a restart recovers every job exactly, with the counts, seq and epoch, and seq continues gap-free",
        .timeLimit(.minutes(1)), arguments: Stop.allCases)
    func restartRecoversEverything(stop: Stop) async throws {
        let harness = try await Harness()
        var ids: [String] = []
        for status in Start.allCases { ids.append(try await harness.job(in: status)) }
        // Richer jobs: a waiting predecessor, progress and info on a lease, an outcome with next, an
        // acknowledged outcome, an idempotency key, a split parent with its parts.
        let waiting = try await harness.create(["predecessorIds": [ids[Start.created.index].json]])
        ids.append(try #require(waiting.string("id")))
        let busy = try await harness.job(in: .ready)
        try await harness.call(
            "jobs.ack",
            [
                "jobId": busy.json, "listenerId": "w9", "progress": 42.5, "info": "half",
                "estimatedCompletionAt": JSONValue(Timestamp.now() + .seconds(60)),
            ])
        ids.append(busy)
        let done = try await harness.job(in: .executing)
        try await harness.call(
            "jobs.complete",
            [
                "jobId": done.json, "listenerId": "w1",
                "outcome": [
                    "message": "Exported", "next": ["type": "url", "url": "https://x.test/a", "label": "Open"],
                ],
            ])
        try await harness.call("jobs.ackOutcome", ["jobId": done.json])
        ids.append(done)
        let keyed = try await harness.create(["idempotencyKey": "k-1", "metadata": ["a": [1, 2.5, "x", nil, true]]])
        ids.append(try #require(keyed.string("id")))
        let parent = try await harness.job(in: .executing)
        let split = try await harness.call(
            "jobs.split", ["jobId": parent.json, "listenerId": "w1", "parts": 3, "runInParallel": false])
        ids.append(parent)
        ids += (split["parts"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        let released = try await harness.job(in: .executing)
        try await harness.call("jobs.release", ["jobId": released.json, "listenerId": "w1"])
        ids.append(released)
        try await harness.call(
            "actions.mount",
            ["domain": "workbook", "resourceId": "us_wb_1", "action": ["operation": "export", "label": "Export"]])

        var before: [String: JSONObject] = [:]
        for id in ids { before[id] = try await harness.get(id) }
        let infoBefore = try await harness.info()
        let logBefore = try await harness.events(since: 0)
        let actionsBefore = try await harness.rpc.result("actions.list", ["domain": "workbook"])
        let seqBefore = try #require(infoBefore.int("seq"))
        #expect(logBefore.count == Int(seqBefore))

        try await harness.restart(signal: stop.signal)

        for id in ids {
            let after = try await harness.get(id)
            #expect(after == before[id], "job \(before[id]?.string("status") ?? "?") \(id) changed over a restart")
        }
        let infoAfter = try await harness.info()
        #expect(infoAfter["jobs"] == infoBefore["jobs"])
        #expect(infoAfter["seq"] == infoBefore["seq"])
        #expect(infoAfter["epoch"] == infoBefore["epoch"])
        #expect(try await harness.events(since: 0) == logBefore)
        #expect(try await harness.rpc.result("actions.list", ["domain": "workbook"]) == actionsBefore)
        // The idempotency key still finds its job.
        let again = try await harness.create(["idempotencyKey": "k-1", "metadata": ["a": [1, 2.5, "x", nil, true]]])
        #expect(again == before[keyed.string("id")!])
        #expect(try await harness.seq() == seqBefore)

        // The next event takes the next seq, and live work goes on where it stopped.
        let subscriber = try await harness.subscribe()
        try await harness.call("jobs.complete", ["jobId": busy.json, "listenerId": "w9"])
        let next = try await harness.events(since: seqBefore)
        #expect(next.compactMap { $0.int("seq") } == [seqBefore + 1])
        #expect(next.first?["epoch"] == infoBefore["epoch"])
        let live = try await subscriber.waitForEvents(since: seqBefore) { !$0.isEmpty }
        #expect(live.first?.seq == seqBefore + 1)
        // The sequential parts go on too: part 0 is ready, part 1 waits for it.
        let parts = try await harness.call("jobs.list", ["parentId": parent.json])["data"]?.arrayValue ?? []
        #expect(parts.compactMap { $0["status"]?.stringValue } == ["ready", "scheduled", "scheduled"])
        let part0 = try #require(parts.first?["id"]?.stringValue)
        try await harness.call("jobs.ack", ["jobId": part0.json, "listenerId": "p"])
        try await harness.call("jobs.complete", ["jobId": part0.json, "listenerId": "p"])
        #expect(try await harness.get(try #require(parts[1]["id"]?.stringValue)).string("status") == "ready")
        // The waiting dependent goes on when its predecessor (the created job) runs and completes.
        let created = ids[Start.created.index]
        try await harness.call("jobs.execute", ["jobId": created.json])
        try await harness.call("jobs.ack", ["jobId": created.json, "listenerId": "w1"])
        try await harness.call("jobs.complete", ["jobId": created.json, "listenerId": "w1"])
        #expect(try await harness.get(try #require(waiting.string("id"))).string("status") == "ready")
        await subscriber.close()
        await harness.close()
    }

    @Test(
        "a lease timer survives a SIGKILL: the job is requeued after the lease would have expired",
        .timeLimit(.minutes(1)))
    func leaseSurvivesKill() async throws {
        let harness = try await Harness()
        // One lease runs out while the broker is down, the other usually after it is back. On a busy machine
        // a lease may also run out before the kill, so the log is read from before the acks and checked per
        // job, not for a fixed position.
        let seq0 = try await harness.seq()
        let short = try #require(try await harness.create(["leaseSeconds": 1]).string("id"))
        let long = try #require(try await harness.create(["leaseSeconds": 3]).string("id"))
        let shortLease = try await harness.call("jobs.ack", ["jobId": short.json, "listenerId": "w1"])
        let longLease = try await harness.call("jobs.ack", ["jobId": long.json, "listenerId": "w1"])
        let shortExpiry = try #require(Timestamp(iso8601: shortLease["lease"]?["expiresAt"]?.stringValue ?? ""))
        let longExpiry = try #require(Timestamp(iso8601: longLease["lease"]?["expiresAt"]?.stringValue ?? ""))
        await harness.process.kill(SIGKILL)
        try await eventually("the short lease to pass", timeout: .seconds(5), every: .milliseconds(50)) {
            Timestamp.now() > shortExpiry
        }
        try await harness.restart(signal: SIGKILL)
        let subscriber = try await harness.subscribe()
        // Whether the long lease is still running now decides whether its requeue must be seen live.
        let longRunningAfterSubscribe = try await harness.get(long).string("status") == "executing"
        try await eventually("both jobs requeued", timeout: .seconds(10)) {
            let a = try await harness.get(short)
            let b = try await harness.get(long)
            return a.string("status") == "ready" && b.string("status") == "ready"
        }
        #expect(Timestamp.now() >= longExpiry)
        for id in [short, long] {
            let job = try await harness.get(id)
            #expect(job.int("attempt") == 2)
            #expect(job["lease"] == .null)
        }
        let log = try await harness.events(since: seq0)
        // Each job: created, ready, updated (the ack), then exactly one requeue, with attempt 2.
        for id in [short, long] {
            let events = log.filter { $0["context"]?["jobId"]?.stringValue == id }
            #expect(
                events.map { $0.string("topic") } == ["job:created", "job:ready", "job:updated", "job:ready"],
                "\(id): \(events)")
            #expect(events.last?["payload"]?["attempt"] == 2)
        }
        #expect(log.compactMap { $0.int("seq") } == Array((seq0 + 1)...(seq0 + Int64(log.count))))
        if longRunningAfterSubscribe {
            // The long one expired after the restart, while the subscriber listened: its job:ready went out live.
            let live = try await subscriber.waitForEvents(since: seq0) { $0.contains { $0.jobId == long } }
            #expect(live.first { $0.jobId == long }?.envelope["payload"]?["attempt"] == 2)
        }
        // The former owner is fenced off; a new ack is a new claim.
        let late = try await harness.failure("jobs.complete", ["jobId": long.json, "listenerId": "w1"])
        #expect(late.code == .leaseExpired)
        await subscriber.close()
        await harness.close()
    }

    @Test(
        "kill -9 during pipelined creates from several clients loses no acknowledged create",
        .timeLimit(.minutes(1)))
    func killDuringCreates() async throws {
        let harness = try await Harness()
        let clients = try (0..<4).map { _ in try harness.newClient() }
        let acked = Locked<[String]>([])
        let perClient = 60
        let window = 8
        let work = Task {
            await withTaskGroup(of: Void.self) { group in
                for (c, client) in clients.enumerated() {
                    group.addTask {
                        // Each client keeps `window` creates in flight until the broker dies.
                        await withTaskGroup(of: Void.self) { inner in
                            var next = 0
                            func launch() {
                                let n = next
                                next += 1
                                inner.addTask {
                                    let params: JSONObject = [
                                        "type": "file", "operation": "import", "source": .string("c\(c)-\(n)"),
                                    ]
                                    if let reply = try? await client.call("jobs.create", params, timeout: .seconds(20)),
                                        case .success(let job) = reply.result, let id = job["id"]?.stringValue
                                    {
                                        acked.withLock { $0.append(id) }
                                    }
                                }
                            }
                            for _ in 0..<window { launch() }
                            while await inner.next() != nil {
                                if next < perClient { launch() }
                            }
                        }
                    }
                }
            }
        }
        try await eventually("some creates acknowledged", timeout: .seconds(20), every: .milliseconds(1)) {
            acked.withLock { $0.count } >= 40
        }
        await harness.process.kill(SIGKILL)
        let atKill = acked.withLock { $0.count }
        for client in clients { await client.close() }
        await work.value
        let ids = acked.withLock { $0 }
        #expect(ids.count < clients.count * perClient, "the kill came after every create; nothing was tested")
        #expect(ids.count >= atKill)
        try await harness.restart(signal: SIGKILL)
        let found = try await harness.call("jobs.list", ["type": "file", "pageSize": 1000])
        let stored = Set((found["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue })
        let lost = Set(ids).subtracting(stored)
        #expect(lost.isEmpty, "\(lost.count) acknowledged creates were lost")
        for id in ids.prefix(20) { #expect(try await harness.get(id).string("status") == "ready") }
        // Every stored job has its two events in the log, and the log is gap-free.
        let log = try await harness.events(since: 0)
        #expect(log.count == stored.count * 2)
        #expect(log.compactMap { $0.int("seq") } == Array(1...Int64(log.count)))
        #expect(try await harness.seq() == Int64(log.count))
        await harness.close()
    }
}

extension Start {
    var index: Int { Start.allCases.firstIndex(of: self)! }
}
