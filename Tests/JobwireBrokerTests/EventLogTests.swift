import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

@Suite struct EventLogTests {
    @Test(
        "--event-retention keeps exactly the last N events for replay; older asks get gone, also after a restart",
        .timeLimit(.minutes(1)))
    func retentionWindow() async throws {
        let harness = try await Harness(arguments: ["--event-retention", "10"])
        for _ in 0..<15 { try await harness.create() }
        try await expectWindow(harness, last: 30)
        // Past the point where the store deletes old rows (more than 1024 beyond the window), and again.
        for _ in 0..<2 {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<520 { group.addTask { try await harness.create() } }
                try await group.waitForAll()
            }
        }
        try await expectWindow(harness, last: 30 + 2 * 1040)
        await harness.close()
    }

    /// The last 10 events replay; anything older is gone, before and after a SIGKILL restart.
    func expectWindow(_ harness: Harness, last: Int64) async throws {
        #expect(try await harness.seq() == last)
        for _ in 0..<2 {
            let recent = try await harness.events(since: last - 5)
            #expect(recent.compactMap { $0.int("seq") } == Array((last - 4)...last))
            let window = try await harness.events(since: last - 10)
            #expect(window.count == 10)
            for since: Int64 in [0, last - 11] {
                let gone = try await harness.failure("events.list", ["since": .int(since)])
                #expect(gone.code == .gone)
                #expect(gone.type == "gone")
                #expect(gone.data["firstSeq"] == .int(last - 9))
            }
            // A topic filter does not widen the window.
            let filtered = try await harness.failure("events.list", ["since": 0, "topics": ["job:ready"]])
            #expect(filtered.code == .gone)
            try await harness.restart(signal: SIGKILL)
        }
    }

    @Test("events.list replays exactly what the events socket published, filtered and paged", .timeLimit(.minutes(1)))
    func replayMatchesLive() async throws {
        let harness = try await Harness()
        let subscriber = try await harness.subscribe()
        let a = try #require(try await harness.create().string("id"))
        try await harness.call("jobs.ack", ["jobId": a.json, "listenerId": "w1"])
        try await harness.call("jobs.update", ["jobId": a.json, "listenerId": "w1", "progress": 50])
        try await harness.call("jobs.complete", ["jobId": a.json, "listenerId": "w1"])
        let b = try #require(
            try await harness.create(["trigger": "manual"], type: "sheet", operation: "validate")
                .string("id"))
        try await harness.call("jobs.cancel", ["jobId": b.json])
        try await harness.call("jobs.delete", ["jobId": b.json])
        let seq = try await harness.seq()
        let live = try await subscriber.waitForEvents(since: 0) { $0.count >= Int(seq) }
        let log = try await harness.events(since: 0)
        #expect(log == live.map(\.envelope))
        #expect(log.compactMap { $0.int("seq") } == Array(1...seq))
        #expect(live.map(\.topicFrame).last == "job:deleted/sheet:validate/")
        #expect(log.last?["payload"]?["status"] == "canceled", "job:deleted carries the status at deletion")
        let epoch = try await harness.info()["epoch"]
        #expect(log.allSatisfy { $0["epoch"] == epoch })
        let ready = try await harness.call("events.list", ["since": 0, "topics": ["job:ready", "job:completed"]])
        #expect(
            ready["events"]?.arrayValue?.compactMap { $0["topic"]?.stringValue } == ["job:ready", "job:completed"])
        #expect(ready["lastSeq"] == .int(seq))
        let page = try await harness.call("events.list", ["since": 2, "limit": 3])
        #expect(page["events"]?.arrayValue?.compactMap { $0["seq"]?.intValue } == [3, 4, 5])
        #expect(page["lastSeq"] == .int(seq))
        #expect(try await harness.events(since: seq).isEmpty)
        await subscriber.close()
        await harness.close()
    }

    @Test("heartbeats come with no seq of their own and carry the broker's epoch, start and latest seq", .timeLimit(.minutes(1)))
    func heartbeats() async throws {
        let harness = try await Harness()
        let subscriber = try await harness.subscribe("broker:heartbeat/")
        let info = try await harness.info()
        try await eventually("three heartbeats", timeout: .seconds(6)) { subscriber.heartbeats.count >= 3 }
        let beats = subscriber.heartbeats
        for beat in beats {
            #expect(beat.topicFrame == "broker:heartbeat//")
            #expect(beat.envelope["seq"] == nil)
            #expect(beat.envelope["domain"] == "broker")
            #expect(beat.envelope.string("id")?.hasPrefix("us_evt_") == true)
            #expect(beat.envelope["payload"]?["epoch"] == info["epoch"])
            #expect(beat.envelope["payload"]?["startedAt"] == info["startedAt"])
            #expect(beat.envelope["payload"]?["seq"] == .int(0))
        }
        // Their spacing is not checked here: the times a test thread reads them at say more about the
        // machine's load than about the broker (two arrived 18 µs apart on a loaded machine).
        try await harness.create()
        let count = subscriber.heartbeats.count
        try await eventually("a heartbeat after the create", timeout: .seconds(3)) {
            subscriber.heartbeats.count > count
        }
        #expect(subscriber.heartbeats.last?.envelope["payload"]?["seq"] == .int(2))
        #expect(subscriber.events.isEmpty, "a heartbeat-only subscription got job events")
        #expect(try await harness.events(since: 0).allSatisfy { $0.string("topic") != "broker:heartbeat" })
        await subscriber.close()
        await harness.close()
    }

    @Test(
        "a create with an idempotency key runs once; the key with other fields is a conflict", .timeLimit(.minutes(1)))
    func idempotency() async throws {
        let harness = try await Harness()
        let first = try await harness.create(["idempotencyKey": "k", "info": "x"])
        let seq = try await harness.seq()
        // The job moves on; the same create still returns it, as it is now, and publishes nothing.
        try await harness.call("jobs.ack", ["jobId": first["id"]!, "listenerId": "w1"])
        let seqAfterAck = try await harness.seq()
        let other = try harness.newClient()
        let again = try #require(
            try await other.result(
                "jobs.create",
                ["type": "workbook", "operation": "export", "source": "us_wb_1", "idempotencyKey": "k", "info": "x"]
            ).objectValue)
        #expect(again["id"] == first["id"])
        #expect(again.string("status") == "executing")
        #expect(try await harness.seq() == seqAfterAck)
        #expect(seqAfterAck == seq + 1)
        // The key with other fields changes nothing.
        let conflict = try await harness.failure(
            "jobs.create",
            ["type": "workbook", "operation": "export", "source": "us_wb_2", "idempotencyKey": "k", "info": "x"])
        #expect(conflict.code == .conflict)
        #expect(try await harness.seq() == seqAfterAck)
        // Many creates with one key in one batch: one job.
        let replies = try await withThrowingTaskGroup(of: JSONValue.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await other.result(
                        "jobs.create",
                        [
                            "type": "a", "operation": "b", "source": "s",
                            "idempotencyKey": "batch",
                        ])
                }
            }
            return try await group.reduce(into: [JSONValue]()) { $0.append($1) }
        }
        #expect(Set(replies.compactMap { $0["id"]?.stringValue }).count == 1)
        #expect(try await harness.call("jobs.list", ["type": "a"])["pagination"]?["totalCount"] == 1)
        await other.close()
        await harness.close()
    }
}
