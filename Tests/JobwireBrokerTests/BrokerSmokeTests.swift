import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

@Suite struct BrokerSmokeTests {
    @Test("a job created on a broker process survives a SIGKILL and a restart", .timeLimit(.minutes(1)))
    func createSurvivesKill() async throws {
        let broker = try await BrokerProcess.start()
        let context = try Context()
        let client = try RawClient(context: context, endpoint: broker.commands)
        let created = try await client.result(
            "jobs.create", ["type": "workbook", "operation": "export", "source": "us_wb_1"])
        let id = try #require(created["id"]?.stringValue)
        await client.close()
        await broker.kill(SIGKILL)
        let again = try await broker.restart()
        let client2 = try RawClient(context: context, endpoint: again.commands)
        let job = try await client2.result("jobs.get", ["jobId": .string(id)])
        #expect(job["status"] == "ready")
        await client2.close()
        await again.stop()
    }
}
