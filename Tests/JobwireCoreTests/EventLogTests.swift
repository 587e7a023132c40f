import Foundation
import JobwireCore
import JobwireProtocol
import Testing

@testable import JobwireBroker

/// The event log: what `events.list` replays, its retention window, and idempotent creates.
@Suite struct EventLogTests {
    @Test(
        "--event-retention keeps exactly the last N events for replay; older asks get gone, also after a restart",
        arguments: CoreHarness.StoreKind.allCases)
    func retentionWindow(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store) { $0.eventRetention = 10 }
        defer { harness.close() }
        for _ in 0..<15 { try harness.create() }
        try expectWindow(harness, last: 30)
        // Past the point where the store deletes old rows (more than 1024 beyond the window), and again.
        for _ in 0..<2 {
            for n in 0..<520 {
                harness.send("jobs.create", ["type": "workbook", "operation": "export", "source": "s"])
                if n % 50 == 49 { harness.commit() }
            }
            harness.commit()
        }
        try expectWindow(harness, last: 30 + 2 * 1040)
    }

    /// The last 10 events replay; anything older is gone, before and after a restart.
    func expectWindow(_ harness: CoreHarness, last: Int64) throws {
        #expect(try harness.seq() == last)
        for _ in 0..<2 {
            let recent = try harness.events(since: last - 5)
            #expect(recent.compactMap { $0.int("seq") } == Array((last - 4)...last))
            let window = try harness.events(since: last - 10)
            #expect(window.count == 10)
            for since: Int64 in [0, last - 11] {
                let gone = try harness.failure("events.list", ["since": .int(since)])
                #expect(gone.code == .gone)
                #expect(gone.type == "gone")
                #expect(gone.data["firstSeq"] == .int(last - 9))
            }
            // A topic filter does not widen the window.
            let filtered = try harness.failure("events.list", ["since": 0, "topics": ["job:ready"]])
            #expect(filtered.code == .gone)
            guard harness.keepsAcrossRestart else { return }
            try harness.restart()
            #expect(try harness.seq() == last)
        }
    }

    @Test(
        "events.list replays exactly what the broker published, filtered and paged",
        arguments: CoreHarness.StoreKind.allCases)
    func replayMatchesLive(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let a = try #require(try harness.create().string("id"))
        try harness.call("jobs.ack", ["jobId": a.json, "listenerId": "w1"])
        try harness.call("jobs.update", ["jobId": a.json, "listenerId": "w1", "progress": 50])
        try harness.call("jobs.complete", ["jobId": a.json, "listenerId": "w1"])
        let b = try #require(
            try harness.create(["trigger": "manual"], type: "sheet", operation: "validate").string("id"))
        try harness.call("jobs.cancel", ["jobId": b.json])
        try harness.call("jobs.delete", ["jobId": b.json])
        let seq = try harness.seq()
        let live = harness.publishedEvents()
        let log = try harness.events(since: 0)
        #expect(live.count == Int(seq))
        #expect(log == live.map(\.envelope))
        #expect(log.compactMap { $0.int("seq") } == Array(1...seq))
        #expect(live.map(\.topicFrame).last == "job:deleted/sheet:validate/")
        #expect(log.last?["payload"]?["status"] == "canceled", "job:deleted carries the status at deletion")
        let epoch = try harness.info()["epoch"]
        #expect(log.allSatisfy { $0["epoch"] == epoch })
        let ready = try harness.call("events.list", ["since": 0, "topics": ["job:ready", "job:completed"]])
        #expect(
            ready["events"]?.arrayValue?.compactMap { $0["topic"]?.stringValue } == ["job:ready", "job:completed"])
        #expect(ready["lastSeq"] == .int(seq))
        let page = try harness.call("events.list", ["since": 2, "limit": 3])
        #expect(page["events"]?.arrayValue?.compactMap { $0["seq"]?.intValue } == [3, 4, 5])
        #expect(page["lastSeq"] == .int(seq))
        #expect(try harness.events(since: seq).isEmpty)
    }

    @Test(
        "a create with an idempotency key runs once; the key with other fields is a conflict",
        arguments: CoreHarness.StoreKind.allCases)
    func idempotency(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let first = try harness.create(["idempotencyKey": "k", "info": "x"])
        let seq = try harness.seq()
        // The job moves on; the same create still returns it, as it is now, and publishes nothing.
        try harness.call("jobs.ack", ["jobId": first["id"]!, "listenerId": "w1"])
        let seqAfterAck = try harness.seq()
        let other = Caller(route: [2], authenticatedKey: nil)
        let again = try harness.call(
            "jobs.create",
            ["type": "workbook", "operation": "export", "source": "us_wb_1", "idempotencyKey": "k", "info": "x"],
            from: other)
        #expect(again["id"] == first["id"])
        #expect(again.string("status") == "executing")
        #expect(try harness.seq() == seqAfterAck)
        #expect(seqAfterAck == seq + 1)
        // The key with other fields changes nothing.
        let conflict = try harness.failure(
            "jobs.create",
            ["type": "workbook", "operation": "export", "source": "us_wb_2", "idempotencyKey": "k", "info": "x"])
        #expect(conflict.code == .conflict)
        #expect(try harness.seq() == seqAfterAck)
        // Many creates with one key in one batch: one job.
        let requests = (0..<20).map { _ in
            harness.send(
                "jobs.create", ["type": "a", "operation": "b", "source": "s", "idempotencyKey": "batch"], from: other)
        }
        harness.commit()
        let replies = try requests.map { try #require(harness.response(to: $0)).result.get() }
        #expect(Set(replies.compactMap { $0["id"]?.stringValue }).count == 1)
        #expect(try harness.call("jobs.list", ["type": "a"])["pagination"]?["totalCount"] == 1)
    }
}
