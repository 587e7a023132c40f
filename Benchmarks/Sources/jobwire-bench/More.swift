import Foundation
import JobwireProtocol
import ZeroMQ

/// Event deliveries per second from the broker to `subscribers` SUB sockets (each subscribed to
/// everything), while a producer creates jobs as fast as it can (two events each).
func fanOut(binary: String, subscribers: Int, jobs: Int) throws -> Double {
    let broker = try BrokerHandle(binary: binary, data: nil)
    defer { broker.stop() }
    let context = try Context()
    final class Counter: @unchecked Sendable {
        // Written by one thread, read after it is joined (Thread.join via the semaphore).
        var received = 0
        var firstAt: UInt64 = 0
        var lastAt: UInt64 = 0
    }
    let expected = jobs * 2
    let done = DispatchSemaphore(value: 0)
    let ready = DispatchSemaphore(value: 0)
    var counters: [Counter] = []
    for _ in 0..<subscribers {
        let counter = Counter()
        counters.append(counter)
        let events = broker.events
        let thread = Thread {
            guard let sub = try? Socket(context, type: .sub) else { return }
            try? sub.set(.receiveHighWaterMark, 0)
            try? sub.subscribe("")
            try? sub.connect(events)
            // Ready once the first heartbeat arrives: the subscription is in place.
            while let frames = try? sub.receiveMultipart(), !frames[0].starts(with: Array("broker:".utf8)) {}
            ready.signal()
            while counter.received < expected {
                guard let frames = try? sub.receiveMultipart() else { break }
                if frames[0].starts(with: Array("broker:".utf8)) { continue }
                if counter.received == 0 { counter.firstAt = nanos() }
                counter.received += 1
            }
            counter.lastAt = nanos()
            done.signal()
        }
        thread.start()
    }
    for _ in 0..<subscribers { ready.wait() }
    let producer = try Dealer(context: context, endpoint: broker.commands)
    var sent = 0
    var replies = 0
    while replies < jobs {
        while sent < jobs && sent - replies < 512 {
            try producer.send(request(sent, "jobs.create", #"{"type":"fan","operation":"out","source":"s"}"#))
            sent += 1
        }
        _ = try producer.receive(timeoutMs: -1)
        replies += 1
    }
    for _ in 0..<subscribers { done.wait() }
    let first = counters.map(\.firstAt).min() ?? 0
    let last = counters.map(\.lastAt).max() ?? 0
    let total = counters.map(\.received).reduce(0, +)
    return Double(total) / (Double(last - first) / 1e9)
}

struct GrowthResult {
    var createMicros: Double
    var ackMicros: Double
    var residentMB: Double
}

/// Synchronous create and ack round trips, p50 in microseconds, and the broker's resident memory.
func roundTrips(broker: BrokerHandle, samples: Int) throws -> GrowthResult {
    let context = try Context()
    let client = try Dealer(context: context, endpoint: broker.commands)
    var creates: [Double] = []
    var acks: [Double] = []
    for index in 0..<(samples + 20) {
        var t = nanos()
        try client.send(request(index * 2, "jobs.create", #"{"type":"grow","operation":"run","source":"s"}"#))
        guard let reply = try client.receive(timeoutMs: 10_000), let id = reply["result"]?["id"]?.stringValue else {
            throw BenchError("create failed")
        }
        let create = Double(nanos() - t) / 1000
        t = nanos()
        try client.send(request(index * 2 + 1, "jobs.ack", #"{"jobId":"\#(id)","listenerId":"g"}"#))
        _ = try client.receive(timeoutMs: 10_000)
        let ack = Double(nanos() - t) / 1000
        if index >= 20 {
            creates.append(create)
            acks.append(ack)
        }
    }
    creates.sort()
    acks.sort()
    return GrowthResult(
        createMicros: percentile(creates, 0.5), ackMicros: percentile(acks, 0.5),
        residentMB: residentMB(pid: broker.pid))
}

/// Create and ack latency and memory on an empty store and on one holding `finished` ended jobs.
///
/// The full store is made the way the broker makes it: one job is run through the broker, then its row
/// (and one event per job) is copied `finished` times with new ids by SQLite itself, which takes seconds
/// instead of the minutes a million lifecycles would.
func growth(binary: String, finished: Int, samples: Int) throws -> (empty: GrowthResult, full: GrowthResult) {
    let emptyData = NSTemporaryDirectory() + "jobwire-growth-empty-\(UUID().uuidString.prefix(8))"
    let fullData = NSTemporaryDirectory() + "jobwire-growth-full-\(UUID().uuidString.prefix(8))"
    defer {
        try? FileManager.default.removeItem(atPath: emptyData)
        try? FileManager.default.removeItem(atPath: fullData)
    }
    let empty = try BrokerHandle(binary: binary, data: emptyData)
    let emptyResult = try roundTrips(broker: empty, samples: samples)
    empty.stop()

    // One real job, run to its end, as the template row.
    let seed = try BrokerHandle(binary: binary, data: fullData)
    do {
        let context = try Context()
        let client = try Dealer(context: context, endpoint: seed.commands)
        try client.send(request(1, "jobs.create", #"{"type":"grow","operation":"old","source":"s"}"#))
        let id = try client.receive(timeoutMs: 10_000)?["result"]?["id"]?.stringValue ?? ""
        try client.send(request(2, "jobs.ack", #"{"jobId":"\#(id)","listenerId":"g"}"#))
        _ = try client.receive(timeoutMs: 10_000)
        try client.send(request(3, "jobs.complete", #"{"jobId":"\#(id)","listenerId":"g"}"#))
        _ = try client.receive(timeoutMs: 10_000)
    }
    seed.stop()
    let sql = """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(finished))
        INSERT INTO jobs (id, status, type, operation, source, parentId, createdAt, idempotencyKey,
                          idempotencyHash, formerOwners, body)
        SELECT printf('us_jb_fill%08d', i), j.status, j.type, j.operation, j.source, NULL, j.createdAt - i, NULL,
               NULL, NULL, CAST(replace(CAST(j.body AS TEXT), j.id, printf('us_jb_fill%08d', i)) AS BLOB)
        FROM n, (SELECT * FROM jobs LIMIT 1) AS j;
        """
    let sqlite = Process()
    sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
    sqlite.arguments = [fullData + "/jobwire.sqlite", sql]
    try sqlite.run()
    sqlite.waitUntilExit()
    guard sqlite.terminationStatus == 0 else { throw BenchError("sqlite3 could not fill the store") }
    let full = try BrokerHandle(binary: binary, data: fullData)
    let fullResult = try roundTrips(broker: full, samples: samples)
    full.stop()
    return (emptyResult, fullResult)
}

/// The Python-driven lifecycle from `python_lifecycle.py`, `jobs` lifecycles per row: against the broker
/// synchronously (REQ) and pipelined (DEALER), each durable and with `--no-fsync`; against beanstalkd with
/// its binlog fsynced on every write, by default, and never; and the bare pyzmq round trip that bounds any
/// synchronous ZeroMQ client.
func pythonComparison(binary: String, python: String, script: String, jobs: Int) throws -> [(String, String)] {
    func run(_ arguments: [String]) throws -> JSONValue {
        try runPython(python: python, script: script, arguments + ["--jobs", String(jobs)])
    }
    var rows: [(String, String)] = [
        ("Python rows: lifecycles per row, one job at a time (--jobs, at most 5000)", "\(jobs)")
    ]
    if let more = ProcessInfo.processInfo.environment["JOBWIRE_BENCH_BROKER_ARGS"], !more.isEmpty {
        rows.append(("  every jobwire row also ran with JOBWIRE_BENCH_BROKER_ARGS", more))
    }

    func jobwire(_ mode: String, fsync: Bool) throws -> JSONValue {
        let data = NSTemporaryDirectory() + "jobwire-py-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let broker = try BrokerHandle(binary: binary, data: data, fsync: fsync)
        defer { broker.stop() }
        return try run([mode, "--commands", broker.commands, "--pid", String(broker.pid)])
    }
    let clients = [
        ("jobwire", "Python sync (4 round trips per job)", "Python sync"),
        ("jobwire-pipelined", "Python pipelined (1 round trip per job)", "Python pipelined"),
    ]
    for (mode, client, short) in clients {
        for fsync in [true, false] {
            let result = try jobwire(mode, fsync: fsync)
            let name =
                fsync
                ? "\(client), jobwire durable (fsync every commit): jobs/s"
                : "\(short), jobwire --no-fsync (survives a broker crash, not a power cut): jobs/s"
            rows.append((name, format(result["jobsPerSecond"], "%.0f")))
            rows.append(("  jobwire CPU µs per lifecycle", format(result["serverMicrosPerJob"], "%.0f")))
        }
    }

    guard let beanstalkd = executable("beanstalkd") else {
        rows.append(("Python sync, beanstalkd", "not installed (apt-get install beanstalkd)"))
        return rows
    }
    let greenstalk = Process()
    greenstalk.executableURL = URL(fileURLWithPath: python)
    greenstalk.arguments = [
        "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('greenstalk') is None)",
    ]
    try greenstalk.run()
    greenstalk.waitUntilExit()
    guard greenstalk.terminationStatus == 0 else {
        rows.append(("Python sync, beanstalkd", "greenstalk not installed for \(python) (pip install greenstalk)"))
        return rows
    }
    let versionText = beanstalkdVersion(beanstalkd)
    func beanstalk(_ flags: [String]) throws -> JSONValue {
        try withBeanstalkd(beanstalkd, flags: flags) { port, pid in
            try run(["beanstalkd", "--port", String(port), "--pid", String(pid)])
        }
    }
    // beanstalkd's default since 1.12 is `-f 50`: an fsync at most every 50 ms (`beanstalkd -h`).
    let binlogs = [
        (["-f", "0"], "fsync every write (-f 0)"),
        ([], "default (fsync at most every 50 ms)"),
        (["-F"], "never fsync (-F)"),
    ]
    for (flags, durability) in binlogs {
        let result = try beanstalk(flags)
        rows.append(
            ("Python sync, \(versionText) binlog, \(durability): jobs/s", format(result["jobsPerSecond"], "%.0f")))
        rows.append(("  beanstalkd CPU µs per lifecycle", format(result["serverMicrosPerJob"], "%.0f")))
    }

    // The floor under any synchronous ZeroMQ client: a pyzmq REQ round trip against a ROUTER echo in this
    // process, and the lifecycles a second that four of them in a row allow.
    let context = try Context()
    let echo = try echoRouter(context: context, count: jobs)
    let p50 = try run(["zmq-round-trip", "--commands", echo])["p50Micros"]?.doubleValue ?? .nan
    rows.append(
        (
            "pyzmq REQ round trip p50 µs / ceiling for 4 sync round trips, lifecycles/s",
            String(format: "%.0f / %.0f", p50, 1e6 / (4 * p50))
        ))
    return rows
}

/// Runs `script` with `arguments` and returns the JSON object it prints.
func runPython(python: String, script: String, _ arguments: [String]) throws -> JSONValue {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = [script] + arguments
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        // Its standard error, ours too, says why.
        throw BenchError("python_lifecycle.py \(arguments[0]) failed (exit \(process.terminationStatus))")
    }
    return try JSONCodec.parse(Array(data))
}

/// `beanstalkd -v`: `beanstalkd 1.12`.
func beanstalkdVersion(_ beanstalkd: String) -> String {
    let version = Process()
    version.executableURL = URL(fileURLWithPath: beanstalkd)
    version.arguments = ["-v"]
    let out = Pipe()
    version.standardOutput = out
    guard (try? version.run()) != nil else { return "beanstalkd" }
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
    version.waitUntilExit()
    return text
}

/// Runs `body` with the port and pid of a beanstalkd started with `flags` and a binlog (`-b`) in a fresh
/// directory, then stops it.
func withBeanstalkd<T>(_ beanstalkd: String, flags: [String], _ body: (Int, Int32) throws -> T) throws -> T {
    let binlog = NSTemporaryDirectory() + "beanstalkd-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: binlog, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: binlog) }
    let port = 11_300 + Int.random(in: 0..<500)
    let server = Process()
    server.executableURL = URL(fileURLWithPath: beanstalkd)
    server.arguments = ["-l", "127.0.0.1", "-p", String(port), "-b", binlog] + flags
    try server.run()
    defer {
        server.terminate()
        server.waitUntilExit()
    }
    Thread.sleep(forTimeInterval: 0.3)
    guard server.isRunning else { throw BenchError("beanstalkd \(flags) exited at start (port \(port) taken?)") }
    return try body(port, server.processIdentifier)
}

/// The first executable called `name` on PATH.
func executable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

func format(_ value: JSONValue?, _ pattern: String) -> String {
    String(format: pattern, value?.doubleValue ?? .nan)
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
