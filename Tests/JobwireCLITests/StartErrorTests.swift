import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing

/// What a user who mistypes meets: one line naming the problem and the fix.
@Suite("jobwire start errors", .timeLimit(.minutes(1)))
struct StartErrorTests {
    /// The start error of `jobwire broker <arguments>`: its one line of standard error.
    private func brokerError(_ arguments: [String], environment: [String: String] = [:]) async throws -> CLIResult {
        // Loopback ports of the system's choice, unless the test names its own endpoints.
        var env = ["JOBWIRE_EVENTS": "tcp://127.0.0.1:*", "JOBWIRE_COMMANDS": "tcp://127.0.0.1:*"]
        for (key, value) in environment { env[key] = value }
        let result = try await CLIProcess.run(["broker"] + arguments, environment: env)
        #expect(result.status != 0, "\(result)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "one line: \(result)")
        #expect(result.stderr.hasPrefix("jobwire"), "\(result)")
        return result
    }

    @Test("an endpoint without tcp:// or ipc:// is not a valid endpoint, from an option or the environment")
    func notAnEndpoint() async throws {
        let option = try await brokerError(["--in-memory", "--events", "127.0.0.1:7400"])
        #expect(option.stderr.contains("--events 127.0.0.1:7400 is not a valid endpoint"), "\(option)")
        #expect(option.stderr.contains("tcp://"), "\(option)")
        #expect(!option.stderr.contains("CURVE"), "\(option)")
        #expect(option.status == 64)
        let variable = try await brokerError(["--in-memory"], environment: ["JOBWIRE_COMMANDS": "localhost:7401"])
        #expect(variable.stderr.contains("JOBWIRE_COMMANDS=localhost:7401 is not a valid endpoint"), "\(variable)")
    }

    @Test("events and commands on the same port")
    func samePort() async throws {
        let result = try await brokerError([
            "--in-memory", "--events", "tcp://127.0.0.1:17400", "--commands", "tcp://127.0.0.1:17400",
        ])
        #expect(result.stderr.contains("cannot share a port"), "\(result)")
        #expect(result.stderr.contains("--commands tcp://"), "the fix: \(result)")
    }

    @Test("--data with --in-memory")
    func dataAndInMemory() async throws {
        let result = try await brokerError(["--in-memory", "--data", "/tmp/jobwire-unused"])
        #expect(result.stderr.contains("--data and --in-memory contradict each other"), "\(result)")
    }

    @Test("a data folder that is a file, or under a file")
    func dataFolderIsAFile() async throws {
        let file = TestPaths.temporaryDirectory(prefix: "jobwire-file")
        try? FileManager.default.removeItem(atPath: file)
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        let plain = try await brokerError(["--data", file])
        #expect(plain.stderr.contains("--data \(file) is a file, not a folder"), "\(plain)")
        #expect(plain.stderr.contains("--in-memory"), "the fix: \(plain)")
        let under = try await brokerError(["--data", file + "/store"])
        #expect(under.stderr.contains("cannot create --data \(file)/store: \(file) is a file"), "\(under)")
    }

    @Test("a store another broker holds says so, not SQLite error 5")
    func storeInUse() async throws {
        try await withBroker { running in
            let result = try await brokerError(["--data", running.dataDirectory])
            #expect(result.stderr.contains("is in use by another broker"), "\(result)")
            #expect(!result.stderr.contains("SQLite error"), "\(result)")
            #expect(result.status == 1)
        }
    }

    @Test("the broker binds where JOBWIRE_EVENTS and JOBWIRE_COMMANDS say when no option is given")
    func brokerReadsTheEnvironment() async throws {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-ipc")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let events = "ipc://\(folder)/events"
        let commands = "ipc://\(folder)/commands"
        let broker = try CLIProcess(
            ["broker", "--in-memory"], environment: ["JOBWIRE_EVENTS": events, "JOBWIRE_COMMANDS": commands])
        let line = try await broker.waitFor("the listening line") { $0.contains("listening") }
        #expect(line.contains("events \(events), commands \(commands)"), "\(line)")
        // A client that reads the same variables reaches it.
        let info = try await CLIProcess.run(
            ["jobs", "list"], environment: ["JOBWIRE_EVENTS": events, "JOBWIRE_COMMANDS": commands])
        #expect(info.status == 0, "\(info)")
        broker.signal(SIGTERM)
        #expect(try await broker.finish().status == 0)
    }

    @Test("a mistyped subcommand suggests the nearest one")
    func suggestions() async throws {
        let top = try await CLIProcess.run(["brokr"])
        #expect(top.status == 64, "\(top)")
        #expect(top.stderr.contains("did you mean 'broker'?"), "\(top)")
        #expect(top.stderr.split(separator: "\n").count == 1, "\(top)")
        let nested = try await CLIProcess.run(["jobs", "lst"])
        #expect(nested.stderr.contains("did you mean 'list'?"), "\(nested)")
        let far = try await CLIProcess.run(["xyzzy"])
        #expect(far.status == 64)
        #expect(far.stderr.contains("commands: broker, jobs"), "\(far)")
        #expect(!far.stderr.contains("did you mean"), "\(far)")
        // Real commands and help still parse.
        #expect(try await CLIProcess.run(["help", "jobs"]).status == 0)
    }

    @Test("jobwire --version prints the version")
    func version() async throws {
        let result = try await CLIProcess.run(["--version"])
        #expect(result.status == 0, "\(result)")
        let version = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(
            version.split(separator: ".").count == 3 && version.allSatisfy { $0.isNumber || $0 == "." }, "\(result)")
    }

    @Test("jobwire demo stops as soon as its listener exits")
    func demoListenerExits() async throws {
        // A timeout far beyond the test's limit: only the listener's exit can end the demo in time.
        let result = try await CLIProcess.run(["demo", "--listener", "exec false", "--timeout", "600"])
        #expect(result.status == 1, "\(result)")
        #expect(
            result.stderr.contains("the listener exited (exited with code 1) before workbook:export ended"), "\(result)"
        )
        #expect(result.stdout.contains("stopped the listener and the broker"), "\(result)")
    }
}
