import Foundation
import Jobwire
import JobwireProtocol
import JobwireTestSupport
import Testing

@Suite("jobwire events tail across short pages", .timeLimit(.minutes(1)))
struct EventFeedPagingTests {
    @Test("replay follows nextSince when events.list cuts a page short at its byte budget")
    func shortPages() async throws {
        try await withBroker { broker in
            let client = try JobsClient(commands: broker.commands)
            // 8 job:ready events of ~200 KB: a 1 MiB page holds about 5 of them, well under the limit of 1000.
            let input: JSONValue = ["blob": .string(String(repeating: "x", count: 200_000))]
            for index in 0..<8 {
                _ = try await client.create(
                    JobCreateRequest(type: "workbook", operation: "export", source: "us_wb_\(index)", input: input))
            }
            await client.close()
            let tail = try await CLIProcess.run(
                ["events", "tail", "job:ready", "--since", "0", "--count", "8", "--json"], broker: broker)
            #expect(tail.status == 0, "\(tail.stderr)")
            let events = try tail.jsonLines.map { try Event(json: $0) }
            #expect(events.map(\.seq) == [2, 4, 6, 8, 10, 12, 14, 16])
        }
    }
}
