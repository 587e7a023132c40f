import Foundation
import Jobwire
import Logging
import ZeroMQ

/// The benchmark's Swift SDK listener, as a user writes one: a `Listener` with one `jobHandler` that reports
/// progress 50 once and returns an outcome. Runs until the process is terminated.
func runSDKListener(commands: String, events: String, name: String, concurrency: Int) async throws {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = .warning
        return handler
    }
    let listener = Listener(name: name, commands: commands, events: events) {
        jobHandler("bench:run", concurrency: concurrency) { _, tick in
            try await tick(50)
            return JobCompletion(outcome: Outcome(message: "ok"))
        }
    }
    try await listener.run()
}

/// Creates `jobs` jobs (`bench:run`) with a `JobsClient`, `window` creates in flight.
func produce(commands: String, jobs: Int, window: Int) async throws {
    let client = try JobsClient(commands: commands)
    do {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var sent = 0
            while sent < min(window, jobs) {
                group.addTask { _ = try await client.create(type: "bench", operation: "run", source: "s") }
                sent += 1
            }
            while try await group.next() != nil {
                if sent < jobs {
                    group.addTask { _ = try await client.create(type: "bench", operation: "run", source: "s") }
                    sent += 1
                }
            }
        }
    } catch {
        await client.close()
        throw error
    }
    await client.close()
}

/// A `JobsClient` producer on a task of its own, awaited from a thread that is not part of Swift's
/// concurrency pool (the benchmark's main thread, which meanwhile counts completions).
final class Producer: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    // Written before `done` is signalled, read after it is waited for.
    private var failure: (any Error)?

    init(commands: String, jobs: Int, window: Int) {
        Task.detached { [self] in
            do {
                try await produce(commands: commands, jobs: jobs, window: window)
            } catch {
                self.failure = error
            }
            self.done.signal()
        }
    }

    /// Waits at most `seconds` for the producer to end: nil while it runs, else its result.
    func result(within seconds: Double) -> Result<Void, any Error>? {
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        done.signal()  // stays signalled for the next caller
        return failure.map { .failure($0) } ?? .success(())
    }
}

struct ProductRun {
    var jobsPerSecond: Double
    var brokerMicrosPerJob: Double
    /// The worker (listener) processes' user + system CPU over the run, per job.
    var workerMicrosPerJob: Double
}

/// `jobs` lifecycles through the product: a durable broker, `workers` worker processes made by `worker`
/// (given the broker's commands and events endpoints), a `JobsClient` producer with `window` creates in
/// flight, and a subscriber counting `job:completed` events. The clock starts at the first create, a
/// second after the workers started (so that their start-up is not counted), and stops at the last
/// `job:completed`; a `job:failed` stops the run.
func productLifecycle(
    binary: String, jobs: Int, window: Int, workers: Int, worker: (_ commands: String, _ events: String) -> Process
) throws -> ProductRun {
    let data = NSTemporaryDirectory() + "jobwire-product-\(UUID().uuidString.prefix(8))"
    defer { try? FileManager.default.removeItem(atPath: data) }
    let broker = try BrokerHandle(binary: binary, data: data)
    defer { broker.stop() }
    let context = try Context()
    let sub = try subscriber(context: context, events: broker.events, topics: ["job:completed/", "job:failed/"])
    var children: [Process] = []
    defer {
        for child in children where child.isRunning {
            child.terminate()
            child.waitUntilExit()
        }
    }
    for _ in 0..<workers {
        let child = worker(broker.commands, broker.events)
        try child.run()
        children.append(child)
    }
    Thread.sleep(forTimeInterval: 1)
    for child in children where !child.isRunning {
        throw BenchError("a worker process exited at start (status \(child.terminationStatus))")
    }
    let brokerBefore = cpuMicros(pid: broker.pid)
    let workersBefore = children.map { cpuMicros(pid: $0.processIdentifier) }.reduce(0, +)
    let start = nanos()
    let producer = Producer(commands: broker.commands, jobs: jobs, window: window)
    var poller = Poller()
    poller.add(sub)
    var completed = 0
    var lastCompletion = start
    var lastCheck = start
    while completed < jobs {
        try poller.poll(timeout: .seconds(1))
        while let frames = try sub.receiveMultipart(dontWait: true) {
            if frames[0].starts(with: Array("job:completed".utf8)) {
                completed += 1
                lastCompletion = nanos()
            } else if frames[0].starts(with: Array("job:failed".utf8)) {
                throw BenchError("a job failed: \(String(decoding: frames.last ?? [], as: UTF8.self))")
            }
        }
        // Once a second: a producer that failed, a worker that exited, a run that stalled.
        let now = nanos()
        guard now - lastCheck > 1_000_000_000 else { continue }
        lastCheck = now
        if case .failure(let error)? = producer.result(within: 0) { throw BenchError("producer: \(error)") }
        if now - lastCompletion > 30_000_000_000 {
            throw BenchError("no job:completed for 30 s: \(completed) of \(jobs) completed")
        }
        for child in children where !child.isRunning {
            throw BenchError("a worker process exited (status \(child.terminationStatus))")
        }
    }
    let elapsed = Double(nanos() - start) / 1e9
    let brokerCPU = cpuMicros(pid: broker.pid) - brokerBefore
    let workersCPU = children.map { cpuMicros(pid: $0.processIdentifier) }.reduce(0, +) - workersBefore
    if case .failure(let error) = producer.result(within: 30) ?? .failure(BenchError("still running")) {
        throw BenchError("producer: \(error)")
    }
    return ProductRun(
        jobsPerSecond: Double(jobs) / elapsed, brokerMicrosPerJob: brokerCPU / Double(jobs),
        workerMicrosPerJob: workersCPU / Double(jobs))
}

/// The median and, over several runs, the range: `123 (110–130)`.
func spread(_ values: [Double], _ pattern: String) -> String {
    let sorted = values.sorted()
    guard let first = sorted.first, let last = sorted.last else { return "-" }
    let median = String(format: pattern, sorted[sorted.count / 2])
    return sorted.count > 1
        ? median + " (" + String(format: pattern, first) + "–" + String(format: pattern, last) + ")"
        : median
}

/// The rows of one product workload run `repeats` times: jobs/s, broker CPU and the workers' CPU.
func productRows(
    _ label: String, workerLabel: String, repeats: Int, _ measure: () throws -> ProductRun
) throws -> [(String, String)] {
    var runs: [ProductRun] = []
    for _ in 0..<max(1, repeats) { runs.append(try measure()) }
    let range = runs.count > 1 ? " (median of \(runs.count) runs; range)" : ""
    let short = runs.count > 1 ? " (median; range)" : ""
    return [
        ("\(label): jobs/s\(range)", spread(runs.map(\.jobsPerSecond), "%.0f")),
        ("  broker CPU µs per lifecycle\(short)", spread(runs.map(\.brokerMicrosPerJob), "%.0f")),
        ("  \(workerLabel) CPU µs per job\(short)", spread(runs.map(\.workerMicrosPerJob), "%.0f")),
    ]
}

/// The Swift SDK rows: 1 and 4 `listen-sdk` processes, `jobHandler` concurrency 1 and 64.
func sdkRows(binary: String, bench: String, jobs: Int, window: Int, repeats: Int) throws -> [(String, String)] {
    var rows: [(String, String)] = [
        ("Swift SDK rows: jobs per run; JobsClient producer, creates in flight", "\(jobs); \(window)")
    ]
    for (listeners, concurrency) in [(4, 64), (4, 1), (1, 64), (1, 1)] {
        rows += try productRows(
            "Swift SDK: \(listeners) listener process(es) × jobHandler(concurrency: \(concurrency)), durable",
            workerLabel: "listener processes'", repeats: repeats
        ) {
            try productLifecycle(binary: binary, jobs: jobs, window: window, workers: listeners) { commands, events in
                let child = Process()
                child.executableURL = URL(fileURLWithPath: bench)
                child.arguments = [
                    "listen-sdk", "--commands", commands, "--events", events, "--name", "bench-sdk", "--concurrency",
                    String(concurrency),
                ]
                return child
            }
        }
    }
    return rows
}

/// The Python client rows: 4 `python -m jobwire worker` processes, one job at a time each, beside 4
/// greenstalk workers against beanstalkd (default binlog, and fsync on every write).
func pythonClientRows(
    binary: String, python: String, directory: String, jobs: Int, window: Int, repeats: Int
) throws -> [(String, String)] {
    let workers = 4
    var rows: [(String, String)] = [
        ("Python client rows: jobs per run; workers, one job at a time each", "\(jobs); \(workers)")
    ]
    rows += try productRows(
        "Python client: \(workers) `python -m jobwire worker` processes (--concurrency 1), JobsClient producer, durable",
        workerLabel: "worker processes'", repeats: repeats
    ) {
        try productLifecycle(binary: binary, jobs: jobs, window: window, workers: workers) { commands, events in
            let child = Process()
            child.executableURL = URL(fileURLWithPath: python)
            child.currentDirectoryURL = URL(fileURLWithPath: directory)
            child.arguments = [
                "-m", "jobwire", "worker", "python_worker:listener", "--concurrency", "1", "--commands", commands,
                "--events", events, "--log-level", "warning",
            ]
            return child
        }
    }
    guard let beanstalkd = executable("beanstalkd") else {
        rows.append(("\(workers) greenstalk workers, beanstalkd", "not installed (apt-get install beanstalkd)"))
        return rows
    }
    let script = directory + "/python_lifecycle.py"
    let version = beanstalkdVersion(beanstalkd)
    for (flags, durability) in [
        ([String](), "default binlog (fsync at most every 50 ms)"), (["-f", "0"], "binlog fsync every write (-f 0)"),
    ] {
        var runs: [JSONValue] = []
        for _ in 0..<max(1, repeats) {
            runs.append(
                try withBeanstalkd(beanstalkd, flags: flags) { port, pid in
                    try runPython(
                        python: python, script: script,
                        [
                            "beanstalkd-workers", "--port", String(port), "--pid", String(pid), "--workers",
                            String(workers), "--jobs", String(jobs),
                        ])
                })
        }
        let range = runs.count > 1 ? " (median of \(runs.count) runs; range)" : ""
        let short = runs.count > 1 ? " (median; range)" : ""
        func values(_ key: String) -> [Double] { runs.map { $0[key]?.doubleValue ?? .nan } }
        rows += [
            (
                "\(workers) greenstalk worker processes, \(version), \(durability): jobs/s\(range)",
                spread(values("jobsPerSecond"), "%.0f")
            ),
            ("  beanstalkd CPU µs per lifecycle\(short)", spread(values("serverMicrosPerJob"), "%.0f")),
            ("  worker processes' CPU µs per job\(short)", spread(values("clientMicrosPerJob"), "%.0f")),
        ]
    }
    return rows
}
