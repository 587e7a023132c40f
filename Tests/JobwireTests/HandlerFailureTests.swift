import Foundation
import Jobwire
import JobwireTestSupport
import Testing

@Suite struct HandlerFailureTests {
    struct Broken: Error {}

    @Test(
        "an on() handler that acks and then throws releases its job, so the next attempt starts at once",
        .timeLimit(.minutes(1)))
    func throwingHandlerReleases() async throws {
        try await withBroker { broker in
            let listener = Listener(name: "flaky", commands: broker.commands, events: broker.events) {
                on("job:ready", job: "workbook:export") { event in
                    // The first attempt fails after taking the job; the second completes it.
                    let job = try await event.ack(progress: 0)
                    if job.attempt == 1 { throw Broken() }
                    try await event.complete(outcome: Outcome(message: "second time lucky"))
                }
            }
            try await withRunning(listener) {
                let client = try JobsClient(commands: broker.commands)
                // A long lease: only a release, not an expiry, can bring the job back within the wait below.
                let job = try await client.create(
                    JobCreateRequest(type: "workbook", operation: "export", source: "us_wb_1", leaseSeconds: 600))
                let done = try await client.waitFor(job.id, .complete, timeout: .seconds(20))
                #expect(done.attempt == 2)
                #expect(done.outcome?.message == "second time lucky")
            }
        }
    }
}
