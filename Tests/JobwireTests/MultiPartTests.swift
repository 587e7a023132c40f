import Foundation
import Jobwire
import JobwireTestSupport
import Testing

@Suite struct MultiPartTests {
    /// Starts `count` multi-part listeners named `exporter-1`… and waits until each receives events live.
    static func exporters(_ count: Int, broker: BrokerProcess, workMs: Int = 300) async throws -> [ListenerProcess] {
        let listeners = try (1...count).map {
            try ListenerProcess(
                "multi-part", broker: broker, name: "exporter-\($0)", environment: ["JOBWIRE_WORK_MS": "\(workMs)"])
        }
        for listener in listeners { try await listener.waitUntilLive() }
        return listeners
    }

    /// The process a part ran in, from its outcome (`Exported part 2 of 6 in exporter-3`).
    static func process(of part: Job) -> String? {
        guard let message = part.outcome?.message, let range = message.range(of: " in ") else { return nil }
        return String(message[range.upperBound...])
    }

    /// Events of the log, every page.
    static func allEvents(_ client: JobsClient, topics: [String]? = nil) async throws -> [Event] {
        var events: [Event] = []
        var since: Int64 = 0
        while true {
            let page = try await client.events(since: since, topics: topics)
            events += page.events
            guard let last = page.events.last?.seq, page.events.count >= 1000 else { return events }
            since = last
        }
    }

    @Test(
        "three processes run every part exactly once, in more than one process, and the parent completes after job:parts-completed",
        .timeLimit(.minutes(1)))
    func parallelParts() async throws {
        try await withBroker { broker in
            let listeners = try await Self.exporters(3, broker: broker)
            try await withListeners(listeners) { _ in
                let client = try JobsClient(commands: broker.commands)
                let parent = try await client.create(
                    JobCreateRequest(
                        type: "workbook", operation: "export", source: "us_wb_1", input: ["parts": 6],
                        context: ["workbookId": "us_wb_1"]))
                let done = try await client.waitFor(parent.id, .complete)
                #expect(done.outcome == Outcome(message: "6 of 6 parts completed", heading: "Export ready"))
                #expect(done.partExecution == .parallel)

                let parts = try await client.parts(of: parent.id)
                #expect(parts.map(\.part) == [0, 1, 2, 3, 4, 5])
                #expect(parts.allSatisfy { $0.status == .complete && $0.isPart && $0.parentId == parent.id })
                #expect(
                    parts.allSatisfy {
                        $0.partData?["total"] == 6 && $0.partData?["part"] == .int(Int64($0.part ?? -1))
                    })
                #expect(parts.allSatisfy { $0.workbookId == "us_wb_1" })
                for part in parts {
                    #expect(
                        part.outcome?.message?.hasPrefix("Exported part \((part.part ?? 0) + 1) of 6 in exporter-")
                            == true)
                }
                // Every part and the parent ended exactly once; nothing else was created (no part was split again).
                let ids = [parent.id] + parts.map(\.id)
                #expect(try await client.endings() == Dictionary(uniqueKeysWithValues: ids.map { ($0, 1) }))
                #expect(try await client.list(JobQuery(pageSize: 100)).totalCount == 7)

                // The parts spread over the processes, and each process ran one part at a time.
                let byProcess = Dictionary(grouping: parts) { Self.process(of: $0) ?? "?" }
                #expect(byProcess.count >= 2, "parts ran in \(byProcess.keys.sorted())")
                for (_, ran) in byProcess {
                    let spans = ran.compactMap { part in part.startedAt.flatMap { s in part.finishedAt.map { (s, $0) } }
                    }
                    .sorted { $0.0 < $1.0 }
                    #expect(spans.count == ran.count)
                    for (earlier, later) in zip(spans, spans.dropFirst()) { #expect(earlier.1 <= later.0) }
                }

                // The parent completed after job:parts-completed, which counted every part.
                let events = try await Self.allEvents(client, topics: ["job:parts-completed", "job:completed"])
                let partsCompleted = events.filter { $0.topic == "job:parts-completed" }
                #expect(partsCompleted.count == 1)
                let summary = try #require(partsCompleted.first)
                #expect(summary.context["jobId"]?.stringValue == parent.id)
                #expect(PartsSummary(json: summary.payload["parts"]) == PartsSummary(total: 6, completed: 6))
                let parentCompleted = try #require(
                    events.first { $0.topic == "job:completed" && $0.context["jobId"]?.stringValue == parent.id })
                let lastPart = try #require(
                    events.filter { $0.topic == "job:completed" && $0.payload["isPart"] == true }.compactMap(\.seq)
                        .max())
                #expect((summary.seq ?? 0) > lastPart)
                #expect((parentCompleted.seq ?? 0) > (summary.seq ?? .max))
                for listener in listeners { #expect(await listener.stop() == 0) }
            }
        }
    }

    @Test(
        "isPart routes the parent to the splitter and parts to the part handler; a failed part is counted",
        .timeLimit(.minutes(1)))
    func isPartRouting() async throws {
        try await withBroker { broker in
            let listeners = try await Self.exporters(1, broker: broker, workMs: 100)
            try await withListeners(listeners) { _ in
                let client = try JobsClient(commands: broker.commands)
                let parent = try await client.create(
                    type: "workbook", operation: "export", source: "us_wb_1", input: ["parts": 3, "failPart": 1])
                let done = try await client.waitFor(parent.id, .complete)
                #expect(
                    done.outcome
                        == Outcome(
                            message: "2 of 3 parts completed, 1 failed", heading: "Export incomplete", acknowledge: true
                        )
                )
                let parts = try await client.parts(of: parent.id)
                #expect(parts.map(\.status) == [.complete, .failed, .complete])
                #expect(parts[0].outcome?.message == "Exported part 1 of 3 in exporter-1")
                #expect(parts[1].outcome == Outcome(message: "part 2 of 3 failed in exporter-1", acknowledge: true))

                // The parent was acked by the splitter only, the parts by the part handler only (it acks with
                // info "Accepted"), and no part was ever split.
                let updates = try await Self.allEvents(client, topics: ["job:updated"])
                let parentInfo = Set(
                    updates.filter { $0.context["jobId"]?.stringValue == parent.id }.compactMap {
                        $0.payload["info"]?.stringValue
                    })
                #expect(parentInfo.isSuperset(of: ["Splitting", "Split into 3 parts"]))
                #expect(!parentInfo.contains("Accepted"))
                let partIds = Set(parts.map(\.id))
                let partInfo = Set(
                    updates.filter { partIds.contains($0.context["jobId"]?.stringValue ?? "") }
                        .compactMap { $0.payload["info"]?.stringValue })
                #expect(partInfo.contains("Accepted"))
                #expect(!partInfo.contains("Splitting"))
                #expect(try await client.list(JobQuery(pageSize: 100)).totalCount == 4)
            }
        }
    }

    @Test("a sequential split runs its parts one at a time, in order", .timeLimit(.minutes(1)))
    func sequentialParts() async throws {
        try await withBroker { broker in
            let listeners = try await Self.exporters(2, broker: broker, workMs: 200)
            try await withListeners(listeners) { _ in
                let client = try JobsClient(commands: broker.commands)
                let parent = try await client.create(
                    type: "workbook", operation: "export", source: "us_wb_1", input: ["parts": 3, "sequential": true])
                let done = try await client.waitFor(parent.id, .complete)
                #expect(done.outcome?.message == "3 of 3 parts completed")
                #expect(done.partExecution == .sequential)
                let parts = try await client.parts(of: parent.id)
                #expect(parts.map(\.status) == [.complete, .complete, .complete])
                for (earlier, later) in zip(parts, parts.dropFirst()) {
                    let finished = try #require(earlier.finishedAt)
                    let started = try #require(later.startedAt)
                    #expect(
                        finished <= started, "part \(later.part ?? -1) started before part \(earlier.part ?? -1) ended")
                }
                // In the log: each part becomes ready only after the one before it completed.
                let events = try await Self.allEvents(client, topics: ["job:ready", "job:completed"])
                func seq(_ topic: String, _ job: Job) -> Int64? {
                    events.first { $0.topic == topic && $0.context["jobId"]?.stringValue == job.id }?.seq
                }
                for (earlier, later) in zip(parts, parts.dropFirst()) {
                    let completed = try #require(seq("job:completed", earlier))
                    let ready = try #require(seq("job:ready", later))
                    #expect(completed < ready)
                }
                #expect(
                    try await client.endings()
                        == Dictionary(uniqueKeysWithValues: ([parent] + parts).map { ($0.id, 1) }))
            }
        }
    }
}
