import Foundation
import JobwireCore
import JobwireProtocol
import Testing

@testable import JobwireBroker

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

/// PROTOCOL.md §3's transitions, the broker's own (runAt, predecessors, lease expiry) included, on the core
/// and each store: the status each verb reaches, the events it logs and publishes, in seq order.
@Suite struct TransitionTests {
    @Test(
        "every verb on a job in each status does what PROTOCOL.md section 3 says, and nothing else",
        arguments: CoreHarness.StoreKind.allCases, Start.allCases)
    func transitionTable(store: CoreHarness.StoreKind, start: Start) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        for verb in Verb.allCases {
            let id = try harness.job(in: start)
            let before = try harness.get(id)
            let seqBefore = try harness.seq()
            let (method, params) = verb.call(id)
            let want = expected(start, verb)
            let response = try harness.reply(method, params)
            let label = "\(start.rawValue) + \(verb.rawValue)"
            switch want {
            case .illegal:
                guard case .failure(let error) = response.result else {
                    Issue.record("\(label) succeeded; §3 does not allow it")
                    continue
                }
                #expect(error.code == .invalidTransition, "\(label): \(error)")
                #expect(error.type == "invalid_transition", "\(label)")
                #expect(try harness.get(id) == before, "\(label) changed the job")
                #expect(try harness.seq() == seqBefore, "\(label) published an event")
                #expect(harness.publishedEvents(since: seqBefore).isEmpty, "\(label) published an event")
            case .to(let status, let topics):
                guard case .success(let result) = response.result else {
                    Issue.record("\(label) failed: \(response.result)")
                    continue
                }
                if let status {
                    let after = try harness.get(id)
                    #expect(after.string("status") == status, "\(label)")
                    #expect(result == after, "\(label): the reply is the saved job")
                    if status != "executing" { #expect(after["lease"] == .null, "\(label) kept a lease") }
                    if verb == .release || verb == .retry {
                        #expect(after.int("attempt") == before.int("attempt")! + 1, "\(label): attempt + 1")
                    }
                    if verb == .retry { #expect(after["outcome"] == nil || after["outcome"] == .null, "\(label)") }
                } else {
                    let error = try harness.failure("jobs.get", ["jobId": id.json])
                    #expect(error.code == .notFound, "\(label)")
                }
                let log = try harness.events(since: seqBefore)
                #expect(log.compactMap { $0.string("topic") } == topics, "\(label): logged events")
                #expect(log.allSatisfy { $0["context"]?["jobId"] == id.json }, "\(label)")
                #expect(
                    log.compactMap { $0.int("seq") } == Array((seqBefore + 1)...(seqBefore + Int64(topics.count))),
                    "\(label): seq gap-free")
                if let status, let last = log.last {
                    #expect(last["payload"]?["status"] == status.json, "\(label): payload status")
                }
                // The same events were published, under the job's name.
                let live = harness.publishedEvents(since: seqBefore)
                #expect(live.map(\.topic) == topics, "\(label): published events")
                #expect(live.map(\.envelope) == log, "\(label): published as logged")
                #expect(live.allSatisfy { $0.topicFrame.hasSuffix("/workbook:export/") }, "\(label)")
            }
        }
    }

    @Test(
        "acknowledging an outcome twice changes nothing and publishes nothing",
        arguments: CoreHarness.StoreKind.allCases)
    func ackOutcomeTwice(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        for status in [Start.complete, .failed] {
            let id = try harness.job(in: status)
            let first = try harness.call("jobs.ackOutcome", ["jobId": id.json])
            #expect(first["outcomeAcknowledgedAt"]?.stringValue != nil)
            let seq = try harness.seq()
            let second = try harness.call("jobs.ackOutcome", ["jobId": id.json])
            #expect(second == first)
            #expect(try harness.seq() == seq)
            // An acknowledged failure can still be retried: it clears the acknowledgement.
            if status == .failed {
                let retried = try harness.call("jobs.retry", ["jobId": id.json])
                #expect(retried["outcomeAcknowledgedAt"] == nil || retried["outcomeAcknowledgedAt"] == .null)
                #expect(retried.string("status") == "ready")
            }
        }
    }

    @Test(
        "the broker's own transitions: runAt, predecessors and lease expiry publish the right events",
        arguments: CoreHarness.StoreKind.allCases)
    func automaticTransitions(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let seq0 = try harness.seq()

        // scheduled → ready when runAt passes, not a millisecond before.
        let timedJob = try harness.create(["runAt": JSONValue(harness.now + .milliseconds(2500))])
        let timed = try #require(timedJob.string("id"))
        #expect(timedJob.string("status") == "scheduled")
        // scheduled → ready when the predecessor completes; → failed when it fails or is canceled.
        let p1 = try #require(try harness.create().string("id"))
        let p2 = try #require(try harness.create().string("id"))
        let p3 = try #require(try harness.create().string("id"))
        let d1 = try #require(try harness.create(["predecessorIds": [p1.json]]).string("id"))
        let d2 = try #require(try harness.create(["predecessorIds": [p2.json]]).string("id"))
        let d3 = try #require(try harness.create(["predecessorIds": [p3.json]]).string("id"))
        for id in [timed, d1, d2, d3] { #expect(try harness.get(id).string("status") == "scheduled") }
        for p in [p1, p2] { try harness.call("jobs.ack", ["jobId": p.json, "listenerId": "w1"]) }
        try harness.call("jobs.complete", ["jobId": p1.json, "listenerId": "w1"])
        try harness.call("jobs.fail", ["jobId": p2.json, "listenerId": "w1"])
        try harness.call("jobs.cancel", ["jobId": p3.json])
        #expect(try harness.get(d1).string("status") == "ready")
        let failed = try harness.get(d2)
        #expect(failed.string("status") == "failed")
        #expect(failed["outcome"]?["message"] == .string("predecessor \(p2) failed"))
        #expect(try harness.get(d3)["outcome"]?["message"] == .string("predecessor \(p3) canceled"))

        // executing → ready (attempt 2) → failed when the lease of the last attempt expires.
        let leased = try #require(try harness.create(["leaseSeconds": 1, "maxAttempts": 2]).string("id"))
        try harness.call("jobs.ack", ["jobId": leased.json, "listenerId": "w1"])

        harness.pass(.milliseconds(999))
        #expect(try harness.get(leased).string("status") == "executing")
        harness.pass(.milliseconds(1))
        let requeued = try #require(harness.publishedEvents(since: seq0).last { $0.jobId == leased })
        #expect(requeued.topic == "job:ready")
        #expect(requeued.envelope["payload"]?["attempt"] == 2)
        #expect(try harness.get(timed).string("status") == "scheduled", "runAt is 1.5 s away still")
        harness.pass(.milliseconds(1499))
        #expect(try harness.get(timed).string("status") == "scheduled")
        harness.pass(.milliseconds(1))
        #expect(try harness.get(timed).string("status") == "ready")

        try harness.call("jobs.ack", ["jobId": leased.json, "listenerId": "w2"])
        harness.pass(.seconds(1))
        let final = try harness.get(leased)
        #expect(final.string("status") == "failed")
        #expect(final["outcome"]?["message"] == "lease expired")
        #expect(final["lease"] == .null)

        let all = harness.publishedEvents(since: seq0)
        func topics(_ id: String) -> [String] { all.filter { $0.jobId == id }.map(\.topic) }
        #expect(topics(timed) == ["job:created", "job:scheduled", "job:ready"])
        #expect(topics(d1) == ["job:created", "job:scheduled", "job:ready"])
        #expect(topics(d2) == ["job:created", "job:scheduled", "job:failed"])
        #expect(topics(d3) == ["job:created", "job:scheduled", "job:failed"])
        #expect(
            topics(leased) == ["job:created", "job:ready", "job:updated", "job:ready", "job:updated", "job:failed"])
        // What was published is the log: gap-free, in order.
        let log = try harness.events(since: seq0)
        #expect(all.map(\.envelope) == log)
        #expect(log.compactMap { $0.int("seq") } == Array((seq0 + 1)...(seq0 + Int64(log.count))))
    }
}
