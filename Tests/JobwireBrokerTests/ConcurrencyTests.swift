import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

@Suite struct ConcurrencyTests {
    @Test(
        "200 DEALER connections with several requests each in flight all get their own replies",
        .timeLimit(.minutes(1)))
    func manyClients() async throws {
        try await withHarness { harness in
            let clients = try (0..<200).map { _ in try harness.newClient() }
            let perClient = 4
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for (c, client) in clients.enumerated() {
                    for n in 0..<perClient {
                        group.addTask {
                            let source = "c\(c)-r\(n)"
                            let job = try await client.call(
                                "jobs.create", ["type": "sheet", "operation": "load", "source": .string(source)],
                                timeout: .seconds(40)
                            ).result.get()
                            let id = try #require(job["id"]?.stringValue)
                            let read = try await client.call("jobs.get", ["jobId": .string(id)], timeout: .seconds(40))
                                .result.get()
                            return job["source"] == .string(source) && read["source"] == .string(source) ? 0 : 1
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0)
            let info = try await harness.info()
            #expect(info["jobs"]?["ready"] == .int(Int64(clients.count * perClient)))
            #expect(info["seq"] == .int(Int64(clients.count * perClient * 2)))
            await withTaskGroup(of: Void.self) { group in
                for client in clients { group.addTask { await client.close() } }
            }
        }
    }
}
