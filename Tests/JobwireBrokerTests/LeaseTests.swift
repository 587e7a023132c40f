import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

@Suite struct LeaseTests {
    @Test(
        "leases: the first ack wins, the owner renews, expiry requeues until maxAttempts, former owners are fenced off",
        .timeLimit(.minutes(1)))
    func leaseLifecycle() async throws {
        let harness = try await Harness()
        let subscriber = try await harness.subscribe("job:")
        // A 3 s lease renewed every 300 ms: even a busy machine renews in time.
        let id = try #require(try await harness.create(["leaseSeconds": 3, "maxAttempts": 2]).string("id"))
        let jobId = id.json
        let seq0 = try await harness.seq()

        // Conflict: the first ack wins.
        let first = try await harness.call("jobs.ack", ["jobId": jobId, "listenerId": "w1"])
        #expect(first["lease"]?["owner"] == "w1")
        let second = try await harness.failure("jobs.ack", ["jobId": jobId, "listenerId": "w2"])
        #expect(second.code == .conflict)
        #expect(second.type == "conflict")

        // Renewal: every ack or update of the owner pushes expiresAt on; the job outlives its 3 s lease.
        var expiry = try #require(first["lease"]?["expiresAt"]?.stringValue)
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .milliseconds(3500) {
            try await Task.sleep(for: .milliseconds(300))
            let renewed = try await harness.call("jobs.update", ["jobId": jobId, "listenerId": "w1", "info": "alive"])
            let next = try #require(renewed["lease"]?["expiresAt"]?.stringValue)
            #expect(Timestamp(iso8601: next)! >= Timestamp(iso8601: expiry)!)
            expiry = next
        }
        #expect(try await harness.get(id).string("status") == "executing")
        #expect(try await harness.get(id).int("attempt") == 1)

        // Expiry: requeued with attempt 2, published as job:ready.
        let requeued = try await subscriber.waitForEvents(since: seq0) { events in
            events.contains { $0.topic == "job:ready" }
        }
        #expect(requeued.last?.envelope["payload"]?["attempt"] == 2)
        #expect(try await harness.get(id)["lease"] == .null)

        // Fencing: the former owner's late calls get lease_expired while the job is ready or held by another.
        for method in ["jobs.complete", "jobs.fail", "jobs.update", "jobs.release"] {
            let late = try await harness.failure(method, ["jobId": jobId, "listenerId": "w1"])
            #expect(late.code == .leaseExpired, "\(method) of a former owner on a ready job: \(late)")
        }
        try await harness.call("jobs.ack", ["jobId": jobId, "listenerId": "w2"])
        let seqHeld = try await harness.seq()
        let late = try await harness.failure("jobs.complete", ["jobId": jobId, "listenerId": "w1"])
        #expect(late.code == .leaseExpired)
        let stranger = try await harness.failure("jobs.complete", ["jobId": jobId, "listenerId": "w3"])
        #expect(stranger.code == .conflict)
        #expect(try await harness.seq() == seqHeld)

        // maxAttempts: the second expiry fails the job, with exactly one job:failed for the attempt.
        let ended = try await subscriber.waitForEvents(since: seqHeld) { $0.contains { $0.topic == "job:failed" } }
        #expect(ended.map(\.topic) == ["job:failed"])
        let failed = try await harness.get(id)
        #expect(failed.string("status") == "failed")
        #expect(failed["outcome"]?["message"] == "lease expired")
        let afterEnd = try await harness.failure("jobs.complete", ["jobId": jobId, "listenerId": "w2"])
        #expect(afterEnd.code == .invalidTransition)
        // An operator (no listenerId) may act on a leased job; a retry gives the former owner a new claim.
        try await harness.call("jobs.retry", ["jobId": jobId])
        let reclaimed = try await harness.call("jobs.ack", ["jobId": jobId, "listenerId": "w1"])
        #expect(reclaimed["lease"]?["owner"] == "w1")
        try await harness.call("jobs.fail", ["jobId": jobId, "outcome": ["message": "operator"]])
        #expect(try await harness.get(id).string("status") == "failed")
        await subscriber.close()
        await harness.close()
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
