import Foundation
import JobwireProtocol
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// Monotonic nanoseconds.
@inline(__always)
func nanos() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// CPU time (user + system) a process has used, in microseconds, from /proc.
func cpuMicros(pid: Int32) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return 0 }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    let utime = Double(fields[11]) ?? 0
    let stime = Double(fields[12]) ?? 0
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    return (utime + stime) / ticks * 1_000_000
}

/// Resident memory of a process in MB, from /proc.
func residentMB(pid: Int32) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        return kb / 1024
    }
    return 0
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))
    return sorted[index]
}

/// A `jobwire broker` process on random loopback ports.
///
/// `fsync: false` starts it with `--no-fsync` (SQLite `synchronous=NORMAL`: survives a crash of the broker,
/// not a power cut); `extra` adds any other broker options.
final class BrokerHandle {
    let process: Process
    let events: String
    let commands: String
    let data: String?

    init(binary: String, data: String?, fsync: Bool = true, extra: [String] = []) throws {
        let process = Process()
        // JOBWIRE_BENCH_WRAP runs the broker under a tool, e.g. "valgrind --tool=callgrind".
        let wrap =
            ProcessInfo.processInfo.environment["JOBWIRE_BENCH_WRAP"].map { $0.split(separator: " ").map(String.init) }
            ?? []
        process.executableURL = URL(fileURLWithPath: wrap.isEmpty ? binary : "/usr/bin/env")
        var arguments =
            wrap + (wrap.isEmpty ? [] : [binary]) + [
                "broker", "--events", "tcp://127.0.0.1:*", "--commands", "tcp://127.0.0.1:*", "--log-level", "error",
            ]
        // JOBWIRE_BENCH_STORE, a postgresql:// URL, runs every broker on PostgreSQL (a fresh schema each) instead.
        if let server = ProcessInfo.processInfo.environment["JOBWIRE_BENCH_STORE"], !server.isEmpty {
            let schema = "bench_\(UInt32.random(in: 0...UInt32.max))"
            arguments += ["--store", server + (server.contains("?") ? "&" : "?") + "schema=\(schema)"]
        } else {
            if let data { arguments += ["--data", data] } else { arguments.append("--in-memory") }
            if !fsync { arguments.append("--no-fsync") }
        }
        // JOBWIRE_BENCH_BROKER_ARGS adds broker options, e.g. "--no-fsync".
        let more =
            ProcessInfo.processInfo.environment["JOBWIRE_BENCH_BROKER_ARGS"].map {
                $0.split(separator: " ").map(String.init)
            } ?? []
        process.arguments = arguments + extra + more
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var line = [UInt8]()
        while true {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte.first == UInt8(ascii: "\n") { break }
            line.append(contentsOf: byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        func value(_ key: String) -> String {
            let range = text.range(of: key + " ")!
            return String(text[range.upperBound...].prefix { $0 != "," })
        }
        self.process = process
        self.events = value("events")
        self.commands = value("commands")
        self.data = data
    }

    var pid: Int32 { process.processIdentifier }

    func stop() {
        process.interrupt()  // SIGINT: a clean stop, which valgrind needs to write its report
        process.waitUntilExit()
    }
}

/// A pipelined DEALER that sends requests and reads replies on the calling thread.
final class Dealer {
    let socket: Socket

    init(context: Context, endpoint: String) throws {
        let socket = try Socket(context, type: .dealer)
        try socket.set(.sendHighWaterMark, 0)
        try socket.set(.receiveHighWaterMark, 0)
        try socket.connect(endpoint)
        self.socket = socket
    }

    func send(_ body: [UInt8]) throws {
        try socket.send([[], body])
    }

    /// The next reply's body, waiting at most `timeoutMs` (-1 forever).
    func receive(timeoutMs: Int) throws -> JSONValue? {
        if timeoutMs >= 0 {
            var poller = Poller()
            poller.add(socket)
            if try poller.poll(timeout: .milliseconds(timeoutMs)) == 0 { return nil }
        }
        guard let frames = try socket.receiveMultipart(), let body = frames.last else { return nil }
        return try JSONCodec.parse(body)
    }
}

func request(_ id: Int, _ method: String, _ params: String) -> [UInt8] {
    Array(#"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#.utf8)
}

/// What the load generators need from a reply or event, read without building its JSON tree when it has
/// the broker's own layout (`{"jsonrpc":"2.0","id":N,"result":…`): the listeners and the producer would
/// otherwise spend more CPU parsing whole jobs than the broker spends on them, on the same two cores.
/// Anything in another layout, errors included, is parsed in full by the callers.
enum QuickRead {
    private static let prefix = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
    private static let resultKey = Array(#","result":"#.utf8)

    /// The id and the result's bytes of a successful reply; nil for an error or another layout.
    static func success(_ body: [UInt8]) -> (id: Int, result: ArraySlice<UInt8>)? {
        guard body.starts(with: prefix) else { return nil }
        var index = prefix.count
        var id = 0
        while index < body.count, body[index] >= 48, body[index] <= 57 {
            id = id * 10 + Int(body[index] - 48)
            index += 1
        }
        guard index > prefix.count, body[index...].starts(with: resultKey) else { return nil }
        return (id, body[(index + resultKey.count)...])
    }

    /// The string after `lead` (which ends with a quote) at the start of `bytes`.
    static func string(after lead: [UInt8], in bytes: ArraySlice<UInt8>) -> String? {
        guard bytes.starts(with: lead) else { return nil }
        let start = bytes.startIndex + lead.count
        guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// The `context.jobId` of an event envelope.
    static func eventJobId(_ body: [UInt8]) -> String? {
        let context = Array(#""context":{"#.utf8)
        let key = Array(#""jobId":""#.utf8)
        guard let at = find(context, in: body[...]), let job = find(key, in: body[at...]) else { return nil }
        return string(after: key, in: body[job...])
    }

    private static func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = haystack.startIndex
        while index <= haystack.endIndex - needle.count {
            if haystack[index] == needle[0], haystack[index..<(index + needle.count)].elementsEqual(needle) {
                return index
            }
            index += 1
        }
        return nil
    }
}

/// A subscriber to `topics` on `events`, returned once the broker has its subscriptions (its first heartbeat
/// came: a slow joiner would miss the first events). `unbounded` lifts the receive high-water mark, so that a
/// burst of events is never dropped before the benchmark reads it.
func subscriber(context: Context, events: String, topics: [String], unbounded: Bool = true) throws -> Socket {
    let sub = try Socket(context, type: .sub)
    if unbounded { try sub.set(.receiveHighWaterMark, 0) }
    for topic in topics + ["broker:heartbeat/"] { try sub.subscribe(topic) }
    try sub.connect(events)
    while let frames = try sub.receiveMultipart(), !frames[0].starts(with: Array("broker:".utf8)) {}
    return sub
}
