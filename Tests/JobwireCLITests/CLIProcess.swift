import Foundation
import JobwireChildProcess
import JobwireProtocol
import JobwireTestSupport

/// The built `jobwire` executable run as a user runs it, its output collected as it comes.
final class CLIProcess: Sendable {
    struct Output {
        var stdout = ""
        var stderr = ""
    }

    let arguments: [String]
    private let child: ChildProcess
    private let output = Locked(Output())

    /// Starts `jobwire <arguments>` with the broker's endpoints in its environment.
    init(
        _ arguments: [String], broker: BrokerProcess? = nil, environment: [String: String] = [:],
        directory: String? = nil
    ) throws {
        self.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["JOBWIRE_COMMANDS"] = broker?.commands ?? env["JOBWIRE_COMMANDS"]
        env["JOBWIRE_EVENTS"] = broker?.events ?? env["JOBWIRE_EVENTS"]
        env.removeValue(forKey: "NO_COLOR")
        for (key, value) in environment { env[key] = value }
        let output = self.output
        child = try ChildProcess(
            executable: try TestPaths.executable("jobwire"), arguments: arguments, environment: env,
            directory: directory,
            output: { line in output.withLock { $0.stdout += line + "\n" } },
            errorOutput: { line in output.withLock { $0.stderr += line + "\n" } })
    }

    var stdout: String { output.withLock { $0.stdout } }
    var stderr: String { output.withLock { $0.stderr } }

    /// Waits until standard output (or error) holds text that `predicate` accepts.
    @discardableResult
    func waitFor(
        stderr inError: Bool = false, timeout: Duration = .seconds(20), _ what: String,
        _ predicate: @escaping @Sendable (String) -> Bool
    ) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = inError ? stderr : stdout
            if predicate(text) { return text }
            if child.hasExited { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let text = inError ? stderr : stdout
        if predicate(text) { return text }
        throw TestSupportError(
            "jobwire \(arguments.joined(separator: " ")): no \(what) within \(timeout)\nstdout:\n\(stdout)\nstderr:\n\(stderr)"
        )
    }

    func signal(_ signal: Int32) {
        child.signal(signal)
    }

    /// Waits for the exit and the end of its output; kills the process after `timeout`.
    func finish(timeout: Duration = .seconds(20)) async throws -> CLIResult {
        let child = self.child
        let killer = Task {
            try await Task.sleep(for: timeout)
            child.signalGroup(SIGKILL)
        }
        let status = await child.wait()
        killer.cancel()
        if status.signal == SIGKILL {
            throw TestSupportError(
                "jobwire \(arguments.joined(separator: " ")) did not end within \(timeout)\nstdout:\n\(stdout)\nstderr:\n\(stderr)"
            )
        }
        return CLIResult(status: status.code ?? 128 + (status.signal ?? 0), stdout: stdout, stderr: stderr)
    }

    deinit {
        child.signalGroup(SIGKILL)
    }

    /// Runs `jobwire <arguments>` to its end.
    static func run(
        _ arguments: [String], broker: BrokerProcess? = nil, environment: [String: String] = [:],
        timeout: Duration = .seconds(20)
    ) async throws -> CLIResult {
        try await CLIProcess(arguments, broker: broker, environment: environment).finish(timeout: timeout)
    }
}

struct CLIResult: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String

    /// Standard output as one JSON value.
    var json: JSONValue {
        get throws { try JSONCodec.parse(stdout.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Each line of standard output as JSON.
    var jsonLines: [JSONValue] {
        get throws { try stdout.split(separator: "\n").map { try JSONCodec.parse(String($0)) } }
    }

    var description: String { "exit \(status)\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }
}
