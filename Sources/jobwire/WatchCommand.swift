import ArgumentParser
import Foundation
import Jobwire

/// `jobwire watch`: the jobs panel of a user interface, in the terminal.
struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "A live jobs panel: status, progress bar, elapsed time, ETA and outcome of each job.",
        discussion: """
            Starts with the jobs that have not ended, then follows job events. On a
            terminal it redraws in place, in color (NO_COLOR turns color off), within
            the window: executing jobs first, ended ones for 5 s and then in a summary
            line, waiting ones last, and one line for the rest. Piped, it appends a
            line whenever a job changes.
              jobwire watch
              jobwire watch --job 'workbook:*'
              jobwire watch --id us_jb_8f2k --until-done     exit 0 if it completed, 1 if it failed
            """)

    @OptionGroup var client: ClientOptions

    @Option(help: "Only jobs whose name (type:operation) matches this glob, e.g. 'workbook:*'.")
    var job: String?

    @Option(name: .customLong("id"), help: "Only this job, shown even if it has ended (repeatable).")
    var ids: [String] = []

    @Flag(
        name: .customLong("until-done"),
        help: "Exit once every watched job has ended: 0 if all completed, 1 if any failed or was canceled.")
    var untilDone = false

    @Flag(name: .customLong("no-color"), help: "No colors, even on a terminal.")
    var noColor = false

    func validate() throws {
        if let job, job.isEmpty || job.contains("/") { throw ValidationError("--job \(job) is not a job-name glob") }
    }

    func run() async throws {
        let panel = JobPanel.forStandardOutput(noColor: noColor)
        let (options, ids, job, untilDone) = (client, ids, job, untilDone)
        let code = try await client.withClient { client in
            try await Watch.run(
                client: client, options: options, panel: panel, ids: ids, job: job, untilDone: untilDone)
        }
        if code != 0 { throw ExitCode(code) }
    }
}

/// Following jobs into a ``JobPanel`` (shared by `watch` and `demo`).
enum Watch {
    /// Seeds the panel, follows events and redraws until the jobs end (with `untilDone`) or a signal.
    /// - Returns: the exit code: 1 when `untilDone` and a job failed or was canceled, else 0.
    static func run(
        client: JobsClient, options: ClientOptions, panel: JobPanel, ids: [String], job: String?, untilDone: Bool,
        events: String? = nil, onEvent: @escaping @Sendable (Event) async -> Void = { _ in }
    ) async throws -> Int32 {
        let feed = try EventFeed(
            client: client, events: events ?? options.events, topics: ["job:*"], job: job, options: options)
        let wanted = Set(ids)
        if !untilDone { await panel.setHint("waiting for jobs… (Ctrl-C to quit)") }
        await panel.hideCursor()
        let finished: Bool?
        do {
            finished = try await CLI.untilSignal {
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    group.addTask {
                        var done = false
                        try await feed.run(since: nil) {
                            if wanted.isEmpty {
                                for found in try await client.listAll() where !found.status.isTerminal {
                                    if let job, !Glob(job).matches(found.name) { continue }
                                    await panel.apply(found)
                                }
                            } else {
                                for id in ids { await panel.apply(try await client.get(jobId: id)) }
                            }
                            await panel.draw()
                            let ended = await panel.allEnded
                            done = untilDone && ended
                            return !done
                        } handle: { event in
                            guard let id = event.context["jobId"]?.stringValue else { return true }
                            if !wanted.isEmpty && !wanted.contains(id) { return true }
                            await onEvent(event)
                            if await panel.apply(event) { await panel.draw() }
                            let ended = await panel.allEnded
                            done = untilDone && ended
                            return !done
                        }
                        return done
                    }
                    if panel.terminal {
                        group.addTask {
                            // Elapsed times and ETAs move on between events.
                            while !Task.isCancelled {
                                try await Task.sleep(for: .milliseconds(250))
                                await panel.draw()
                            }
                            return false
                        }
                    }
                    defer { group.cancelAll() }
                    return try await group.next() ?? false
                }
            }
        } catch {
            await panel.finish()
            await feed.close()
            throw error
        }
        await panel.draw(final: true)
        await panel.finish()
        await feed.close()
        let unsuccessful = await panel.anyUnsuccessful
        if finished == true && untilDone && unsuccessful { return 1 }
        return 0
    }
}
