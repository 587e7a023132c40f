import Foundation
import JobwireChildProcess
import Synchronization

/// A `jobwire broker` process started the way a user starts it, on random loopback ports.
public final class BrokerProcess: Sendable {
    /// Where its events socket listens.
    public let events: String
    /// Where its commands socket listens.
    public let commands: String
    /// Its data folder (kept across ``restart()``).
    public let dataDirectory: String
    /// Everything it printed to standard error so far.
    public var log: String { output.withLock { $0.stderr } }
    /// Everything it printed to standard output so far (its `listening` or `standby` line).
    public var printed: String { output.withLock { $0.stdout } }

    private let child: ChildProcess
    private let arguments: [String]
    private let output: Locked<Output>

    struct Output {
        var stderr = ""
        var stdout = ""
        var listening: CheckedContinuation<String?, Never>?
        var firstLine: String??
    }

    /// Starts `jobwire broker` with a fresh data folder (or the given one) and waits until it listens.
    /// - Parameters:
    ///   - dataDirectory: the store's folder; a new temporary one when nil.
    ///   - arguments: more options, e.g. `["--lease-seconds", "1"]`.
    ///   - environment: variables to add to the test's environment for it.
    ///   - events: where its events socket binds; a random loopback port when nil.
    ///   - commands: where its commands socket binds; a random loopback port when nil.
    public static func start(
        dataDirectory: String? = nil, arguments: [String] = [], environment: [String: String] = [:],
        events: String? = nil, commands: String? = nil
    ) async throws -> BrokerProcess {
        let directory = dataDirectory ?? TestPaths.temporaryDirectory(prefix: "jobwire-broker")
        return try await BrokerProcess(
            directory: directory, arguments: arguments, environment: environment, events: events, commands: commands)
    }

    /// Starts `jobwire broker` on a PostgreSQL store another broker serves, and returns once it says it waits
    /// as a standby. It binds `events` and `commands` when it takes over (its ``printed`` output then holds
    /// its `listening` line).
    public static func startStandby(arguments: [String], events: String, commands: String) async throws
        -> BrokerProcess
    {
        try await BrokerProcess(
            directory: TestPaths.temporaryDirectory(prefix: "jobwire-standby"), arguments: arguments,
            events: events, commands: commands, standby: true)
    }

    private init(
        directory: String, arguments: [String], environment: [String: String] = [:], events: String? = nil,
        commands: String? = nil, standby: Bool = false
    ) async throws {
        dataDirectory = directory
        self.arguments = arguments
        let output = Locked(Output())
        self.output = output
        child = try ChildProcess(
            executable: try TestPaths.executable("jobwire"),
            // `--in-memory` among the arguments replaces the data folder (the broker refuses both).
            // `--store` (PostgreSQL) too.
            arguments: ["broker"]
                + (arguments.contains("--in-memory") || arguments.contains("--store") ? [] : ["--data", directory]) + [
                    "--events", events ?? "tcp://127.0.0.1:*",
                    "--commands", commands ?? "tcp://127.0.0.1:*", "--log-level", "debug",
                ] + arguments,
            environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
            output: { line in
                // The first line says where it listens (or that it waits as a standby).
                let waiter = output.withLock { o -> CheckedContinuation<String?, Never>? in
                    o.stdout += line + "\n"
                    guard o.firstLine == nil else { return nil }
                    o.firstLine = .some(line)
                    defer { o.listening = nil }
                    return o.listening
                }
                waiter?.resume(returning: line)
            },
            errorOutput: { line in output.withLock { $0.stderr += line + "\n" } })
        let line = await BrokerProcess.firstLine(of: child, output)
        if standby, let line, line.contains("jobwire broker standby"), let events, let commands {
            self.events = events
            self.commands = commands
            return
        }
        guard let line, let parsed = BrokerProcess.parseListening(line) else {
            child.signal(SIGKILL)
            throw TestSupportError(
                "broker did not start: \(line ?? "no output"); stderr: \(output.withLock { $0.stderr })")
        }
        self.events = parsed.events
        self.commands = parsed.commands
    }

    /// The first line of standard output, or nil if the process ended (or said nothing in 20 s).
    private static func firstLine(of child: ChildProcess, _ output: Locked<Output>) async -> String? {
        let timeout = Task {
            // A broker that neither prints nor exits: give up on it.
            try? await Task.sleep(for: .seconds(20))
            let waiter = output.withLock { o -> CheckedContinuation<String?, Never>? in
                if o.firstLine == nil { o.firstLine = .some(nil) }
                defer { o.listening = nil }
                return o.listening
            }
            waiter?.resume(returning: nil)
        }
        let exited = Task {
            _ = await child.wait()
            let waiter = output.withLock { o -> CheckedContinuation<String?, Never>? in
                if o.firstLine == nil { o.firstLine = .some(nil) }
                defer { o.listening = nil }
                return o.listening
            }
            waiter?.resume(returning: nil)
        }
        defer {
            timeout.cancel()
            exited.cancel()
        }
        return await withCheckedContinuation { continuation in
            let ready = output.withLock { o -> String?? in
                if let first = o.firstLine { return first }
                o.listening = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Parses `jobwire broker listening: events X, commands Y, ...`.
    static func parseListening(_ line: String) -> (events: String, commands: String)? {
        guard line.contains("listening") else { return nil }
        func value(after key: String) -> String? {
            guard let range = line.range(of: key + " ") else { return nil }
            return String(line[range.upperBound...].prefix { $0 != "," && $0 != " " })
        }
        guard let events = value(after: "events"), let commands = value(after: "commands") else { return nil }
        return (events, commands)
    }

    /// The process id.
    public var pid: Int32 { child.pid }

    /// Sends a signal and returns at once (`SIGSTOP` freezes the broker, `SIGCONT` lets it go on).
    public func signal(_ signal: Int32) { child.signal(signal) }

    /// Sends a signal (e.g. `SIGKILL`) and waits for the process to end.
    public func kill(_ signal: Int32) async {
        child.signal(signal)
        await waitForExit()
    }

    /// SIGTERM, then SIGKILL if the broker has not ended after `grace`; waits for it to end. Returns the
    /// exit status (128 + the signal when a signal ended it: 137 when it had to be killed).
    @discardableResult
    public func stop(grace: Duration = .seconds(15)) async -> Int32 {
        let status = await child.stop(grace: grace)
        return status.code ?? 128 + (status.signal ?? 0)
    }

    /// Waits for the process to end.
    public func waitForExit() async {
        _ = await child.wait()
    }

    /// Starts a new broker process on the same data folder and the same endpoints.
    public func restart() async throws -> BrokerProcess {
        if !child.hasExited { await stop() }
        return try await BrokerProcess(
            directory: dataDirectory, arguments: arguments, events: events, commands: commands)
    }

    deinit {
        child.signal(SIGKILL)
    }
}

/// Starts a broker, runs `body` with it, and stops it (``BrokerProcess/stop(grace:)``, awaited) however
/// `body` ends: returned, thrown or canceled.
/// - Parameters:
///   - dataDirectory: the store's folder; a new temporary one when nil.
///   - arguments: more options for `jobwire broker`.
///   - environment: variables to add to the test's environment for it.
/// - Returns: what `body` returns.
public func withBroker<Result>(
    dataDirectory: String? = nil, arguments: [String] = [], environment: [String: String] = [:],
    _ body: (BrokerProcess) async throws -> Result
) async throws -> Result {
    let broker = try await BrokerProcess.start(
        dataDirectory: dataDirectory, arguments: arguments, environment: environment)
    return try await withBroker(broker, body)
}

/// Runs `body` with a broker started already (a restarted one, say), and stops it, awaited, however
/// `body` ends.
/// - Returns: what `body` returns.
public func withBroker<Result>(
    _ broker: BrokerProcess, _ body: (BrokerProcess) async throws -> Result
) async throws -> Result {
    try await withTearDown(broker, { await $0.stop() }, body)
}

/// Runs `body` with `resource`, then awaits `tearDown(resource)` whether `body` returned or threw: the
/// scoped form of a teardown that `defer` cannot await.
/// - Returns: what `body` returns.
/// - Throws: what `body` throws, once the teardown is done.
public func withTearDown<Resource, Result>(
    _ resource: Resource, _ tearDown: (Resource) async -> Void, _ body: (Resource) async throws -> Result
) async throws -> Result {
    let result: Result
    do {
        result = try await body(resource)
    } catch {
        await tearDown(resource)
        throw error
    }
    await tearDown(resource)
    return result
}

/// A value behind a `Mutex`, shareable by reference (a `Mutex` itself cannot be copied into closures).
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    public init(_ value: Value) { mutex = Mutex(value) }
    public func withLock<R: Sendable>(_ body: (inout Value) throws -> R) rethrows -> R {
        try mutex.withLock { try body(&$0) }
    }
}

public enum TestPaths {
    /// The path of a built executable product of this package (`jobwire`, an example).
    public static func executable(_ name: String) throws -> String {
        var candidates: [String] = []
        if let override = ProcessInfo.processInfo.environment["JOBWIRE_BIN_DIR"] {
            candidates.append(override + "/" + name)
        }
        // The test runner lives in the build folder next to the package's executables.
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = runner.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(folder.appendingPathComponent(name).path)
            folder = folder.deletingLastPathComponent()
        }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw TestSupportError("no built \(name) near \(runner.path): run `swift build` before `swift test`")
    }

    /// A new empty folder under the system's temporary folder.
    public static func temporaryDirectory(prefix: String) -> String {
        let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

public struct TestSupportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Waits until `condition` holds, checking every `interval`; throws after `timeout`, naming `what` and the
/// last error the condition threw (errors count as "not yet": a broker may be restarting meanwhile).
public func eventually(
    _ what: String, timeout: Duration = .seconds(20), every interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while true {
        do {
            if try await condition() { return }
        } catch {
            lastError = error
        }
        if ContinuousClock.now >= deadline {
            let cause = lastError.map { " (last error: \($0))" } ?? ""
            throw TestSupportError("timed out after \(timeout) waiting for \(what)\(cause)")
        }
        try await Task.sleep(for: interval)
    }
}
