import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

@Suite struct PartTests {
    /// An executing parent split into `count` parts; returns the parent and the part ids.
    func split(_ harness: Harness, count: Int, parallel: Bool) async throws -> (String, [String]) {
        let parent = try await harness.job(in: .executing)
        let result = try await harness.call(
            "jobs.split",
            [
                "jobId": parent.json, "listenerId": "w1", "parts": .int(Int64(count)),
                "runInParallel": .bool(parallel),
            ])
        return (parent, (result["parts"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue })
    }

    @Test(
        "deleting an unfinished part ends it for its parent: the next sequential part runs, parts-completed fires",
        .timeLimit(.minutes(1)), arguments: [true, false])
    func deletePart(parallel: Bool) async throws {
        let harness = try await Harness()
        let (parent, parts) = try await split(harness, count: 2, parallel: parallel)
        let seq = try await harness.seq()
        try await harness.call("jobs.delete", ["jobId": parts[0].json])
        #expect(try await harness.get(parts[1]).string("status") == "ready")
        try await harness.call("jobs.ack", ["jobId": parts[1].json, "listenerId": "p"])
        try await harness.call("jobs.complete", ["jobId": parts[1].json, "listenerId": "p"])
        let log = try await harness.events(since: seq)
        let done = try #require(
            log.last { $0.string("topic") == "job:parts-completed" }, "\(log.compactMap { $0.string("topic") })")
        #expect(done["context"]?["jobId"] == parent.json)
        #expect(done["payload"]?["parts"] == ["total": 2, "completed": 1, "failed": 0, "canceled": 1])
        // The same after a restart: the parent is not waiting for anything.
        try await harness.restart(signal: SIGKILL)
        try await harness.call("jobs.complete", ["jobId": parent.json, "listenerId": "w1"])
        await harness.close()
    }

    @Test(
        "deleting a waiting job's predecessor fails the waiting job instead of leaving it scheduled forever",
        .timeLimit(.minutes(1)))
    func deletePredecessor() async throws {
        let harness = try await Harness()
        let first = try #require(try await harness.create(["trigger": "manual"]).string("id"))
        let waiting = try #require(try await harness.create(["predecessorIds": [first.json]]).string("id"))
        try await harness.call("jobs.delete", ["jobId": first.json])
        let job = try await harness.get(waiting)
        #expect(job.string("status") == "failed")
        #expect(job["outcome"]?["message"] == .string("predecessor \(first) deleted"))
        await harness.close()
    }
}
