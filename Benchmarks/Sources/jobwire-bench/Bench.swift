import ArgumentParser
import Foundation

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobwire-bench",
        abstract: "Jobwire's benchmarks: run them all and print one table.",
        subcommands: [Run.self, Listen.self, ListenSDK.self],
        defaultSubcommand: Run.self
    )

    struct Run: ParsableCommand {
        @Option(help: "Jobs per lifecycle run.")
        var jobs = 20_000

        @Option(help: "The jobwire binary (build it with `swift build -c release` in the package root).")
        var binary = "../.build/release/jobwire"

        @Option(help: "Latency samples for the unloaded create → job:ready measurement.")
        var samples = 2000

        @Option(
            help: """
                Which parts to run: sdk, python-client, raw, lifecycle, latency, fanout, growth, python (all when \
                none; repeat the option for several).
                """)
        var only: [String] = []

        @Option(help: "Jobs per run of the product rows (sdk, python-client).")
        var productJobs = 5000

        @Option(help: "Creates the product rows' JobsClient producer keeps in flight.")
        var productWindow = 256

        @Option(
            help: """
                Runs of each lifecycle measurement: the table shows the median run (by jobs/s) and the \
                range. This machine's speed drifts by a quarter from one run to the next.
                """)
        var repeats = 3

        @Option(help: "Ended jobs in the store for the growth measurement.")
        var finished = 1_000_000

        @Option(help: "A Python with pyzmq and greenstalk, for the Python-driven comparison.")
        var python = "../.venv/bin/python"

        func run() throws {
            let bench =
                CommandLine.arguments[0].hasPrefix("/")
                ? CommandLine.arguments[0]
                : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0]
            func wanted(_ name: String) -> Bool { only.isEmpty || only.contains(name) }
            var rows: [(String, String)] = []
            print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, jobs per run \(jobs)")
            let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().path
            // Through the product first: the rows users get.
            if wanted("sdk") {
                rows += try sdkRows(
                    binary: binary, bench: bench, jobs: productJobs, window: productWindow, repeats: repeats)
            }
            if wanted("python-client") {
                rows += try pythonClientRows(
                    binary: binary, python: python, directory: directory, jobs: productJobs, window: productWindow,
                    repeats: repeats)
            }
            if wanted("raw") {
                let pairs = try rawPairs(count: 200_000)
                rows.append(("raw libzmq DEALER/ROUTER pairs/s (ceiling)", String(format: "%.0f", pairs)))
            }
            if wanted("lifecycle") {
                for listeners in [1, 4] {
                    var runs: [LifecycleResult] = []
                    for _ in 0..<max(1, repeats) {
                        let data = NSTemporaryDirectory() + "jobwire-bench-\(UUID().uuidString.prefix(8))"
                        runs.append(
                            try lifecycle(binary: binary, bench: bench, jobs: jobs, listeners: listeners, data: data))
                        try? FileManager.default.removeItem(atPath: data)
                    }
                    runs.sort { $0.jobsPerSecond < $1.jobsPerSecond }
                    let r = runs[runs.count / 2]
                    let cpu = runs.map(\.brokerMicrosPerJob).sorted()
                    let label = runs.count > 1 ? " (median of \(runs.count) runs; range)" : ""
                    rows.append(
                        (
                            "broker alone, hand-written client: lifecycle, \(listeners) raw-DEALER listener(s) × 64 "
                                + "in flight, durable: jobs/s\(label)",
                            String(format: "%.0f", r.jobsPerSecond)
                                + (runs.count > 1
                                    ? String(
                                        format: " (%.0f–%.0f)", runs.first!.jobsPerSecond, runs.last!.jobsPerSecond)
                                    : "")
                        ))
                    rows.append(("  create → completed p50 / p99 ms", String(format: "%.1f / %.1f", r.p50Ms, r.p99Ms)))
                    rows.append(
                        (
                            "  broker CPU µs per lifecycle\(runs.count > 1 ? " (median; range)" : "")",
                            String(format: "%.1f", cpu[cpu.count / 2])
                                + (runs.count > 1 ? String(format: " (%.1f–%.1f)", cpu.first!, cpu.last!) : "")
                        ))
                }
            }
            if wanted("latency") {
                let data = NSTemporaryDirectory() + "jobwire-bench-\(UUID().uuidString.prefix(8))"
                let l = try unloadedLatency(binary: binary, samples: samples, data: data)
                try? FileManager.default.removeItem(atPath: data)
                rows.append(("unloaded create → job:ready p50 / p99 µs", String(format: "%.0f / %.0f", l.p50, l.p99)))
            }
            if wanted("fanout") {
                for subscribers in [1, 4, 16] {
                    let rate = try fanOut(binary: binary, subscribers: subscribers, jobs: jobs)
                    rows.append(("fan-out to \(subscribers) subscriber(s): deliveries/s", String(format: "%.0f", rate)))
                }
            }
            if wanted("growth") {
                let (empty, full) = try growth(binary: binary, finished: finished, samples: samples)
                rows.append(
                    (
                        "empty store: create / ack p50 µs",
                        String(format: "%.0f / %.0f", empty.createMicros, empty.ackMicros)
                    ))
                rows.append(("  broker resident memory MB", String(format: "%.0f", empty.residentMB)))
                rows.append(
                    (
                        "\(finished) ended jobs: create / ack p50 µs",
                        String(format: "%.0f / %.0f", full.createMicros, full.ackMicros)
                    ))
                rows.append(("  broker resident memory MB", String(format: "%.0f", full.residentMB)))
            }
            if wanted("python") {
                let script = directory + "/python_lifecycle.py"
                rows += try pythonComparison(binary: binary, python: python, script: script, jobs: min(jobs, 5000))
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

    /// Sync, like the root command, so that `run` measures from the main thread and never blocks a thread of
    /// Swift's concurrency pool: the listener runs on a task of its own until the process is terminated.
    struct ListenSDK: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "listen-sdk", abstract: "A benchmark listener built on the Swift SDK (used by run).")
        @Option var commands: String
        @Option var events: String
        @Option var name = "bench-sdk"
        @Option(help: "The jobHandler's concurrency.") var concurrency = 1
        func run() throws {
            let (commands, events, name, concurrency) = (self.commands, self.events, self.name, self.concurrency)
            let ended = DispatchSemaphore(value: 0)
            Task.detached {
                do {
                    try await runSDKListener(commands: commands, events: events, name: name, concurrency: concurrency)
                } catch {
                    FileHandle.standardError.write(Data("listen-sdk: \(error)\n".utf8))
                    Foundation.exit(1)
                }
                ended.signal()
            }
            ended.wait()
        }
    }
}
