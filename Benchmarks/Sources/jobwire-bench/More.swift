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

/// The Python-driven lifecycle against the broker and against beanstalkd, from `python_lifecycle.py`.
func pythonComparison(binary: String, python: String, script: String, jobs: Int) throws -> [(String, String)] {
    func run(_ arguments: [String]) throws -> JSONValue {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script] + arguments + ["--jobs", String(jobs)]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return try JSONCodec.parse(Array(data))
    }
    var rows: [(String, String)] = []
    let data = NSTemporaryDirectory() + "jobwire-py-\(UUID().uuidString.prefix(8))"
    defer { try? FileManager.default.removeItem(atPath: data) }
    let broker = try BrokerHandle(binary: binary, data: data)
    let jobwire = try run(["jobwire", "--commands", broker.commands, "--pid", String(broker.pid)])
    broker.stop()
    rows.append(("Python client, jobwire (durable): jobs/s", format(jobwire["jobsPerSecond"], "%.0f")))
    rows.append(("  broker CPU µs per lifecycle", format(jobwire["serverMicrosPerJob"], "%.1f")))
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/beanstalkd") else {
        rows.append(("Python client, beanstalkd", "not installed (apt-get install beanstalkd)"))
        return rows
    }
    let binlog = NSTemporaryDirectory() + "beanstalkd-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: binlog, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: binlog) }
    let port = 11_300 + Int.random(in: 0..<500)
    let beanstalk = Process()
    beanstalk.executableURL = URL(fileURLWithPath: "/usr/bin/beanstalkd")
    beanstalk.arguments = ["-l", "127.0.0.1", "-p", String(port), "-b", binlog]
    try beanstalk.run()
    defer {
        beanstalk.terminate()
        beanstalk.waitUntilExit()
    }
    Thread.sleep(forTimeInterval: 0.3)
    let bean = try run(["beanstalkd", "--port", String(port), "--pid", String(beanstalk.processIdentifier)])
    rows.append(("Python client, beanstalkd 1.12 (binlog): jobs/s", format(bean["jobsPerSecond"], "%.0f")))
    rows.append(("  beanstalkd CPU µs per lifecycle", format(bean["serverMicrosPerJob"], "%.1f")))
    return rows
}

func format(_ value: JSONValue?, _ pattern: String) -> String {
    String(format: pattern, value?.doubleValue ?? .nan)
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
