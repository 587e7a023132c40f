import Foundation
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

    private let process: Process
    private let arguments: [String]
    private let output: Locked<Output>

    struct Output {
        var stderr = ""
    }

    /// Starts `jobwire broker` with a fresh data folder (or the given one) and waits until it listens.
    /// - Parameters:
    ///   - dataDirectory: the store's folder; a new temporary one when nil.
    ///   - arguments: more options, e.g. `["--lease-seconds", "1"]`.
    public static func start(dataDirectory: String? = nil, arguments: [String] = []) async throws -> BrokerProcess {
        let directory = dataDirectory ?? TestPaths.temporaryDirectory(prefix: "jobwire-broker")
        return try await BrokerProcess(directory: directory, arguments: arguments)
    }

    private init(directory: String, arguments: [String], events: String? = nil, commands: String? = nil) async throws {
        dataDirectory = directory
        self.arguments = arguments
        output = Locked(Output())
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TestPaths.executable("jobwire"))
        process.arguments =
            [
                "broker", "--data", directory, "--events", events ?? "tcp://127.0.0.1:*",
                "--commands", commands ?? "tcp://127.0.0.1:*", "--log-level", "debug",
            ] + arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        let output = self.output
        stderr.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                return
            }
            output.withLock { $0.stderr += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
        self.process = process
        let line = try await BrokerProcess.firstLine(of: stdout.fileHandleForReading, timeout: .seconds(20))
        guard let line, let parsed = BrokerProcess.parseListening(line) else {
            process.terminate()
            throw TestSupportError("broker did not start: \(line ?? "no output"); stderr: \(output.withLock { $0.stderr })")
        }
        self.events = parsed.events
        self.commands = parsed.commands
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

    private static func firstLine(of handle: FileHandle, timeout: Duration) async throws -> String? {
        // Read on a thread of its own: FileHandle reads block.
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String?, any Error>) in
            let thread = Thread {
                var bytes: [UInt8] = []
                while true {
                    let data = handle.readData(ofLength: 1)
                    if data.isEmpty { break }
                    if data.first == UInt8(ascii: "\n") { break }
                    bytes.append(contentsOf: data)
                }
                continuation.resume(returning: bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self))
            }
            thread.start()
        }
    }

    /// The process id.
    public var pid: Int32 { process.processIdentifier }

    /// Sends a signal (e.g. `SIGKILL`) and waits for the process to end.
    public func kill(_ signal: Int32) async {
        _ = Foundation.kill(process.processIdentifier, signal)
        await waitForExit()
    }

    /// SIGTERM, then waits; returns the exit status.
    @discardableResult
    public func stop() async -> Int32 {
        if process.isRunning { process.terminate() }
        await waitForExit()
        return process.terminationStatus
    }

    /// Waits for the process to end (polling, since `waitUntilExit` would block a cooperative thread).
    public func waitForExit() async {
        while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }

    /// Starts a new broker process on the same data folder and the same endpoints.
    public func restart() async throws -> BrokerProcess {
        if process.isRunning { await stop() }
        return try await BrokerProcess(directory: dataDirectory, arguments: arguments, events: events, commands: commands)
    }

    deinit {
        if process.isRunning { process.terminate() }
    }
}

/// Where test binaries and scratch folders are.
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
