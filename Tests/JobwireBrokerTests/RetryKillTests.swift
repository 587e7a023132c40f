import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing

/// A retry's backoff and an attempt's timeout across a broker killed with SIGKILL: both are deadlines in
/// the store (`runAt`, `lease.timesOutAt`), so a restarted broker keeps them. The rules themselves are
/// tested on the core's clock (RetryTests in JobwireCoreTests).
@Suite struct RetryKillTests {
    @Test(
        "a backoff waiting in scheduled and an attempt's timeout hold across a SIGKILL restart",
        .timeLimit(.minutes(1)))
    func backoffAndTimeoutSurviveKill() async throws {
        try await withHarness { harness in
            let retried = try #require(
                try await harness.create([
                    "maxAttempts": 2, "backoff": ["type": "fixed", "delaySeconds": 2], "priority": 4,
                ]).string("id"))
            try await harness.call("jobs.ack", ["jobId": retried.json, "listenerId": "w1"])
            let scheduled = try await harness.call(
                "jobs.fail", ["jobId": retried.json, "listenerId": "w1", "retry": true])
            #expect(scheduled.string("status") == "scheduled")
            let runAt = try #require(Timestamp(iso8601: scheduled.string("runAt") ?? ""))

            let hung = try #require(
                try await harness.create(
                    ["timeoutSeconds": 2, "leaseSeconds": 600, "maxAttempts": 1], operation: "import"
                ).string("id"))
            let taken = try await harness.call("jobs.ack", ["jobId": hung.json, "listenerId": "w1"])
            let timesOutAt = try #require(Timestamp(iso8601: taken["lease"]?["timesOutAt"]?.stringValue ?? ""))

            try await harness.restart(signal: SIGKILL)

            // The retried job comes back ready on attempt 2, not before its runAt.
            try await eventually("the retried job to be ready") {
                try await harness.get(retried).string("status") == "ready"
            }
            let back = try await harness.get(retried)
            #expect(back.int("attempt") == 2)
            #expect(back.int("priority") == 4)
            let ready = try await harness.events(since: 0, topics: ["job:ready"]).filter {
                $0["context"]?["jobId"]?.stringValue == retried
            }
            let readyAgain = try #require(Timestamp(iso8601: ready.last?["createdAt"]?.stringValue ?? ""))
            #expect(ready.count == 2)
            #expect(readyAgain >= runAt)

            // The held attempt ends at its timeout, though its lease had 600 s to run.
            try await eventually("the hung job to time out") {
                try await harness.get(hung).string("status") == "failed"
            }
            let failed = try await harness.get(hung)
            #expect(failed["outcome"]?["message"] == "timed out after 2 s")
            let finishedAt = try #require(Timestamp(iso8601: failed.string("finishedAt") ?? ""))
            #expect(finishedAt >= timesOutAt)
            let late = try await harness.failure("jobs.complete", ["jobId": hung.json, "listenerId": "w1"])
            #expect(late.code == .invalidTransition)
        }
    }
}
