import Foundation
import Jobwire
import JobwireTestSupport
import Testing

/// A `jobHandler`'s retryable failures and attempt timeouts, against a real broker.
@Suite struct RetryableHandlerTests {
    struct Downstream: RetryableError, CustomStringConvertible {
        var description: String { "downstream answered 503" }
    }

    struct Broken: Error, CustomStringConvertible {
        var description: String { "the sheet has no rows" }
    }

    @Test(
        "a retryable error fails the attempt with retry: true: the job runs again after its backoff, an ordinary one fails it",
        .timeLimit(.minutes(1)))
    func retryableError() async throws {
        try await withBroker { broker in
            let listener = Listener(name: "flaky", commands: broker.commands, events: broker.events) {
                jobHandler("workbook:export") { event, _ in
                    let attempt = event.payload["attempt"]?.intValue ?? 0
                    // The conforming type on the first attempt, the wrapper on the second, then success.
                    if attempt == 1 { throw Downstream() }
                    if attempt == 2 { throw Retryable("still 503") }
                    return JobCompletion(outcome: Outcome(message: "third time lucky"))
                }
                jobHandler("workbook:import") { _, _ -> JobCompletion? in throw Broken() }
            }
            try await withRunning(listener) {
                try await withClient(try JobsClient(commands: broker.commands)) { client in
                    // A long lease: only the retry, not an expiry, can bring the job back within the wait below.
                    let flaky = try await client.create(
                        JobCreateRequest(
                            type: "workbook", operation: "export", source: "us_wb_1", leaseSeconds: 600, maxAttempts: 3,
                            backoff: Backoff(type: .fixed, delaySeconds: 1)))
                    let done = try await client.waitFor(flaky.id, .complete, timeout: .seconds(30))
                    #expect(done.attempt == 3)
                    #expect(done.outcome?.message == "third time lucky")
                    // Each failed attempt waited out its backoff in `scheduled`.
                    let scheduled = try await client.events(since: 0, topics: ["job:scheduled"]).events
                    #expect(scheduled.filter { $0.context["jobId"]?.stringValue == flaky.id }.count == 2)

                    let broken = try await client.create(
                        JobCreateRequest(
                            type: "workbook", operation: "import", source: "us_wb_1", leaseSeconds: 600, maxAttempts: 3,
                            backoff: Backoff(type: .fixed, delaySeconds: 1)))
                    let failed = try await client.waitFor(broken.id, .failed)
                    #expect(failed.attempt == 1)
                    #expect(failed.outcome?.message == "the sheet has no rows")
                }
            }
        }
    }

    @Test(
        "an attempt past timeoutSeconds cancels the handler's task and fails the job at maxAttempts",
        .timeLimit(.minutes(1)))
    func timeoutCancelsHandler() async throws {
        let (cancellations, cancelled) = AsyncStream.makeStream(of: String.self)
        try await withBroker { broker in
            let listener = Listener(name: "hung", commands: broker.commands, events: broker.events) {
                jobHandler("workbook:export") { event, _ -> JobCompletion? in
                    do {
                        // Hangs until its task is cancelled: only the timeout can end it (the lease is 600 s).
                        try await untilCancelled()
                    } catch is CancellationError {
                        cancelled.yield(event.jobId ?? "")
                        throw CancellationError()
                    }
                    return nil
                }
            }
            try await withRunning(listener) {
                try await withClient(try JobsClient(commands: broker.commands)) { client in
                    let job = try await client.create(
                        JobCreateRequest(
                            type: "workbook", operation: "export", source: "us_wb_1", leaseSeconds: 600, maxAttempts: 1,
                            timeoutSeconds: 1))
                    var stopped: String?
                    for await id in cancellations {
                        stopped = id
                        break
                    }
                    #expect(stopped == job.id)
                    let failed = try await client.waitFor(job.id, .failed)
                    #expect(failed.outcome?.message == "timed out after 1 s")
                }
            }
        }
    }
}
