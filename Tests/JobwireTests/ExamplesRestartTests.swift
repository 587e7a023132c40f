import Foundation
import Jobwire
import JobwireTestSupport
import Testing

@Suite struct ExamplesRestartTests {
    @Test(
        "a broker restart keeps the mounted action, a scheduled job and a split parent whose parts finish after it",
        .timeLimit(.minutes(1)))
    func restart() async throws {
        // The first broker is killed below; its scope only makes sure it is gone however the test ends.
        try await withBroker { first in
            let actions = try ListenerProcess("actions", broker: first)
            let exporters = try (1...2).map {
                try ListenerProcess(
                    "multi-part", broker: first, name: "exporter-\($0)", environment: ["JOBWIRE_WORK_MS": "2000"])
            }
            try await withListeners([actions] + exporters) { _ in
                for listener in [actions] + exporters { try await listener.waitUntilLive() }
                var client = try JobsClient(commands: first.commands)
                let action = try await ActionsExampleTests.submitAction(client)

                // A split parent whose parts are running, and a job scheduled for after the restart. Eight parts
                // of 2 s on two exporters: some are still to run however late the machine sees the first start.
                let parent = try await client.create(
                    JobCreateRequest(type: "workbook", operation: "export", source: "us_wb_1", input: ["parts": 8]))
                let runAt = Timestamp.now() + .seconds(4)
                let scheduled = try await client.create(
                    JobCreateRequest(
                        type: "workbook", operation: "export", source: "us_wb_2", input: ["parts": 2], runAt: runAt))
                // Scheduled unless the broker took the create after runAt (a stalled machine): the broker's
                // clock decides.
                #expect(scheduled.status == (runAt > scheduled.createdAt ? .scheduled : .ready))
                try await eventually("parts to run") {
                    try await client.parts(of: parent.id).contains { $0.status == .executing }
                }
                // The exporters are frozen before the kill, so the parts not ended now can only end after the
                // restart, however long the machine takes from here to the kill.
                for exporter in exporters { exporter.signal(SIGSTOP) }
                let unfinished = Set(try await client.parts(of: parent.id).filter { !$0.status.isTerminal }.map(\.id))
                #expect(!unfinished.isEmpty, "every part ended before the kill; nothing was tested")

                await first.kill(SIGKILL)
                try await withBroker(try await first.restart()) { broker in
                    await client.close()
                    client = try JobsClient(commands: broker.commands)
                    let restartedAt = try #require(try await client.brokerInfo().startedAt)
                    for exporter in exporters { exporter.signal(SIGCONT) }

                    // The action is still mounted, once, and a click still runs; a new listener does not mount it
                    // again.
                    let mounted = try await client.listActions(domain: "workbook", resourceId: "us_wb_1")
                    #expect(mounted.map(\.id) == [action.id])
                    #expect(mounted.first?.requiredInputKeys == ["email"])
                    try await withListener("actions", broker: broker, name: "actions-2") { again in
                        try await eventually("the new listener to start") { again.log.contains("action mounted") }
                        #expect(try await client.listActions(domain: "workbook", resourceId: "us_wb_1").count == 1)
                        let click = try await client.triggerAction(action, input: ["email": "ada@example.com"])
                        let submitted = try await client.waitFor(click.id, .complete, timeout: .seconds(30))
                        #expect(
                            submitted.outcome?.message == "Submitted us_wb_1 for review; ada@example.com will hear back"
                        )

                        // The split parent completes once its parts, which finish after the restart, have ended.
                        let done = try await client.waitFor(parent.id, .complete, timeout: .seconds(40))
                        #expect(done.outcome?.message == "8 of 8 parts completed")
                        let parts = try await client.parts(of: parent.id)
                        #expect(parts.count == 8)
                        for part in parts where unfinished.contains(part.id) {
                            #expect(
                                try #require(part.finishedAt) > restartedAt,
                                "part \(part.part ?? -1) ended before the restart")
                        }

                        // The scheduled job became ready at its time and ran as a split export too.
                        let later = try await client.waitFor(scheduled.id, .complete, timeout: .seconds(40))
                        #expect(try #require(later.startedAt) >= runAt)
                        // The broker's own record of when it made the job ready, whatever the restart took: not
                        // before runAt, and exactly once across the kill.
                        let readied = try await client.events(since: 0, topics: ["job:ready"]).events.filter {
                            $0.context["jobId"]?.stringValue == scheduled.id
                        }
                        #expect(readied.count == 1)
                        #expect(readied.allSatisfy { $0.createdAt >= runAt })
                        #expect(later.outcome?.message == "2 of 2 parts completed")
                        let laterParts = try await client.parts(of: scheduled.id)
                        let ids = [parent.id, scheduled.id, click.id] + parts.map(\.id) + laterParts.map(\.id)
                        #expect(try await client.endings() == Dictionary(uniqueKeysWithValues: ids.map { ($0, 1) }))
                    }
                }
            }
        }
    }
}
