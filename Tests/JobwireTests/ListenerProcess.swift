import Foundation
import Jobwire
import JobwireTestSupport

/// An example listener executable, started as a user starts it, against a test broker.
final class ListenerProcess: Sendable {
    private let process: Process
    private let output: Locked<String>

    /// Everything it logged so far.
    var log: String { output.withLock { $0 } }

    init(_ example: String, broker: BrokerProcess, name: String? = nil, environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TestPaths.executable(example))
        process.arguments =
            ["--commands", broker.commands, "--events", broker.events] + (name.map { ["--name", $0] } ?? [])
        var env = ProcessInfo.processInfo.environment
        env["JOBWIRE_LOG_LEVEL"] = "debug"
        env["JOBWIRE_WORK_MS"] = "200"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        let output = Locked("")
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                return
            }
            output.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
        self.process = process
        self.output = output
    }

    /// Waits until the listener has caught up with the broker and receives events live.
    func waitUntilLive() async throws {
        try await eventually("the listener to be live") { log.contains("listener live") }
    }

    /// SIGTERM, then waits; returns the exit status.
    @discardableResult
    func stop(timeout: Duration = .seconds(15)) async -> Int32 {
        if process.isRunning { process.terminate() }
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                kill(process.processIdentifier, SIGKILL)
                print("listener did not stop on SIGTERM; its log:\n\(log)")
                while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
                return -1
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { process.terminate() }
    }
}

/// Waits until `condition` holds, checking every 50 ms; throws after `timeout`.
func eventually(
    _ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if (try? await condition()) == true { return }
        if ContinuousClock.now >= deadline { throw TestSupportError("timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(50))
    }
}

extension JobsClient {
    /// Waits until the job reaches `status`, and returns it.
    func waitFor(_ jobId: String, _ status: JobStatus, timeout: Duration = .seconds(20)) async throws -> Job {
        var last: Job?
        try await eventually("\(jobId) to be \(status) (last: \(String(describing: last?.status)))", timeout: timeout) {
            last = try await get(jobId: jobId)
            return last?.status == status
        }
        return last!
    }

    /// How many times each job ended (`job:completed` or `job:failed`), from the log.
    func endings() async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        var since: Int64 = 0
        while true {
            let page = try await events(since: since, topics: ["job:completed", "job:failed"])
            for event in page.events {
                if let id = event.context["jobId"]?.stringValue { counts[id, default: 0] += 1 }
            }
            guard let last = page.events.last?.seq, page.events.count >= 1000 else { return counts }
            since = last
        }
    }
}
