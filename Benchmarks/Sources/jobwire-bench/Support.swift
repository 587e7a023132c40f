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
        if let data { arguments += ["--data", data] } else { arguments.append("--in-memory") }
        if !fsync { arguments.append("--no-fsync") }
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
