import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

/// The statuses a job can be put in from outside, for PROTOCOL.md §3's table.
enum Start: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case created, planning, scheduled, ready, executing, complete, failed, canceled
    var testDescription: String { rawValue }
}

/// Every verb of §3's table that a client calls.
enum Verb: String, CaseIterable, Sendable {
    case plan, execute, ack, complete, fail, release, cancel, retry, ackOutcome, delete, updateInfo, updateProgress

    func call(_ id: String) -> (method: String, params: JSONObject) {
        let jobId = JSONValue.string(id)
        switch self {
        case .plan: return ("jobs.update", ["jobId": jobId, "status": "planning"])
        case .execute: return ("jobs.execute", ["jobId": jobId])
        case .ack: return ("jobs.ack", ["jobId": jobId, "listenerId": "w1", "progress": 5])
        case .complete:
            return ("jobs.complete", ["jobId": jobId, "listenerId": "w1", "outcome": ["message": "done"]])
        case .fail: return ("jobs.fail", ["jobId": jobId, "listenerId": "w1", "outcome": ["message": "broke"]])
        case .release: return ("jobs.release", ["jobId": jobId, "listenerId": "w1"])
        case .cancel: return ("jobs.cancel", ["jobId": jobId])
        case .retry: return ("jobs.retry", ["jobId": jobId])
        case .ackOutcome: return ("jobs.ackOutcome", ["jobId": jobId])
        case .delete: return ("jobs.delete", ["jobId": jobId])
        case .updateInfo: return ("jobs.update", ["jobId": jobId, "listenerId": "w1", "info": "note"])
        case .updateProgress: return ("jobs.update", ["jobId": jobId, "listenerId": "w1", "progress": 50])
        }
    }
}

/// What a verb does to a job in a status: the status it reaches (nil: deleted) and the events it
/// publishes, or an invalid transition.
enum Expected: Equatable {
    case to(String?, [String])
    case illegal
}

/// PROTOCOL.md §3, written out for every (status, verb) pair.
func expected(_ start: Start, _ verb: Verb) -> Expected {
    let updated = ["job:updated"]
    switch (start, verb) {
    case (.created, .plan), (.planning, .plan): return .to("planning", updated)
    case (.created, .execute), (.planning, .execute): return .to("ready", ["job:ready"])
    case (.ready, .ack), (.executing, .ack): return .to("executing", updated)
    case (.executing, .complete): return .to("complete", ["job:completed"])
    case (.executing, .fail): return .to("failed", ["job:failed"])
    case (.executing, .release): return .to("ready", ["job:ready"])
    case (.created, .cancel), (.planning, .cancel), (.scheduled, .cancel), (.ready, .cancel), (.executing, .cancel):
        return .to("canceled", updated)
    case (.failed, .retry), (.canceled, .retry): return .to("ready", ["job:ready"])
    case (.complete, .ackOutcome): return .to("complete", ["job:outcome-acknowledged"])
    case (.failed, .ackOutcome): return .to("failed", ["job:outcome-acknowledged"])
    case (.executing, .delete): return .illegal
    case (_, .delete): return .to(nil, ["job:deleted"])
    case (.created, .updateInfo), (.planning, .updateInfo), (.scheduled, .updateInfo), (.ready, .updateInfo),
        (.executing, .updateInfo):
        return .to(start.rawValue, updated)
    case (.executing, .updateProgress): return .to("executing", updated)
    default: return .illegal
    }
}

extension Harness {
    /// A new job in `status`; `executing` jobs are held by `w1`.
    func job(in status: Start) async throws -> String {
        let future = JSONValue(Timestamp.now() + .seconds(3600))
        let job: JSONObject
        switch status {
        case .created, .planning: job = try await create(["trigger": "manual"])
        case .scheduled: job = try await create(["runAt": future])
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

@Suite struct TransitionTests {
    @Test(
        "every verb on a job in each status does what PROTOCOL.md section 3 says, and nothing else",
        .timeLimit(.minutes(1)), arguments: Start.allCases)
    func transitionTable(start: Start) async throws {
        let harness = try await Harness()
        let subscriber = try await harness.subscribe()
        for verb in Verb.allCases {
            let id = try await harness.job(in: start)
            let before = try await harness.get(id)
            let seqBefore = try await harness.seq()
            let (method, params) = verb.call(id)
            let want = expected(start, verb)
            let response = try await harness.rpc.call(method, params)
            let label = "\(start.rawValue) + \(verb.rawValue)"
            switch want {
            case .illegal:
                guard case .failure(let error) = response.result else {
                    Issue.record("\(label) succeeded; §3 does not allow it")
                    continue
                }
                #expect(error.code == .invalidTransition, "\(label): \(error)")
                #expect(error.type == "invalid_transition", "\(label)")
                #expect(try await harness.get(id) == before, "\(label) changed the job")
                #expect(try await harness.seq() == seqBefore, "\(label) published an event")
            case .to(let status, let topics):
                guard case .success(let result) = response.result else {
                    Issue.record("\(label) failed: \(response.result)")
                    continue
                }
                if let status {
                    let after = try await harness.get(id)
                    #expect(after.string("status") == status, "\(label)")
                    #expect(result.objectValue == after, "\(label): the reply is the saved job")
                    if status != "executing" { #expect(after["lease"] == .null, "\(label) kept a lease") }
                    if verb == .release || verb == .retry {
                        #expect(after.int("attempt") == before.int("attempt")! + 1, "\(label): attempt + 1")
                    }
                    if verb == .retry { #expect(after["outcome"] == nil || after["outcome"] == .null, "\(label)") }
                } else {
                    let error = try await harness.failure("jobs.get", ["jobId": id.json])
                    #expect(error.code == .notFound, "\(label)")
                }
                let log = try await harness.events(since: seqBefore)
                #expect(log.compactMap { $0.string("topic") } == topics, "\(label): logged events")
                #expect(log.allSatisfy { $0["context"]?["jobId"] == id.json }, "\(label)")
                #expect(
                    log.compactMap { $0.int("seq") } == Array((seqBefore + 1)...(seqBefore + Int64(topics.count))),
                    "\(label): seq gap-free")
                if let status, let last = log.last {
                    #expect(last["payload"]?["status"] == status.json, "\(label): payload status")
                }
                // The same events went out on the events socket.
                let live = try await subscriber.waitForEvents(since: seqBefore) { $0.count >= topics.count }
                #expect(live.map(\.topic) == topics, "\(label): published events")
                #expect(live.allSatisfy { $0.topicFrame.hasSuffix("/workbook:export/") }, "\(label)")
            }
        }
        await subscriber.close()
        await harness.close()
    }

    @Test("acknowledging an outcome twice changes nothing and publishes nothing", .timeLimit(.minutes(1)))
    func ackOutcomeTwice() async throws {
        let harness = try await Harness()
        for status in [Start.complete, .failed] {
            let id = try await harness.job(in: status)
            let first = try await harness.call("jobs.ackOutcome", ["jobId": id.json])
            #expect(first["outcomeAcknowledgedAt"]?.stringValue != nil)
            let seq = try await harness.seq()
            let second = try await harness.call("jobs.ackOutcome", ["jobId": id.json])
            #expect(second == first)
            #expect(try await harness.seq() == seq)
            // An acknowledged failure can still be retried: it clears the acknowledgement.
            if status == .failed {
                let retried = try await harness.call("jobs.retry", ["jobId": id.json])
                #expect(retried["outcomeAcknowledgedAt"] == nil || retried["outcomeAcknowledgedAt"] == .null)
                #expect(retried.string("status") == "ready")
            }
        }
        await harness.close()
    }

    @Test(
        "the broker's own transitions: runAt, predecessors and lease expiry publish the right events",
        .timeLimit(.minutes(1)))
    func automaticTransitions() async throws {
        let harness = try await Harness()
        let subscriber = try await harness.subscribe()
        let seq0 = try await harness.seq()

        // scheduled → ready when runAt passes. Its create reply shows it waiting; the log shows it go ready.
        let soon = JSONValue(Timestamp.now() + .milliseconds(2500))
        let timedJob = try await harness.create(["runAt": soon])
        let timed = try #require(timedJob.string("id"))
        #expect(timedJob.string("status") == "scheduled")
        // scheduled → ready when the predecessor completes; → failed when it fails or is canceled.
        let p1 = try #require(try await harness.create().string("id"))
        let p2 = try #require(try await harness.create().string("id"))
        let p3 = try #require(try await harness.create().string("id"))
        let d1 = try #require(try await harness.create(["predecessorIds": [p1.json]]).string("id"))
        let d2 = try #require(try await harness.create(["predecessorIds": [p2.json]]).string("id"))
        let d3 = try #require(try await harness.create(["predecessorIds": [p3.json]]).string("id"))
        for id in [d1, d2, d3] { #expect(try await harness.get(id).string("status") == "scheduled") }
        for p in [p1, p2] { try await harness.call("jobs.ack", ["jobId": p.json, "listenerId": "w1"]) }
        try await harness.call("jobs.complete", ["jobId": p1.json, "listenerId": "w1"])
        try await harness.call("jobs.fail", ["jobId": p2.json, "listenerId": "w1"])
        try await harness.call("jobs.cancel", ["jobId": p3.json])
        #expect(try await harness.get(d1).string("status") == "ready")
        let failed = try await harness.get(d2)
        #expect(failed.string("status") == "failed")
        #expect(failed["outcome"]?["message"] == .string("predecessor \(p2) failed"))
        #expect(try await harness.get(d3)["outcome"]?["message"] == .string("predecessor \(p3) canceled"))

        // executing → ready (attempt 2) → failed when the lease of the last attempt expires.
        let leased = try #require(
            try await harness.create(["leaseSeconds": 1, "maxAttempts": 2]).string("id"))
        try await harness.call("jobs.ack", ["jobId": leased.json, "listenerId": "w1"])

        let events = try await subscriber.waitForEvents(since: seq0, timeout: .seconds(15)) { events in
            events.contains { $0.jobId == timed && $0.topic == "job:ready" }
                && events.filter { $0.jobId == leased && $0.topic == "job:ready" }.count == 2
        }
        let requeued = try #require(events.last { $0.jobId == leased && $0.topic == "job:ready" })
        #expect(requeued.envelope["payload"]?["attempt"] == 2)
        try await harness.call("jobs.ack", ["jobId": leased.json, "listenerId": "w2"])
        let all = try await subscriber.waitForEvents(since: seq0, timeout: .seconds(15)) { events in
            events.contains { $0.jobId == leased && $0.topic == "job:failed" }
        }
        let final = try await harness.get(leased)
        #expect(final.string("status") == "failed")
        #expect(final["outcome"]?["message"] == "lease expired")
        #expect(final["lease"] == .null)

        func topics(_ id: String) -> [String] { all.filter { $0.jobId == id }.map(\.topic) }
        #expect(topics(timed) == ["job:created", "job:scheduled", "job:ready"])
        #expect(topics(d1) == ["job:created", "job:scheduled", "job:ready"])
        #expect(topics(d2) == ["job:created", "job:scheduled", "job:failed"])
        #expect(topics(d3) == ["job:created", "job:scheduled", "job:failed"])
        #expect(
            topics(leased) == ["job:created", "job:ready", "job:updated", "job:ready", "job:updated", "job:failed"])
        // The live stream is the log: gap-free, in order.
        let log = try await harness.events(since: seq0)
        #expect(all.compactMap(\.seq) == log.compactMap { $0.int("seq") }.prefix(all.count).map { $0 })
        #expect(log.compactMap { $0.int("seq") } == Array((seq0 + 1)...(seq0 + Int64(log.count))))
        await subscriber.close()
        await harness.close()
    }
}
