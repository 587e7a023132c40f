import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing

@testable import JobwireBroker
import ZeroMQ

@Suite struct LeaseTests {
    @Test(
        "leases: the first ack wins, the owner renews, expiry requeues until maxAttempts, former owners are fenced off")
    func leaseLifecycle() throws {
        // In-process, on the broker's own clock: time moves only when the test moves it.
        let harness = try CoreHarness()
        defer { harness.close() }
        func advance(_ duration: Duration) {
            harness.advance(by: duration)
            harness.core.tick()
            harness.commit()
            harness.settle()
        }
        func topics(after count: Int) -> [String] {
            harness.published.dropFirst(count).map { String(decoding: $0[0], as: UTF8.self) }
        }
        let id = try #require(
            try harness.call(
                "jobs.create",
                ["type": "workbook", "operation": "export", "source": "s", "leaseSeconds": 3, "maxAttempts": 2])[
                    "id"]?.stringValue)
        let jobId = JSONValue.string(id)

        // Conflict: the first ack wins.
        let first = try harness.call("jobs.ack", ["jobId": jobId, "listenerId": "w1"])
        #expect(first["lease"]?["owner"] == "w1")
        let second = try harness.failure("jobs.ack", ["jobId": jobId, "listenerId": "w2"])
        #expect(second.code == .conflict)
        #expect(second.type == "conflict")

        // Renewal: every ack or update of the owner pushes expiresAt on; the job outlives its 3 s lease.
        var expiry = try #require(Timestamp(iso8601: first["lease"]?["expiresAt"]?.stringValue ?? ""))
        for _ in 0..<12 {
            advance(.milliseconds(300))
            let renewed = try harness.call("jobs.update", ["jobId": jobId, "listenerId": "w1", "info": "alive"])
            let next = try #require(Timestamp(iso8601: renewed["lease"]?["expiresAt"]?.stringValue ?? ""))
            #expect(next == harness.now + .seconds(3))
            #expect(next > expiry)
            expiry = next
        }
        #expect(try harness.job(id).status == .executing)
        #expect(try harness.job(id).attempt == 1)

        // Expiry: not a millisecond early; then requeued with attempt 2, published as job:ready.
        let beforeExpiry = harness.published.count
        advance(.milliseconds(2999))
        #expect(try harness.job(id).status == .executing)
        advance(.milliseconds(1))
        #expect(topics(after: beforeExpiry) == ["job:ready/workbook:export/"])
        #expect(try harness.job(id).attempt == 2)
        #expect(try harness.job(id).lease == nil)

        // Fencing: the former owner's late calls get lease_expired while the job is ready or held by another.
        for method in ["jobs.complete", "jobs.fail", "jobs.update", "jobs.release"] {
            let late = try harness.failure(method, ["jobId": jobId, "listenerId": "w1"])
            #expect(late.code == .leaseExpired, "\(method) of a former owner on a ready job: \(late)")
        }
        try harness.call("jobs.ack", ["jobId": jobId, "listenerId": "w2"])
        let held = harness.published.count
        let late = try harness.failure("jobs.complete", ["jobId": jobId, "listenerId": "w1"])
        #expect(late.code == .leaseExpired)
        let stranger = try harness.failure("jobs.complete", ["jobId": jobId, "listenerId": "w3"])
        #expect(stranger.code == .conflict)
        #expect(harness.published.count == held)

        // maxAttempts: the second expiry fails the job, with exactly one job:failed for the attempt.
        advance(.seconds(3))
        #expect(topics(after: held) == ["job:failed/workbook:export/"])
        let failed = try harness.job(id)
        #expect(failed.status == .failed)
        #expect(failed.outcome?.message == "lease expired")
        let afterEnd = try harness.failure("jobs.complete", ["jobId": jobId, "listenerId": "w2"])
        #expect(afterEnd.code == .invalidTransition)
        // An operator (no listenerId) may act on a leased job; a retry gives the former owner a new claim.
        try harness.call("jobs.retry", ["jobId": jobId])
        let reclaimed = try harness.call("jobs.ack", ["jobId": jobId, "listenerId": "w1"])
        #expect(reclaimed["lease"]?["owner"] == "w1")
        try harness.call("jobs.fail", ["jobId": jobId, "outcome": ["message": "operator"]])
        #expect(try harness.job(id).status == .failed)
    }

    @Test("jobs.claim hands each ready job to exactly one of several waiting claimers", .timeLimit(.minutes(1)))
    func claims() async throws {
        let harness = try await Harness()
        let clients = try (0..<6).map { _ in try harness.newClient() }
        let results = try await withThrowingTaskGroup(of: String?.self) { group -> ([String], [String?]) in
            for (n, client) in clients.enumerated() {
                group.addTask {
                    let reply = try await client.call(
                        "jobs.claim", ["listenerId": .string("c\(n)"), "jobs": ["file:*"], "wait": 20],
                        timeout: .seconds(30))
                    return try reply.result.get()["job"]?["id"]?.stringValue
                }
            }
            // Whether a claim arrives before or after a job becomes ready, each job goes to one claimer.
            var ids: [String] = []
            for _ in 0..<6 {
                ids.append(try #require(try await harness.create(type: "file", operation: "import").string("id")))
            }
            var got: [String?] = []
            for try await id in group { got.append(id) }
            return (ids, got)
        }
        let (ids, got) = results
        #expect(Set(got.compactMap { $0 }) == Set(ids), "every job claimed exactly once")
        #expect(got.compactMap { $0 }.count == 6)
        for client in clients { await client.close() }
        // A claim with nothing ready and no wait answers null at once.
        let none = try await harness.call("jobs.claim", ["jobs": ["nothing:*"]])
        #expect(none["job"] == .null)
        await harness.close()
    }
}

@Suite struct ShutdownTests {
    @Test(
        "a graceful stop answers a waiting claim with job null instead of leaving it unanswered",
        .timeLimit(.minutes(1)))
    func stopAnswersWaitingClaims() async throws {
        let harness = try await Harness()
        let claimer = try harness.newClient()
        let claim = Task {
            try await claimer.call(
                "jobs.claim", ["listenerId": "c", "jobs": ["nothing:*"], "wait": 30], timeout: .seconds(5))
        }
        // The claim is waiting once a later request on the same connection has been answered.
        _ = try await claimer.result("broker.info")
        let status = await harness.process.stop()
        #expect(status == 0)
        let reply = try await claim.value
        #expect(try reply.result.get()["job"] == .null)
        await claimer.close()
        await harness.close()
    }
}
