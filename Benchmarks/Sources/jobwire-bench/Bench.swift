import ArgumentParser
import Foundation

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobwire-bench",
        abstract: "Jobwire's benchmarks: run them all and print one table.",
        subcommands: [Run.self, Listen.self],
        defaultSubcommand: Run.self
    )

    struct Run: ParsableCommand {
        @Option(help: "Jobs per lifecycle run.")
        var jobs = 20_000

        @Option(help: "The jobwire binary (build it with `swift build -c release` in the package root).")
        var binary = "../.build/release/jobwire"

        @Option(help: "Latency samples for the unloaded create → job:ready measurement.")
        var samples = 2000

        @Option(help: "Which parts to run: lifecycle, latency, raw.")
        var only: [String] = []

        func run() throws {
            let bench = CommandLine.arguments[0].hasPrefix("/")
                ? CommandLine.arguments[0]
                : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0]
            func wanted(_ name: String) -> Bool { only.isEmpty || only.contains(name) }
            var rows: [(String, String)] = []
            print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, jobs per run \(jobs)")
            if wanted("raw") {
                let pairs = try rawPairs(count: 200_000)
                rows.append(("raw libzmq DEALER/ROUTER pairs/s (ceiling)", String(format: "%.0f", pairs)))
            }
            if wanted("lifecycle") {
                for listeners in [1, 4] {
                    let data = NSTemporaryDirectory() + "jobwire-bench-\(UUID().uuidString.prefix(8))"
                    let r = try lifecycle(binary: binary, bench: bench, jobs: jobs, listeners: listeners, data: data)
                    try? FileManager.default.removeItem(atPath: data)
                    rows.append(("lifecycle, \(listeners) listener(s), durable: jobs/s", String(format: "%.0f", r.jobsPerSecond)))
                    rows.append(("  create → completed p50 / p99 ms", String(format: "%.1f / %.1f", r.p50Ms, r.p99Ms)))
                    rows.append(("  broker CPU µs per lifecycle", String(format: "%.1f", r.brokerMicrosPerJob)))
                }
            }
            if wanted("latency") {
                let data = NSTemporaryDirectory() + "jobwire-bench-\(UUID().uuidString.prefix(8))"
                let l = try unloadedLatency(binary: binary, samples: samples, data: data)
                try? FileManager.default.removeItem(atPath: data)
                rows.append(("unloaded create → job:ready p50 / p99 µs", String(format: "%.0f / %.0f", l.p50, l.p99)))
            }
            let width = rows.map(\.0.count).max() ?? 0
            print("| measure" + String(repeating: " ", count: width - 7) + " | value |")
            print("| " + String(repeating: "-", count: width) + " | --- |")
            for (name, value) in rows {
                print("| " + name + String(repeating: " ", count: width - name.count) + " | \(value) |")
            }
        }
    }

    struct Listen: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A benchmark listener process (used by run).")
        @Option var commands: String
        @Option var name = "bench"
        @Option var inflight = 64
        func run() throws { try runListener(commands: commands, inflight: inflight, name: name) }
    }
}
