import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

/// Restarts of a broker process killed with SIGKILL: what the store made durable before the kill. The
/// restart rules themselves (timers, what a restart keeps) are tested on the core (JobwireCoreTests).
@Suite struct KillRestartTests {
    @Test(
        "a SIGKILL restart recovers every job exactly, with the counts, seq and epoch, and seq continues gap-free",
        .timeLimit(.minutes(1)))
    func restartRecoversEverything() async throws {
        try await withHarness { harness in
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
            let keyed = try await harness.create([
                "idempotencyKey": "k-1", "metadata": ["a": [1, 2.5, "x", nil, true]],
            ])
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

            try await harness.restart(signal: SIGKILL)

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
            let again = try await harness.create([
                "idempotencyKey": "k-1", "metadata": ["a": [1, 2.5, "x", nil, true]],
            ])
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
        }
    }

    @Test(
        "kill -9 during pipelined creates from several clients loses no acknowledged create",
        .timeLimit(.minutes(1)))
    func killDuringCreates() async throws {
        try await withHarness { harness in
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
                                        if let reply = try? await client.call(
                                            "jobs.create", params, timeout: .seconds(20)),
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
        }
    }
}

/// The statuses a job can be put in from outside.
enum Start: String, CaseIterable, Sendable {
    case created, planning, scheduled, ready, executing, complete, failed, canceled
    var index: Int { Start.allCases.firstIndex(of: self)! }
}

extension Harness {
    /// A new job in `status`; `executing` jobs are held by `w1`.
    func job(in status: Start) async throws -> String {
        let job: JSONObject
        switch status {
        case .created, .planning: job = try await create(["trigger": "manual"])
        case .scheduled: job = try await create(["runAt": JSONValue(Timestamp.now() + .seconds(3600))])
        default: job = try await create()
        }
        let id = try #require(job.string("id"))
        let jobId = JSONValue.string(id)
        switch status {
        case .planning: try await call("jobs.update", ["jobId": jobId, "status": "planning"])
        case .executing, .complete, .failed:
            try await call("jobs.ack", ["jobId": jobId, "listenerId": "w1"])
            if status == .complete {
                try await call("jobs.complete", ["jobId": jobId, "listenerId": "w1", "outcome": ["message": "ok"]])
            }
            if status == .failed { try await call("jobs.fail", ["jobId": jobId, "listenerId": "w1"]) }
        case .canceled: try await call("jobs.cancel", ["jobId": jobId])
        default: break
        }
        #expect(try await get(id).string("status") == status.rawValue)
        return id
    }
}
