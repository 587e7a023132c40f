import Foundation
import Jobwire
import JobwireTestSupport
import Testing

/// Copies of one example listener, sharing its name, as a user scales out: each job runs once.
@Suite struct ScaledOutTests {
    @Test(
        "three copies of an example listener with the same name run every job exactly once",
        .timeLimit(.minutes(3)),
        arguments: [
            // The workbook export acks each job from its job:ready event, which every copy receives.
            ("workbook-export", "Starting the export"),
            // The jobHandler claims each job.
            ("job-handler", "Exported 1 of 4 sheets"),
        ])
    func copiesRunEachJobOnce(example: String, firstStep: String) async throws {
        try await withBroker { broker in
            // No --name: the copies share the example's default name, as two terminals running it would.
            let copies = try (1...3).map { _ in try ListenerProcess(example, broker: broker) }
            try await withListeners(copies) { _ in
                for copy in copies { try await copy.waitUntilLive() }
                let client = try JobsClient(commands: broker.commands)
                try await withClient(client) { client in

                    var ids: [String] = []
                    for index in 1...30 {
                        let job = try await client.create(
                            JobCreateRequest(
                                type: "workbook", operation: "export", source: "us_wb_\(index)",
                                context: ["workbookId": .string("us_wb_\(index)")]))
                        ids.append(job.id)
                    }
                    try await eventually("30 jobs to end", timeout: .seconds(120), every: .milliseconds(200)) {
                        try await client.endings().count == ids.count
                    }
                    // A graceful stop lets every handler still running end, so a doubled one has logged its error by then.
                    for copy in copies { #expect(await copy.stop() == 0) }

                    #expect(try await client.endings() == Dictionary(uniqueKeysWithValues: ids.map { ($0, 1) }))
                    for id in ids { #expect(try await client.get(jobId: id).status == .complete, "\(id)") }
                    // Each job was started by one handler once: one first-step update per job.
                    let started = try await client.updates(withInfo: firstStep)
                    #expect(started == Dictionary(uniqueKeysWithValues: ids.map { ($0, 1) }))
                    // Each copy took some jobs, and none logged an error or a warning.
                    for (index, copy) in copies.enumerated() {
                        let log = copy.log
                        let complaints = log.split(separator: "\n").filter { line in
                            let level = line.split(separator: " ", maxSplits: 2).dropFirst().first ?? ""
                            return ["error", "warning", "critical"].contains(level) || line.contains("cannot complete")
                        }
                        #expect(
                            complaints.isEmpty,
                            "copy \(index + 1) of \(example) complained:\n\(complaints.joined(separator: "\n"))"
                        )
                    }
                }
            }
        }
    }
}

@Suite struct ScaledOutMultiPartTests {
    @Test(
        "three copies of the multi-part example with the same name end every parent and part exactly once",
        .timeLimit(.minutes(3)))
    func copiesSplitEachJobOnce() async throws {
        try await withBroker { broker in
            let copies = try (1...3).map { _ in try ListenerProcess("multi-part", broker: broker) }
            try await withListeners(copies) { _ in
                for copy in copies { try await copy.waitUntilLive() }
                let client = try JobsClient(commands: broker.commands)
                try await withClient(client) { client in
                    var parents: [String] = []
                    for index in 1...8 {
                        let job = try await client.create(
                            JobCreateRequest(
                                type: "workbook", operation: "export", source: "us_wb_\(index)", input: ["parts": 3]))
                        parents.append(job.id)
                    }
                    // 8 parents and their 3 parts each.
                    try await eventually(
                        "every parent and part to end", timeout: .seconds(120), every: .milliseconds(200)
                    ) {
                        try await client.endings().count == parents.count * 4
                    }
                    for copy in copies { #expect(await copy.stop() == 0) }
                    let endings = try await client.endings()
                    #expect(endings.values.allSatisfy { $0 == 1 }, "\(endings.filter { $0.value != 1 })")
                    for id in parents { #expect(try await client.get(jobId: id).status == .complete, "\(id)") }
                    // Each parent was taken and split by one copy once: its ack and its split publish a job:updated each
                    // while its info says "Splitting"; a second copy running it would add two more.
                    let splitting = try await client.updates(withInfo: "Splitting")
                    #expect(splitting == Dictionary(uniqueKeysWithValues: parents.map { ($0, 2) }), "\(splitting)")
                    for (index, copy) in copies.enumerated() {
                        let complaints = copy.log.split(separator: "\n").filter { line in
                            let level = line.split(separator: " ", maxSplits: 2).dropFirst().first ?? ""
                            return ["error", "warning", "critical"].contains(level) || line.contains("cannot complete")
                        }
                        #expect(
                            complaints.isEmpty, "copy \(index + 1) complained:\n\(complaints.joined(separator: "\n"))")
                    }
                }
            }
        }
    }
}

extension JobsClient {
    /// How many `job:updated` events with this `info` each job had, from the log.
    func updates(withInfo info: String) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        var since: Int64 = 0
        while true {
            let page = try await events(since: since, topics: ["job:updated"])
            for event in page.events where event.payload["info"]?.stringValue == info {
                if let id = event.context["jobId"]?.stringValue { counts[id, default: 0] += 1 }
            }
            // A page may stop short of the log's end with any number of events: follow nextSince.
            guard !page.isComplete, page.nextSince > since else { return counts }
            since = page.nextSince
        }
    }
}
