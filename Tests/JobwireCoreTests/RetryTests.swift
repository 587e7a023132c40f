import Foundation
import JobwireCore
import JobwireProtocol
import Testing

@testable import JobwireBroker

/// Retries with backoff (`jobs.fail {retry: true}`, lease expiries, `jobs.release {delaySeconds}`) and
/// attempt timeouts, on the core's clock: every delay runs out exactly when the test moves the clock past it.
@Suite struct RetryTests {
    private func create(_ harness: CoreHarness, _ params: JSONObject) throws -> (id: String, jobId: JSONValue) {
        let id = try #require(try harness.create(params).string("id"))
        return (id, .string(id))
    }

    private func topics(_ harness: CoreHarness, after count: Int) -> [String] {
        harness.publishedEvents().dropFirst(count).map(\.topic)
    }

    @Test(
        "jobs.fail {retry: true} waits out an exponential backoff per attempt, then fails at maxAttempts",
        arguments: CoreHarness.StoreKind.allCases)
    func exponentialRetries(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let (id, jobId) = try create(
            harness,
            ["maxAttempts": 4, "backoff": ["type": "exponential", "delaySeconds": 2, "maxDelaySeconds": 5]])
        #expect(try harness.get(id)["backoff"] == ["type": "exponential", "delaySeconds": 2, "maxDelaySeconds": 5])
        // Attempt n fails; its delay is 2, 4, then 5 (the cap, not 8).
        for (attempt, delay) in [(1, 2), (2, 4), (3, 5)] {
            try harness.call("jobs.ack", ["jobId": jobId, "listenerId": "w1"])
            let before = harness.publishedEvents().count
            let failed = try harness.call(
                "jobs.fail",
                ["jobId": jobId, "listenerId": "w1", "retry": true, "outcome": ["message": "downstream 503"]])
            #expect(failed["status"] == "scheduled")
            #expect(failed.int("attempt") == Int64(attempt + 1))
            #expect(failed.string("info") == "downstream 503")
            let runAt = harness.now + .seconds(delay)
            #expect(failed["runAt"] == JSONValue(runAt))
            let scheduled = try #require(harness.publishedEvents().dropFirst(before).first)
            #expect(scheduled.topic == "job:scheduled")
            #expect(scheduled.envelope["payload"]?["runAt"] == JSONValue(runAt))
            // The failed attempt's holder is fenced off.
            #expect(try harness.failure("jobs.complete", ["jobId": jobId, "listenerId": "w1"]).code == .leaseExpired)
            if attempt == 2 && harness.keepsAcrossRestart { try harness.restart() }
            harness.pass(.seconds(delay) - .milliseconds(1))
            #expect(try harness.job(id).status == .scheduled, "attempt \(attempt + 1) is ready before its delay")
            #expect(try harness.failure("jobs.ack", ["jobId": jobId, "listenerId": "w1"]).code == .leaseExpired)
            harness.pass(.milliseconds(1))
            #expect(try harness.job(id).status == .ready)
            #expect(topics(harness, after: before).last == "job:ready")
        }
        // The last attempt: retry: true fails the job as without it.
        try harness.call("jobs.ack", ["jobId": jobId, "listenerId": "w1"])
        let last = try harness.call(
            "jobs.fail", ["jobId": jobId, "listenerId": "w1", "retry": true, "outcome": ["message": "still 503"]])
        #expect(last["status"] == "failed")
        #expect(last.int("attempt") == 4)
        #expect(last["outcome"]?["message"] == "still 503")
    }

    @Test(
        "without retry: true a failed attempt ends the job; without a backoff a retry is ready at once",
        arguments: CoreHarness.StoreKind.allCases)
    func retryFlagAndNoBackoff(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let (_, plain) = try create(harness, ["maxAttempts": 3, "backoff": ["type": "fixed"]])
        try harness.call("jobs.ack", ["jobId": plain, "listenerId": "w1"])
        #expect(try harness.call("jobs.fail", ["jobId": plain, "listenerId": "w1"])["status"] == "failed")

        let (_, immediate) = try create(harness, ["maxAttempts": 3])
        try harness.call("jobs.ack", ["jobId": immediate, "listenerId": "w1"])
        let retried = try harness.call("jobs.fail", ["jobId": immediate, "listenerId": "w1", "retry": true])
        #expect(retried["status"] == "ready")
        #expect(retried.int("attempt") == 2)
        #expect(try harness.failure("jobs.fail", ["jobId": immediate, "retry": "yes"]).field == "retry")
    }

    @Test(
        "a lease expiry waits for the job's fixed backoff, across a restart, before the job is ready again",
        arguments: CoreHarness.StoreKind.allCases)
    func leaseExpiryBackoff(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let (id, jobId) = try create(
            harness, ["leaseSeconds": 3, "maxAttempts": 3, "backoff": ["type": "fixed", "delaySeconds": 10]])
        #expect(try harness.get(id)["backoff"]?.int("maxDelaySeconds") == 3600)
        for attempt in 1...2 {
            try harness.call("jobs.ack", ["jobId": jobId, "listenerId": "w1"])
            harness.pass(.seconds(3))
            let job = try harness.job(id)
            #expect(job.status == .scheduled)
            #expect(job.attempt == attempt + 1)
            #expect(job.runAt == harness.now + .seconds(10))
            #expect(job.info == "lease expired")
            if harness.keepsAcrossRestart { try harness.restart() }
            harness.pass(.milliseconds(9999))
            #expect(try harness.job(id).status == .scheduled)
            harness.pass(.milliseconds(1))
            #expect(try harness.job(id).status == .ready)
        }
        try harness.call("jobs.ack", ["jobId": jobId, "listenerId": "w1"])
        harness.pass(.seconds(3))
        #expect(try harness.job(id).status == .failed)
        #expect(try harness.job(id).outcome?.message == "lease expired")
    }

    @Test("jobs.release {delaySeconds} holds the job back that long", arguments: CoreHarness.StoreKind.allCases)
    func delayedRelease(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let (id, jobId) = try create(harness, [:])
        try harness.call("jobs.ack", ["jobId": jobId, "listenerId": "w1"])
        let bad = try harness.failure("jobs.release", ["jobId": jobId, "listenerId": "w1", "delaySeconds": -1])
        #expect(bad.field == "delaySeconds")
        let released = try harness.call("jobs.release", ["jobId": jobId, "listenerId": "w1", "delaySeconds": 30])
        #expect(released["status"] == "scheduled")
        #expect(released.int("attempt") == 2)
        #expect(released["lease"] == .null)
        harness.pass(.seconds(29))
        #expect(try harness.call("jobs.claim", ["listenerId": "w2", "jobs": ["workbook:export"]])["job"] == .null)
        harness.pass(.seconds(1))
        let claimed = try harness.call("jobs.claim", ["listenerId": "w2", "jobs": ["workbook:export"]])
        #expect(claimed["job"]?.string("id") == id)
        // Without delaySeconds a release is ready at once, as before.
        try harness.call("jobs.release", ["jobId": jobId, "listenerId": "w2"])
        #expect(try harness.job(id).status == .ready)
    }

    @Test("backoff and timeoutSeconds are checked on create, naming the field")
    func validation() throws {
        let harness = try CoreHarness(store: .memory)
        defer { harness.close() }
        let cases: [(JSONObject, String)] = [
            (["backoff": "exponential"], "backoff"),
            (["backoff": [:]], "backoff.type"),
            (["backoff": ["type": "linear"]], "backoff.type"),
            (["backoff": ["type": "fixed", "delaySeconds": 0]], "backoff.delaySeconds"),
            (["backoff": ["type": "fixed", "delaySeconds": 10, "maxDelaySeconds": 5]], "backoff.maxDelaySeconds"),
            (["backoff": ["type": "fixed", "jitter": true]], "backoff.jitter"),
            (["timeoutSeconds": 0], "timeoutSeconds"),
            (["timeoutSeconds": "5m"], "timeoutSeconds"),
        ]
        for (extra, field) in cases {
            var params: JSONObject = ["type": "workbook", "operation": "export", "source": "s"]
            for (key, value) in extra { params[key] = value }
            let error = try harness.failure("jobs.create", params)
            #expect(error.code == .invalidParams)
            #expect(error.field == field, "\(extra): \(error)")
        }
    }

    @Test(
        "an attempt past timeoutSeconds ends as an expired lease does, however often its owner renews",
        arguments: CoreHarness.StoreKind.allCases)
    func timeouts(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let (id, jobId) = try create(
            harness,
            [
                "timeoutSeconds": 10, "leaseSeconds": 4, "maxAttempts": 2,
                "backoff": ["type": "fixed", "delaySeconds": 5],
            ])
        #expect(try harness.get(id).int("timeoutSeconds") == 10)
        for attempt in 1...2 {
            let owner = JSONValue.string("w\(attempt)")
            let acked = try harness.call("jobs.ack", ["jobId": jobId, "listenerId": owner])
            let timesOutAt = harness.now + .seconds(10)
            #expect(acked["lease"]?["timesOutAt"] == JSONValue(timesOutAt))
            // Renewals every 3 s keep the 4 s lease alive, but never past the timeout.
            for _ in 0..<3 {
                harness.pass(.seconds(3))
                let renewed = try harness.call("jobs.update", ["jobId": jobId, "listenerId": owner, "progress": 10])
                let expiresAt = try #require(Timestamp(iso8601: renewed["lease"]?.string("expiresAt") ?? ""))
                #expect(expiresAt == min(harness.now + .seconds(4), timesOutAt))
            }
            if attempt == 1 && harness.keepsAcrossRestart { try harness.restart() }
            harness.pass(.milliseconds(999))
            #expect(try harness.job(id).status == .executing)
            harness.pass(.milliseconds(1))
            let late = try harness.failure("jobs.update", ["jobId": jobId, "listenerId": owner, "progress": 50])
            // The owner's next renewal learns its attempt is over (the SDK then cancels the handler).
            #expect(late.code == (attempt == 1 ? .leaseExpired : .invalidTransition))
            if attempt == 1 {
                #expect(try harness.job(id).status == .scheduled)
                #expect(try harness.job(id).attempt == 2)
                #expect(try harness.job(id).info == "timed out after 10 s")
                harness.pass(.seconds(5))
                #expect(try harness.job(id).status == .ready)
            }
        }
        let failed = try harness.job(id)
        #expect(failed.status == .failed)
        #expect(failed.outcome?.message == "timed out after 10 s")
    }
}
