import Foundation
import JobwireProtocol
import JobwireTestSupport

/// The built `jobwire` executable run as a user runs it, its output collected as it comes.
final class CLIProcess: Sendable {
    struct Output {
        var stdout = ""
        var stderr = ""
        var openPipes = 2
    }

    let arguments: [String]
    private let process: Process
    private let output = Locked(Output())

    /// Starts `jobwire <arguments>` with the broker's endpoints in its environment.
    init(
        _ arguments: [String], broker: BrokerProcess? = nil, environment: [String: String] = [:],
        directory: String? = nil
    ) throws {
        self.arguments = arguments
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TestPaths.executable("jobwire"))
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["JOBWIRE_COMMANDS"] = broker?.commands ?? env["JOBWIRE_COMMANDS"]
        env["JOBWIRE_EVENTS"] = broker?.events ?? env["JOBWIRE_EVENTS"]
        env.removeValue(forKey: "NO_COLOR")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        let output = self.output
        for (pipe, isOut) in [(stdout, true), (stderr, false)] {
            pipe.fileHandleForReading.readabilityHandler = { handle in
                let data = handle.availableData
                output.withLock { o in
                    if data.isEmpty {
                        o.openPipes -= 1
                    } else if isOut {
                        o.stdout += String(decoding: data, as: UTF8.self)
                    } else {
                        o.stderr += String(decoding: data, as: UTF8.self)
                    }
                }
                if data.isEmpty { handle.readabilityHandler = nil }
            }
        }
        try process.run()
        self.process = process
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
            if !process.isRunning && output.withLock({ $0.openPipes == 0 }) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestSupportError(
            "jobwire \(arguments.joined(separator: " ")): no \(what) within \(timeout)\nstdout:\n\(stdout)\nstderr:\n\(stderr)")
    }

    func signal(_ signal: Int32) {
        _ = kill(process.processIdentifier, signal)
    }

    /// Waits for the exit and for both pipes to close; kills the process after `timeout`.
    func finish(timeout: Duration = .seconds(20)) async throws -> CLIResult {
        let deadline = ContinuousClock.now + timeout
        // A process spawned at the same moment by another test may inherit the write end of these pipes
        // (Foundation's Process does not close them in other children), so EOF can come late: after the
        // exit, give the pipes a moment to drain rather than waiting for EOF.
        var exitedAt: ContinuousClock.Instant?
        while process.isRunning || output.withLock({ $0.openPipes > 0 }) {
            if !process.isRunning {
                let now = ContinuousClock.now
                if exitedAt == nil { exitedAt = now }
                if let exitedAt, now - exitedAt > .milliseconds(300) { break }
            }
            if ContinuousClock.now >= deadline {
                kill(process.processIdentifier, SIGKILL)
                throw TestSupportError(
                    "jobwire \(arguments.joined(separator: " ")) did not end within \(timeout)\nstdout:\n\(stdout)\nstderr:\n\(stderr)"
                )
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return CLIResult(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
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
