import Foundation
import JobwireCore
import JobwireProtocol
import Testing

@testable import JobwireBroker

/// What a restart keeps: every job, the log, actions, idempotency keys, and the timers (leases, runAt)
/// that were running, including those that ran out while the broker was down. On the file store: the
/// in-memory one starts from nothing.
@Suite struct RestartTests {
    @Test(
        "a restart recovers every job exactly, with the counts, seq and epoch, and seq continues gap-free",
        arguments: CoreHarness.StoreKind.durable)
    func restartRecoversEverything(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        var ids: [String] = []
        for status in Start.allCases { ids.append(try harness.job(in: status)) }
        // Richer jobs: a waiting predecessor, progress and info on a lease, an outcome with next, an
        // acknowledged outcome, an idempotency key, a split parent with its parts.
        let waiting = try harness.create(["predecessorIds": [ids[Start.created.index].json]])
        ids.append(try #require(waiting.string("id")))
        let busy = try harness.job(in: .ready)
        try harness.call(
            "jobs.ack",
            [
                "jobId": busy.json, "listenerId": "w9", "progress": 42.5, "info": "half",
                "estimatedCompletionAt": JSONValue(harness.now + .seconds(60)),
            ])
        ids.append(busy)
        let done = try harness.job(in: .executing)
        try harness.call(
            "jobs.complete",
            [
                "jobId": done.json, "listenerId": "w1",
                "outcome": [
                    "message": "Exported", "next": ["type": "url", "url": "https://x.test/a", "label": "Open"],
                ],
            ])
        try harness.call("jobs.ackOutcome", ["jobId": done.json])
        ids.append(done)
        let keyed = try harness.create(["idempotencyKey": "k-1", "metadata": ["a": [1, 2.5, "x", nil, true]]])
        ids.append(try #require(keyed.string("id")))
        let parent = try harness.job(in: .executing)
        let split = try harness.call(
            "jobs.split", ["jobId": parent.json, "listenerId": "w1", "parts": 3, "runInParallel": false])
        ids.append(parent)
        ids += (split["parts"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        let released = try harness.job(in: .executing)
        try harness.call("jobs.release", ["jobId": released.json, "listenerId": "w1"])
        ids.append(released)
        try harness.call(
            "actions.mount",
            ["domain": "workbook", "resourceId": "us_wb_1", "action": ["operation": "export", "label": "Export"]])

        var before: [String: JSONValue] = [:]
        for id in ids { before[id] = try harness.get(id) }
        let infoBefore = try harness.info()
        let logBefore = try harness.events(since: 0)
        let actionsBefore = try harness.call("actions.list", ["domain": "workbook"])
        let seqBefore = try #require(infoBefore.int("seq"))
        #expect(logBefore.count == Int(seqBefore))

        try harness.restart()

        for id in ids {
            let after = try harness.get(id)
            #expect(after == before[id], "job \(before[id]?.string("status") ?? "?") \(id) changed over a restart")
        }
        let infoAfter = try harness.info()
        #expect(infoAfter["jobs"] == infoBefore["jobs"])
        #expect(infoAfter["seq"] == infoBefore["seq"])
        #expect(infoAfter["epoch"] == infoBefore["epoch"])
        #expect(try harness.events(since: 0) == logBefore)
        #expect(try harness.call("actions.list", ["domain": "workbook"]) == actionsBefore)
        // The idempotency key still finds its job.
        let again = try harness.create(["idempotencyKey": "k-1", "metadata": ["a": [1, 2.5, "x", nil, true]]])
        #expect(again == before[keyed.string("id")!])
        #expect(try harness.seq() == seqBefore)

        // The next event takes the next seq, and live work goes on where it stopped.
        try harness.call("jobs.complete", ["jobId": busy.json, "listenerId": "w9"])
        let next = try harness.events(since: seqBefore)
        #expect(next.compactMap { $0.int("seq") } == [seqBefore + 1])
        #expect(next.first?["epoch"] == infoBefore["epoch"])
        #expect(harness.publishedEvents(since: seqBefore).map(\.seq) == [seqBefore + 1])
        // The sequential parts go on too: part 0 is ready, part 1 waits for it.
        let parts = try harness.call("jobs.list", ["parentId": parent.json])["data"]?.arrayValue ?? []
        #expect(parts.compactMap { $0["status"]?.stringValue } == ["ready", "scheduled", "scheduled"])
        let part0 = try #require(parts.first?["id"]?.stringValue)
        try harness.call("jobs.ack", ["jobId": part0.json, "listenerId": "p"])
        try harness.call("jobs.complete", ["jobId": part0.json, "listenerId": "p"])
        #expect(try harness.get(try #require(parts[1]["id"]?.stringValue)).string("status") == "ready")
        // The waiting dependent goes on when its predecessor (the created job) runs and completes.
        let created = ids[Start.created.index]
        try harness.call("jobs.execute", ["jobId": created.json])
        try harness.call("jobs.ack", ["jobId": created.json, "listenerId": "w1"])
        try harness.call("jobs.complete", ["jobId": created.json, "listenerId": "w1"])
        #expect(try harness.get(try #require(waiting.string("id"))).string("status") == "ready")
    }

    @Test(
        "leases and runAts that run out while the broker is down fire once each on the first round after the restart",
        arguments: CoreHarness.StoreKind.durable)
    func timersDueDuringDowntime(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let seq0 = try harness.seq()
        let short = try #require(try harness.create(["leaseSeconds": 1]).string("id"))
        let long = try #require(try harness.create(["leaseSeconds": 3]).string("id"))
        let timed = try #require(try harness.create(["runAt": JSONValue(harness.now + .seconds(2))]).string("id"))
        let later = try #require(try harness.create(["leaseSeconds": 10]).string("id"))
        for id in [short, long, later] { try harness.call("jobs.ack", ["jobId": id.json, "listenerId": "w1"]) }
        // Down for 5 s: both short leases and the runAt run out meanwhile; the 10 s lease does not.
        harness.advance(by: .seconds(5))
        try harness.restart()
        // Read from the core, not by a request: a request would expire the leases itself.
        let seqAtStart = harness.core.seq
        #expect(harness.core.nextDeadline.map { $0 <= harness.now } == true, "a due timer waits for a round")
        harness.round()
        for id in [short, long] {
            let job = try harness.get(id)
            #expect(job.string("status") == "ready")
            #expect(job.int("attempt") == 2)
            #expect(job["lease"] == .null)
        }
        #expect(try harness.get(timed).string("status") == "ready")
        #expect(try harness.get(later).string("status") == "executing")
        // One requeue each, published once, in seq order right after the seq the store had.
        let live = harness.publishedEvents(since: seqAtStart)
        #expect(live.map(\.topic) == ["job:ready", "job:ready", "job:ready"])
        #expect(Set(live.compactMap(\.jobId)) == [short, long, timed])
        #expect(live.compactMap(\.seq) == [seqAtStart + 1, seqAtStart + 2, seqAtStart + 3])
        let log = try harness.events(since: seq0)
        for id in [short, long] {
            let events = log.filter { $0["context"]?["jobId"]?.stringValue == id }
            #expect(events.map { $0.string("topic") } == ["job:created", "job:ready", "job:updated", "job:ready"])
            #expect(events.last?["payload"]?["attempt"] == 2)
        }
        #expect(log.compactMap { $0.int("seq") } == Array((seq0 + 1)...(seq0 + Int64(log.count))))
        // The timer still running fires at its time, once; the former owners are fenced off.
        harness.pass(.seconds(5) - .milliseconds(1))
        #expect(try harness.get(later).string("status") == "executing")
        harness.pass(.milliseconds(1))
        #expect(harness.publishedEvents(since: seqAtStart + 3).map(\.topic) == ["job:ready"])
        #expect(try harness.get(later).int("attempt") == 2)
        for id in [short, long, later] {
            #expect(try harness.failure("jobs.complete", ["jobId": id.json, "listenerId": "w1"]).code == .leaseExpired)
        }
        harness.pass(.seconds(60))
        #expect(harness.publishedEvents(since: seqAtStart + 4).isEmpty, "a timer fired twice")
    }

    @Test(
        "a lease that ran out before a restart was requeued before it, and is not requeued again after",
        arguments: CoreHarness.StoreKind.durable)
    func timerDueBeforeRestart(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let seq0 = try harness.seq()
        let id = try #require(try harness.create(["leaseSeconds": 1]).string("id"))
        try harness.call("jobs.ack", ["jobId": id.json, "listenerId": "w1"])
        harness.pass(.seconds(1))
        #expect(try harness.get(id).int("attempt") == 2)
        harness.advance(by: .seconds(5))
        try harness.restart()
        harness.round()
        let events = try harness.events(since: seq0).map { $0.string("topic") }
        #expect(events == ["job:created", "job:ready", "job:updated", "job:ready"])
        #expect(try harness.get(id).string("status") == "ready")
    }

    @Test(
        "a lease that ran out is over for its holder's next call, also when the call comes before the round's tick",
        arguments: CoreHarness.StoreKind.allCases)
    func lateCallBeforeTick(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        // After a restart: the first round handles its requests before its tick.
        var cases = [true, false]
        if !harness.keepsAcrossRestart { cases = [false] }
        for restart in cases {
            let id = try #require(try harness.create(["leaseSeconds": 1]).string("id"))
            try harness.call("jobs.ack", ["jobId": id.json, "listenerId": "w1"])
            let seq = try harness.seq()
            harness.advance(by: .seconds(restart ? 5 : 1))
            if restart { try harness.restart() }
            // No tick yet: the holder's renewal arrives first.
            let late = try harness.failure("jobs.update", ["jobId": id.json, "listenerId": "w1", "info": "still here"])
            #expect(late.code == .leaseExpired, "restart: \(restart)")
            harness.round()
            let job = try harness.get(id)
            #expect(job.string("status") == "ready")
            #expect(job.int("attempt") == 2)
            #expect(harness.publishedEvents(since: seq).map(\.topic) == ["job:ready"], "restart: \(restart)")
            #expect(try harness.events(since: seq).map { $0.string("topic") } == ["job:ready"])
        }
    }
}
