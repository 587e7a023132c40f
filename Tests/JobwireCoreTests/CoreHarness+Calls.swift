import Foundation
import JobwireCore
import JobwireProtocol
import Testing

@testable import JobwireBroker

/// An event as the broker publishes it on its events socket: the topic frame and the envelope.
struct PublishedEvent {
    var topicFrame: String
    var envelope: JSONValue
    var topic: String { envelope["topic"]?.stringValue ?? "" }
    var seq: Int64? { envelope["seq"]?.intValue }
    var jobId: String? { envelope["context"]?["jobId"]?.stringValue }
}

/// The statuses a job can be put in from outside, for PROTOCOL.md §3's table.
enum Start: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case created, planning, scheduled, ready, executing, complete, failed, canceled
    var testDescription: String { rawValue }
    var index: Int { Start.allCases.firstIndex(of: self)! }
}

/// The calls a client makes, on the core: each applied and committed as one round of the server's loop.
extension CoreHarness {
    @discardableResult
    func create(_ extra: JSONObject = [:], type: String = "workbook", operation: String = "export") throws
        -> JSONValue
    {
        var params: JSONObject = ["type": .string(type), "operation": .string(operation), "source": "us_wb_1"]
        for (key, value) in extra { params[key] = value }
        return try call("jobs.create", params)
    }

    func get(_ id: String) throws -> JSONValue { try call("jobs.get", ["jobId": .string(id)]) }

    func info() throws -> JSONValue { try call("broker.info") }

    func seq() throws -> Int64 { try #require(try info()["seq"]?.intValue) }

    /// The log after `since`, page by page (a page may stop short of `lastSeq`; `nextSince` goes on).
    func events(since: Int64, topics: [String]? = nil) throws -> [JSONValue] {
        var events: [JSONValue] = []
        var since = since
        while true {
            var params: JSONObject = ["since": .int(since), "limit": 10_000]
            if let topics { params["topics"] = .array(topics.map(JSONValue.string)) }
            let result = try call("events.list", params)
            events += result["events"]?.arrayValue ?? []
            let next = try #require(result.int("nextSince"))
            if next >= result.int("lastSeq") ?? 0 || next <= since { return events }
            since = next
        }
    }

    /// The events published so far (what a subscriber that listened from the start received) with seq
    /// above `since`.
    func publishedEvents(since: Int64 = 0) -> [PublishedEvent] {
        published.compactMap { frames -> PublishedEvent? in
            guard frames.count == 2, let envelope = try? JSONCodec.parse(frames[1]) else { return nil }
            let event = PublishedEvent(topicFrame: String(decoding: frames[0], as: UTF8.self), envelope: envelope)
            return (event.seq ?? 0) > since ? event : nil
        }
    }

    /// Moves the clock on by `duration`, then goes round as the server's loop does when its timer fires:
    /// tick, commit, and follow every ended job.
    func pass(_ duration: Duration) {
        advance(by: duration)
        round()
    }

    /// One round of the server's loop with no request: tick, commit, and follow every ended job.
    func round() {
        core.tick()
        commit()
        settle()
    }

    /// A new job in `status`; `executing` jobs are held by `w1`.
    func job(in status: Start) throws -> String {
        let job: JSONValue
        switch status {
        case .created, .planning: job = try create(["trigger": "manual"])
        case .scheduled: job = try create(["runAt": JSONValue(now + .seconds(3600))])
        default: job = try create()
        }
        let id = try #require(job.string("id"))
        let jobId = JSONValue.string(id)
        switch status {
        case .planning: try call("jobs.update", ["jobId": jobId, "status": "planning"])
        case .executing, .complete, .failed:
            try call("jobs.ack", ["jobId": jobId, "listenerId": "w1"])
            if status == .complete {
                try call("jobs.complete", ["jobId": jobId, "listenerId": "w1", "outcome": ["message": "ok"]])
            }
            if status == .failed { try call("jobs.fail", ["jobId": jobId, "listenerId": "w1"]) }
        case .canceled: try call("jobs.cancel", ["jobId": jobId])
        default: break
        }
        #expect(try get(id).string("status") == status.rawValue)
        return id
    }

    /// Applies and commits one request; returns its whole reply, a result or an error.
    func reply(_ method: String, _ params: JSONObject = [:], from caller: Caller = CoreHarness.caller) throws
        -> RPCResponse
    {
        let id = send(method, params, from: caller)
        commit()
        settle()
        return try #require(response(to: id), "no reply to \(method)")
    }
}

extension ProtocolError {
    var type: String? { data["type"]?.stringValue }
}

extension JSONValue {
    func string(_ key: String) -> String? { self[key]?.stringValue }
    func int(_ key: String) -> Int64? { self[key]?.intValue }
}

extension String {
    var json: JSONValue { .string(self) }
}
