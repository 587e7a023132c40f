import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

@Suite struct ShutdownTests {
    @Test(
        "a graceful stop answers a waiting claim with job null instead of leaving it unanswered",
        .timeLimit(.minutes(1)))
    func stopAnswersWaitingClaims() async throws {
        try await withHarness { harness in
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
        }
    }
}
