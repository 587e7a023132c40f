import Foundation
import JobwireCore
import JobwireProtocol
import Testing

@testable import JobwireBroker

/// Leases on the core's clock: time moves only when the test moves it.
@Suite struct LeaseTests {
    @Test(
        "leases: the first ack wins, the owner renews, expiry requeues until maxAttempts, former owners are fenced off",
        arguments: CoreHarness.StoreKind.allCases)
    func leaseLifecycle(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        func advance(_ duration: Duration) { harness.pass(duration) }
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
}

@Suite struct LeaseTimerTests {
    @Test(
        "renewals do not grow the timer heap: one entry per leased job, and the lease still runs out on time",
        arguments: CoreHarness.StoreKind.allCases)
    func renewalsKeepOneEntry(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let created = try harness.call(
            "jobs.create", ["type": "t", "operation": "o", "source": "s", "leaseSeconds": 86_400, "maxAttempts": 2])
        let id = try #require(created["id"]?.stringValue)
        try harness.call("jobs.ack", ["jobId": .string(id), "listenerId": "l"])
        // A client that reports progress as fast as it can, for a day-long lease.
        for step in 0..<2_000 {
            harness.advance(by: .milliseconds(10))
            harness.send(
                "jobs.update", ["jobId": .string(id), "listenerId": "l", "progress": .double(Double(step % 100))])
            if step % 100 == 99 { harness.commit() }
        }
        harness.commit()
        #expect(harness.core.leases.count == 1)
        let renewedUntil = try #require(try harness.job(id).lease?.expiresAt)
        #expect(renewedUntil == harness.now + .seconds(86_400))

        // The first entry comes up at the first expiry, finds the lease renewed and waits for the new one.
        harness.pass(.seconds(86_400) - .milliseconds(20_000))
        #expect(try harness.job(id).status == .executing)
        #expect(harness.core.leases.count == 1)
        harness.pass(.milliseconds(19_999))
        #expect(try harness.job(id).status == .executing)
        harness.pass(.milliseconds(1))
        let requeued = try harness.job(id)
        #expect(requeued.status == .ready)
        #expect(requeued.attempt == 2)
        #expect(harness.core.leases.count == 0)
    }
}
