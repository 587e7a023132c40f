import Foundation
import Jobwire
import JobwireChildProcess
import JobwireTestSupport

/// An example listener executable, started as a user starts it, against a test broker.
final class ListenerProcess: Sendable {
    private let child: ChildProcess
    private let output: Locked<String>

    /// Everything it logged so far.
    var log: String { output.withLock { $0 } }

    convenience init(
        _ example: String, broker: BrokerProcess, name: String? = nil, environment: [String: String] = [:]
    ) throws {
        try self.init(
            example, commands: broker.commands, events: broker.events, name: name, environment: environment)
    }

    /// Starts `example` with these endpoints (each may be a list of brokers).
    init(
        _ example: String, commands: String, events: String, name: String? = nil, environment: [String: String] = [:]
    ) throws {
        var env = ProcessInfo.processInfo.environment
        env["JOBWIRE_LOG_LEVEL"] = "debug"
        env["JOBWIRE_WORK_MS"] = "200"
        for (key, value) in environment { env[key] = value }
        let output = Locked("")
        child = try ChildProcess(
            executable: try TestPaths.executable(example),
            arguments: ["--commands", commands, "--events", events]
                + (name.map { ["--name", $0] } ?? []),
            environment: env,
            output: { line in output.withLock { $0 += line + "\n" } })
        self.output = output
    }

    /// Waits until the listener has caught up with the broker and receives events live.
    func waitUntilLive() async throws {
        try await eventually("the listener to be live") { log.contains("listener live") }
    }

    /// Sends `signal` to the listener alone (SIGSTOP freezes it, SIGCONT lets it go on).
    func signal(_ signal: Int32) { child.signal(signal) }

    /// SIGTERM, then waits; returns the exit status.
    @discardableResult
    func stop(timeout: Duration = .seconds(15)) async -> Int32 {
        let child = self.child
        child.signal(SIGTERM)
        let killer = Task {
            try await Task.sleep(for: timeout)
            child.signalGroup(SIGKILL)
        }
        let status = await child.wait()
        killer.cancel()
        if status.signal == SIGKILL {
            print("listener did not stop on SIGTERM; its log:\n\(log)")
            return -1
        }
        return status.code ?? 128 + (status.signal ?? 0)
    }

    deinit {
        child.signalGroup(SIGKILL)
    }
}

/// Starts an example listener against `broker`, runs `body` with it, and stops it (awaited) however `body`
/// ends.
/// - Returns: what `body` returns.
func withListener<Result>(
    _ example: String, broker: BrokerProcess, name: String? = nil, environment: [String: String] = [:],
    _ body: (ListenerProcess) async throws -> Result
) async throws -> Result {
    let listener = try ListenerProcess(example, broker: broker, name: name, environment: environment)
    return try await withTearDown(listener, { await $0.stop() }, body)
}

/// Runs `body` with listeners started already, and stops them all (awaited) however `body` ends.
/// - Returns: what `body` returns.
func withListeners<Result>(
    _ listeners: [ListenerProcess], _ body: ([ListenerProcess]) async throws -> Result
) async throws -> Result {
    try await withTearDown(listeners, { listeners in for listener in listeners { await listener.stop() } }, body)
}

/// Runs `listener` in this process while `body` runs, then stops it and awaits its end, however `body` ends.
/// - Returns: what `body` returns.
func withRunning<Result>(_ listener: Listener, _ body: () async throws -> Result) async throws -> Result {
    let running = Task { try await listener.run() }
    return try await withTearDown(
        running,
        { running in
            listener.stop()
            _ = try? await running.value
        },
        { _ in try await body() })
}

/// Runs `body` with `client`, and closes it (awaited) however `body` ends.
/// - Returns: what `body` returns.
func withClient<Result>(_ client: JobsClient, _ body: (JobsClient) async throws -> Result) async throws -> Result {
    try await withTearDown(client, { await $0.close() }, body)
}

extension JobsClient {
    /// Waits until the job reaches `status`, and returns it.
    func waitFor(_ jobId: String, _ status: JobStatus, timeout: Duration = .seconds(20)) async throws -> Job {
        try await waitFor(jobId, "\(status)", timeout: timeout) { $0 == status }
    }

    /// Waits until the job's status satisfies `accept`, and returns it. Wait for states a job stays in:
    /// a passing one (executing) can come and go between two polls on a busy machine.
    func waitFor(
        _ jobId: String, _ what: String, timeout: Duration = .seconds(20), _ accept: @escaping (JobStatus) -> Bool
    ) async throws -> Job {
        let last = Locked<Job?>(nil)
        do {
            try await eventually("\(jobId) to be \(what)", timeout: timeout) {
                let job = try await get(jobId: jobId)
                last.withLock { $0 = job }
                return accept(job.status)
            }
        } catch {
            throw TestSupportError("\(error); last seen: \(String(describing: last.withLock { $0 }?.status))")
        }
        return last.withLock { $0 }!
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
            // A page may stop short of the log's end with any number of events: follow nextSince.
            guard !page.isComplete, page.nextSince > since else { return counts }
            since = page.nextSince
        }
    }
}
