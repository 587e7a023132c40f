import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing

@Suite("jobwire watch", .timeLimit(.minutes(1)))
struct WatchCommandTests {
    @Test("renders a job's progress and outcome as plain lines, and exits 0 once it completed")
    func progressAndOutcome() async throws {
        try await withBroker { broker in
            let job = try Job(
                json: try await CLIProcess.run(
                    ["jobs", "create", "workbook:export", "--source", "us_wb_1", "--json"], broker: broker
                ).json)
            let watch = try CLIProcess(["watch", "--id", job.id, "--until-done"], broker: broker)
            try await watch.waitFor("the job's first row") { $0.contains("\(job.id)  workbook:export  ready") }
            _ = try await CLIProcess.run(
                ["jobs", "ack", job.id, "--listener", "w", "--info", "Starting"], broker: broker)
            _ = try await CLIProcess.run(
                ["jobs", "update", job.id, "--listener", "w", "--progress", "50", "--info", "Half way"], broker: broker)
            try await watch.waitFor("the progress at 50%") { $0.contains("50%") }
            _ = try await CLIProcess.run(
                [
                    "jobs", "complete", job.id, "--listener", "w", "--outcome",
                    #"{"message":"Exported 4 parts","next":{"type":"download","url":"file:///tmp/x.xlsx","label":"Download"}}"#,
                ],
                broker: broker)
            let result = try await watch.finish()
            #expect(result.status == 0, "\(result)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(!result.stdout.contains("\u{1B}["), "no escape codes when not on a terminal")
            #expect(
                lines.contains {
                    $0.contains("executing") && $0.contains("[##########..........]  50%") && $0.contains("Half way")
                })
            let last = try #require(lines.last)
            #expect(last.contains("complete") && last.contains("[####################] 100%"), "\(result)")
            #expect(last.contains("Exported 4 parts") && last.contains("file:///tmp/x.xlsx"))
        }
    }

    @Test("--until-done exits 1 when a watched job fails")
    func failed() async throws {
        try await withBroker { broker in
            let job = try Job(
                json: try await CLIProcess.run(
                    ["jobs", "create", "sheet:validate", "--source", "s", "--json"], broker: broker
                )
                .json)
            let watch = try CLIProcess(["watch", "--job", "sheet:*", "--until-done"], broker: broker)
            try await watch.waitFor("the job's first row") { $0.contains(job.id) }
            _ = try await CLIProcess.run(["jobs", "ack", job.id], broker: broker)
            _ = try await CLIProcess.run(["jobs", "fail", job.id, "--message", "no rows"], broker: broker)
            let result = try await watch.finish()
            #expect(result.status == 1, "\(result)")
            #expect(result.stdout.contains("failed") && result.stdout.contains("no rows"))
        }
    }

    @Test("a job that has ended already is shown and --until-done returns at once")
    func ended() async throws {
        try await withBroker { broker in
            let job = try Job(
                json: try await CLIProcess.run(["jobs", "create", "a:b", "--source", "s", "--json"], broker: broker)
                    .json)
            _ = try await CLIProcess.run(["jobs", "cancel", job.id], broker: broker)
            let result = try await CLIProcess.run(["watch", "--id", job.id, "--until-done"], broker: broker)
            #expect(result.status == 1 && result.stdout.contains("canceled"), "\(result)")
            let missing = try await CLIProcess.run(["watch", "--id", "us_jb_nope"], broker: broker)
            #expect(missing.status == 1 && missing.stderr.contains("us_jb_nope not found"), "\(missing)")
        }
    }
}
