import Foundation
import JobwireCore
import JobwireProtocol
import Testing

@testable import JobwireBroker

@Suite struct PartTests {
    /// An executing parent split into `count` parts; returns the parent and the part ids.
    func split(_ harness: CoreHarness, count: Int, parallel: Bool) throws -> (String, [String]) {
        let parent = try harness.job(in: .executing)
        let result = try harness.call(
            "jobs.split",
            [
                "jobId": parent.json, "listenerId": "w1", "parts": .int(Int64(count)),
                "runInParallel": .bool(parallel),
            ])
        return (parent, (result["parts"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue })
    }

    @Test(
        "deleting an unfinished part ends it for its parent: the next sequential part runs, parts-completed fires",
        arguments: CoreHarness.StoreKind.allCases, [true, false])
    func deletePart(store: CoreHarness.StoreKind, parallel: Bool) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let (parent, parts) = try split(harness, count: 2, parallel: parallel)
        let seq = try harness.seq()
        try harness.call("jobs.delete", ["jobId": parts[0].json])
        #expect(try harness.get(parts[1]).string("status") == "ready")
        try harness.call("jobs.ack", ["jobId": parts[1].json, "listenerId": "p"])
        try harness.call("jobs.complete", ["jobId": parts[1].json, "listenerId": "p"])
        let log = try harness.events(since: seq)
        let done = try #require(
            log.last { $0.string("topic") == "job:parts-completed" }, "\(log.compactMap { $0.string("topic") })")
        #expect(done["context"]?["jobId"] == parent.json)
        #expect(done["payload"]?["parts"] == ["total": 2, "completed": 1, "failed": 0, "canceled": 1])
        // The same after a restart: the parent is not waiting for anything.
        if harness.keepsAcrossRestart { try harness.restart() }
        try harness.call("jobs.complete", ["jobId": parent.json, "listenerId": "w1"])
    }

    @Test(
        "deleting a waiting job's predecessor fails the waiting job instead of leaving it scheduled forever",
        arguments: CoreHarness.StoreKind.allCases)
    func deletePredecessor(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let first = try #require(try harness.create(["trigger": "manual"]).string("id"))
        let waiting = try #require(try harness.create(["predecessorIds": [first.json]]).string("id"))
        try harness.call("jobs.delete", ["jobId": first.json])
        let job = try harness.get(waiting)
        #expect(job.string("status") == "failed")
        #expect(job["outcome"]?["message"] == .string("predecessor \(first) deleted"))
    }
}
