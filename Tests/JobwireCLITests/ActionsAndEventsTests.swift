import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing

@Suite("jobwire actions", .timeLimit(.minutes(1)))
struct ActionsCommandTests {
    @Test("mount, list, trigger by name and by id, unmount")
    func actions() async throws {
        try await withBroker { broker in
            let mounted = try await CLIProcess.run(
                [
                    "actions", "mount", "workbook:export", "--resource", "us_wb_1", "--label", "Export", "--primary",
                    "--json",
                ],
                broker: broker)
            #expect(mounted.status == 0, "\(mounted)")
            let action = try Action(json: try mounted.json, path: "")
            #expect(action.operation == "export" && action.label == "Export" && action.primary == true)

            let listed = try await CLIProcess.run(
                ["actions", "list", "--domain", "workbook", "--resource", "us_wb_1", "--json"], broker: broker)
            #expect(try listed.json.arrayValue?.map { try Action(json: $0, path: "").id } == [action.id])

            let clicked = try await CLIProcess.run(
                [
                    "actions", "trigger", "workbook:export", "--resource", "us_wb_1", "--input", #"{"format":"csv"}"#,
                    "--actor", "us_usr_1", "--json",
                ],
                broker: broker)
            let job = try Job(json: try clicked.json)
            #expect(job.name == "workbook:export" && job.status == .ready && job.input == ["format": "csv"])
            let byId = try Job(
                json: try await CLIProcess.run(["actions", "trigger", action.id, "--json"], broker: broker).json)
            #expect(byId.name == "workbook:export" && byId.id != job.id)

            let unmounted = try await CLIProcess.run(["actions", "unmount", action.id], broker: broker)
            #expect(unmounted.status == 0 && unmounted.stdout.contains(action.id))
            let again = try await CLIProcess.run(["actions", "trigger", action.id], broker: broker)
            #expect(again.status == 1 && again.stderr.hasPrefix("jobwire: "), "\(again)")
        }
    }
}

@Suite("jobwire events tail", .timeLimit(.minutes(1)))
struct EventsTailTests {
    @Test("--since 0 replays the log with the glob rules, one JSON envelope per line")
    func replay() async throws {
        try await withBroker { broker in
            for name in ["workbook:export", "sheet:validate", "workbook:import"] {
                #expect(
                    try await CLIProcess.run(["jobs", "create", name, "--source", "s"], broker: broker).status == 0)
            }
            let all = try await CLIProcess.run(
                ["events", "tail", "--since", "0", "--count", "6", "--json"], broker: broker)
            #expect(all.status == 0, "\(all)")
            let events = try all.jsonLines.map { try Event(json: $0) }
            #expect(events.map(\.seq) == [1, 2, 3, 4, 5, 6])
            #expect(
                events.map(\.topic) == [
                    "job:created", "job:ready", "job:created", "job:ready", "job:created", "job:ready",
                ])

            let ready = try await CLIProcess.run(
                ["events", "tail", "*:ready", "--job", "workbook:*", "--since", "0", "--count", "2", "--json"],
                broker: broker)
            let filtered = try ready.jsonLines.map { try Event(json: $0) }
            #expect(filtered.map(\.subject) == ["workbook:export", "workbook:import"])
            #expect(filtered.allSatisfy { $0.topic == "job:ready" })

            let readable = try await CLIProcess.run(
                ["events", "tail", "job:created", "--since", "2", "--count", "1"], broker: broker)
            #expect(readable.stdout.hasPrefix("#3  "), "\(readable)")
            #expect(readable.stdout.contains("job:created  sheet:validate"))
        }
    }

    @Test("live events arrive as they happen and --count ends the tail")
    func live() async throws {
        try await withBroker { broker in
            let tail = try CLIProcess(["events", "tail", "job:completed", "--count", "1", "--json"], broker: broker)
            try await tail.waitFor(stderr: true, "the tail to start") { $0.contains("tailing") }
            let job = try Job(
                json: try await CLIProcess.run(["jobs", "create", "a:b", "--source", "s", "--json"], broker: broker)
                    .json)
            _ = try await CLIProcess.run(["jobs", "ack", job.id], broker: broker)
            _ = try await CLIProcess.run(["jobs", "complete", job.id, "--message", "ok"], broker: broker)
            let result = try await tail.finish()
            #expect(result.status == 0, "\(result)")
            let event = try Event(json: try result.json)
            #expect(event.topic == "job:completed" && event.context["jobId"]?.stringValue == job.id)
        }
    }

    @Test("SIGTERM ends a tail cleanly")
    func sigterm() async throws {
        try await withBroker { broker in
            let tail = try CLIProcess(["events", "tail"], broker: broker)
            try await tail.waitFor(stderr: true, "the tail to start") { $0.contains("tailing") }
            tail.signal(SIGTERM)
            let result = try await tail.finish(timeout: .seconds(5))
            #expect(result.status == 0, "\(result)")
        }
    }
}
