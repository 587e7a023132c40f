import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing

@Suite("jobwire jobs", .timeLimit(.minutes(1)))
struct JobsCommandTests {
    @Test("a job goes from created to complete through the CLI, each reply as JSON")
    func lifecycle() async throws {
        try await withBroker { broker in
            let created = try await CLIProcess.run(
                ["jobs", "create", "workbook:export", "--source", "us_wb_1", "--input", #"{"k":1}"#, "--json"],
                broker: broker)
            #expect(created.status == 0, "\(created)")
            let job = try Job(json: try created.json)
            #expect(job.type == "workbook" && job.operation == "export" && job.status == .ready)
            #expect(job.input == ["k": 1])

            let acked = try Job(
                json: try await CLIProcess.run(
                    [
                        "jobs", "ack", job.id, "--listener", "cli-test", "--progress", "10", "--info", "Starting",
                        "--json",
                    ],
                    broker: broker
                ).json)
            #expect(acked.status == .executing && acked.lease?.owner == "cli-test" && acked.info == "Starting")

            let updated = try Job(
                json: try await CLIProcess.run(
                    ["jobs", "update", job.id, "--listener", "cli-test", "--progress", "60", "--eta", "+5", "--json"],
                    broker: broker
                ).json)
            #expect(updated.progress == 60 && updated.estimatedCompletionAt != nil)

            let completed = try Job(
                json: try await CLIProcess.run(
                    [
                        "jobs", "complete", job.id, "--listener", "cli-test", "--outcome",
                        #"{"message":"Exported 3 rows","next":{"type":"url","url":"https://example.com/x"}}"#, "--json",
                    ],
                    broker: broker
                ).json)
            #expect(completed.status == .complete && completed.outcome?.message == "Exported 3 rows")

            let got = try Job(json: try await CLIProcess.run(["jobs", "get", job.id, "--json"], broker: broker).json)
            #expect(got == completed)
            let readable = try await CLIProcess.run(["jobs", "get", job.id], broker: broker)
            #expect(
                readable.status == 0 && readable.stdout.contains("complete")
                    && readable.stdout.contains("Exported 3 rows"))

            let outcome = try Job(
                json: try await CLIProcess.run(["jobs", "ack-outcome", job.id, "--json"], broker: broker).json)
            #expect(outcome.outcomeAcknowledgedAt != nil)

            let list = try await CLIProcess.run(["jobs", "list", "--status", "complete", "--json"], broker: broker).json
            #expect(list["data"]?.arrayValue?.count == 1)
            #expect(list["pagination"]?["totalCount"]?.intValue == 1)
        }
    }

    @Test("manual execute, cancel, retry, release, fail, split and delete")
    func otherVerbs() async throws {
        try await withBroker { broker in
            func job(_ arguments: [String]) async throws -> Job {
                let result = try await CLIProcess.run(arguments + ["--json"], broker: broker)
                #expect(result.status == 0, "\(result)")
                return try Job(json: try result.json)
            }
            let manual = try await job([
                "jobs", "create", "sheet:validate", "--source", "us_sh_1", "--trigger", "manual",
            ])
            #expect(manual.status == .created && manual.trigger == .manual)
            #expect(try await job(["jobs", "execute", manual.id]).status == .ready)
            #expect(try await job(["jobs", "cancel", manual.id, "--info", "not now"]).status == .canceled)
            #expect(try await job(["jobs", "retry", manual.id]).status == .ready)
            #expect(try await job(["jobs", "ack", manual.id]).status == .executing)
            let released = try await job(["jobs", "release", manual.id])
            #expect(released.status == .ready && released.attempt == 3)
            _ = try await job(["jobs", "ack", manual.id])
            let failed = try await job(["jobs", "fail", manual.id, "--message", "no rows"])
            #expect(failed.status == .failed && failed.outcome?.message == "no rows")

            let parent = try await job(["jobs", "create", "file:extract", "--source", "us_fl_1"])
            _ = try await job(["jobs", "ack", parent.id])
            let split = try await CLIProcess.run(
                ["jobs", "split", parent.id, "--parts", "3", "--json"], broker: broker)
            #expect(split.status == 0, "\(split)")
            let parts = try #require(try split.json["parts"]?.arrayValue)
            #expect(parts.count == 3)
            #expect(try parts.map { try Job(json: $0).parentId } == [parent.id, parent.id, parent.id])

            let deleted = try await CLIProcess.run(["jobs", "delete", manual.id, "--json"], broker: broker)
            #expect(deleted.status == 0)
            #expect(try deleted.json["success"] == true)
            let gone = try await CLIProcess.run(["jobs", "get", manual.id], broker: broker)
            #expect(gone.status == 1 && gone.stderr.contains("not found"))
        }
    }

    @Test("--priority, --backoff and --attempt-timeout reach the job; fail --retry and release --delay requeue it")
    func operations() async throws {
        try await withBroker { broker in
            func job(_ arguments: [String]) async throws -> Job {
                let result = try await CLIProcess.run(arguments + ["--json"], broker: broker)
                #expect(result.status == 0, "\(result)")
                return try Job(json: try result.json)
            }
            let created = try await job([
                "jobs", "create", "workbook:export", "--source", "s", "--priority", "7", "--backoff",
                "exponential:30:600", "--attempt-timeout", "90", "--max-attempts", "3",
            ])
            #expect(created.priority == 7 && created.timeoutSeconds == 90)
            #expect(created.backoff == Backoff(type: .exponential, delaySeconds: 30, maxDelaySeconds: 600))
            _ = try await job(["jobs", "ack", created.id, "--listener", "cli"])
            let retried = try await job(["jobs", "fail", created.id, "--listener", "cli", "--retry"])
            #expect(retried.status == .scheduled && retried.attempt == 2 && retried.runAt != nil)
            let readable = try await CLIProcess.run(["jobs", "get", created.id], broker: broker).stdout
            for row in ["priority", "backoff", "exponential, 30 s, at most 600 s", "timeout", "90 s", "run at"] {
                #expect(readable.contains(row), "\(row) in \(readable)")
            }

            let other = try await job(["jobs", "create", "workbook:export", "--source", "s", "--priority", "-3"])
            _ = try await job(["jobs", "ack", other.id, "--listener", "cli"])
            let released = try await job(["jobs", "release", other.id, "--listener", "cli", "--delay", "60"])
            #expect(released.status == .scheduled && released.attempt == 2)

            let list = try await CLIProcess.run(
                ["jobs", "list", "--sort", "priority", "--desc", "--json"], broker: broker
            ).json
            #expect(list["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [created.id, other.id])
            let filtered = try await CLIProcess.run(["jobs", "list", "--priority", "-3", "--json"], broker: broker).json
            #expect(filtered["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [other.id])
        }
    }

    @Test("a job that does not exist says so in one line and exits 1")
    func notFound() async throws {
        try await withBroker { broker in
            let result = try await CLIProcess.run(["jobs", "complete", "us_jb_nope"], broker: broker)
            #expect(result.status == 1)
            #expect(result.stderr == "jobwire: job us_jb_nope not found\n", "\(result)")
            #expect(result.stdout.isEmpty)
        }
    }

    @Test("a command the broker refuses prints its reason")
    func invalidTransition() async throws {
        try await withBroker { broker in
            let created = try Job(
                json: try await CLIProcess.run(["jobs", "create", "a:b", "--source", "s", "--json"], broker: broker)
                    .json)
            let result = try await CLIProcess.run(["jobs", "complete", created.id], broker: broker)
            #expect(result.status == 1)
            #expect(result.stderr.hasPrefix("jobwire: cannot complete \(created.id)"), "\(result)")
        }
    }

    @Test("no broker: one line naming the endpoint and how to start one, exit 1, by itself")
    func noBroker() async throws {
        let endpoint = nobody()
        // The CLI gives up after its 3 s request timeout; the limit here only catches a CLI that hangs.
        let result = try await CLIProcess.run(["jobs", "list", "--commands", endpoint], timeout: .seconds(60))
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result)")
        #expect(result.stderr.contains(endpoint) && result.stderr.contains("jobwire broker"), "\(result)")
    }

    @Test(
        "a bad argument names the argument",
        arguments: [
            (["jobs", "create", "workbook:export", "--source", "s", "--input", "{bad"], "--input"),
            (["jobs", "create", "workbook", "--source", "s"], "type:operation"),
            (["jobs", "create", "workbook:export"], "--source"),
            (["jobs", "ack", "us_jb_1", "--progress", "150"], "--progress"),
            (["jobs", "complete", "us_jb_1", "--outcome", #"{"next":{"type":"nowhere"}}"#], "--outcome"),
            (["jobs", "list", "--status", "dancing"], "--status"),
            (["jobs", "update", "us_jb_1", "--eta", "tomorrow"], "--eta"),
            (["jobs", "create", "workbook:export", "--source", "s", "--backoff", "linear"], "--backoff"),
            (["jobs", "create", "workbook:export", "--source", "s", "--backoff", "fixed:soon"], "--backoff"),
        ])
    func badArgument(arguments: [String], named: String) async throws {
        let result = try await CLIProcess.run(arguments + ["--commands", nobody()])
        #expect(result.status == 64, "\(result)")
        #expect(result.stderr.contains(named), "\(result)")
    }
}

/// An endpoint no broker listens on: an ipc path nobody binds (a free TCP port could be taken by a
/// parallel test's broker).
func nobody() -> String { "ipc:///tmp/jobwire-nobody-\(UUID().uuidString)" }
