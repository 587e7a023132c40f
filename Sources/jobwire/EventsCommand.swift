import ArgumentParser
import Foundation
import Jobwire

/// `jobwire events …`: the broker's event stream.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "The broker's events.",
        subcommands: [Tail.self])

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print events as they happen, one line each, until Ctrl-C.",
            discussion: """
                Patterns follow Flatfile's glob rules: ':' separates segments, '*' matches within one,
                '**' across many. Examples:
                  jobwire events tail                                   every event
                  jobwire events tail 'job:*' --job 'workbook:*'        job events of workbook jobs
                  jobwire events tail job:completed job:failed --since 0 --json
                """)

        @OptionGroup var client: ClientOptions

        @Argument(help: "Topic globs, e.g. job:ready, 'job:*', '*:ready'; any may match (default: '**').")
        var patterns: [String] = []

        @Option(help: "Only events of jobs whose name (type:operation) matches this glob, e.g. workbook:export.")
        var job: String?

        @Option(help: "Replay the events after this seq first (0: the whole log the broker keeps).")
        var since: Int64?

        @Option(help: "Exit after this many events.")
        var count: Int?

        @Flag(help: "Show broker:heartbeat every second too.")
        var heartbeats = false

        @Flag(help: "One JSON object per line (the event's envelope), for scripts.")
        var json = false

        func validate() throws {
            if let since, since < 0 { throw ValidationError("--since must be 0 or more") }
            if let count, count < 1 { throw ValidationError("--count must be at least 1") }
            for pattern in patterns + (job.map { [$0] } ?? []) where pattern.isEmpty || pattern.contains("/") {
                throw ValidationError("\"\(pattern)\" is not a pattern: it is empty or contains '/'")
            }
        }

        func run() async throws {
            let topics = patterns.isEmpty ? ["**"] : patterns
            let options = client
            let (since, count, json, heartbeats, job) = (self.since, self.count, self.json, self.heartbeats, self.job)
            try await client.withClient { client in
                let feed = try EventFeed(
                    client: client, events: options.events, topics: topics, job: job, options: options)
                _ = try await CLI.untilSignal {
                    var seen = 0
                    try await feed.run(since: since) {
                        CLI.note("jobwire: tailing \(topics.joined(separator: " ")) on \(options.events)")
                        return true
                    } heartbeat: { latest in
                        guard heartbeats else { return }
                        if json {
                            CLI.printJSON(["topic": "broker:heartbeat", "seq": .int(latest)])
                        } else {
                            CLI.emit("-  \(EventText.clock(.now()))  broker:heartbeat  seq \(latest)")
                        }
                    } handle: { event in
                        if json { CLI.printJSON(.object(event.json)) } else { CLI.emit(EventText.line(event)) }
                        seen += 1
                        return count.map { seen < $0 } ?? true
                    }
                }
                await feed.close()
            }
        }
    }
}

/// Events as one readable line.
enum EventText {
    /// `#12  02:00:00.123  job:ready  workbook:export  us_jb_8f2k  ready  0%  Starting`.
    static func line(_ event: Event) -> String {
        var parts = ["#\(event.seq.map(String.init) ?? "-")", clock(event.createdAt), event.topic]
        if event.domain == "job" {
            parts.append(event.subject)
            if let id = event.context["jobId"]?.stringValue { parts.append(id) }
            if let status = event.payload["status"]?.stringValue { parts.append(status) }
            if let progress = event.payload["progress"]?.doubleValue { parts.append(JobText.percent(progress)) }
            if let info = event.payload["info"]?.stringValue, !info.isEmpty { parts.append(info) }
            if let outcome = event.payload["outcome"], let parsed = try? Outcome(json: outcome) {
                parts.append("— " + JobText.describe(parsed))
            }
            if let partCounts = event.payload["parts"]?.objectValue {
                let counts = ["total", "completed", "failed", "canceled"].compactMap { key in
                    partCounts[key]?.intValue.map { "\($0) \(key)" }
                }
                parts.append(counts.joined(separator: ", "))
            }
        } else {
            parts.append(JSONCodec.string(.object(event.payload)))
        }
        return parts.joined(separator: "  ")
    }

    /// `02:00:00.123`, local time.
    static func clock(_ timestamp: Timestamp) -> String {
        let date = Date(timeIntervalSince1970: Double(timestamp.milliseconds) / 1000)
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss.SSS"
        return formatter.string(from: date)
    }
}
