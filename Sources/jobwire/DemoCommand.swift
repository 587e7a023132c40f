import ArgumentParser
import Foundation
import Jobwire
import JobwireBroker
import JobwireChildProcess
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `jobwire demo`: a broker, an example listener, and a click on "Export workbook", end to end.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Watch a job go from a click to its outcome: embedded broker, example listener, live progress.",
        discussion: """
            Starts a broker in memory and the workbook-export example listener (built next to jobwire by
            `swift build`), mounts an "Export workbook" action on workbook us_wb_demo, clicks it, and shows
            the job's progress until it ends, then its outcome. Exits 0 when the job completed.
              jobwire demo
              jobwire demo --listener '.venv/bin/python Examples/python/listener.py'
            """)

    @Option(
        name: .customLong("listener"),
        help: ArgumentHelp(
            "A listener command to run instead of the workbook-export example (repeatable).", valueName: "command"))
    var listeners: [String] = []

    @Option(help: "Seconds to wait for a listener to pick the job up.")
    var timeout: Double = 30

    @Flag(help: "Show the listeners' output too.")
    var verbose = false

    @Flag(name: .customLong("no-color"), help: "No colors, even on a terminal.")
    var noColor = false

    func run() async throws {
        let commands = listeners.isEmpty ? [try Self.exampleListener()] : listeners
        let panel = JobPanel.forStandardOutput(noColor: noColor)
        let bold = { (text: String) in panel.color ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let broker = try BrokerServer.start(
            configuration: BrokerConfiguration(
                eventsEndpoint: "tcp://127.0.0.1:*", commandsEndpoint: "tcp://127.0.0.1:*", dataDirectory: nil),
            logger: Logger(label: "jobwire.demo.broker"))
        CLI.emit("● broker running in memory: events \(broker.eventsEndpoint), commands \(broker.commandsEndpoint)")

        var environment = ProcessInfo.processInfo.environment
        environment["JOBWIRE_COMMANDS"] = broker.commandsEndpoint
        environment["JOBWIRE_EVENTS"] = broker.eventsEndpoint
        environment["PYTHONUNBUFFERED"] = "1"
        // Slow enough to watch the bar move; the example's own default is a blink.
        if environment["JOBWIRE_WORK_MS"] == nil { environment["JOBWIRE_WORK_MS"] = "3000" }
        let names = commands.map {
            URL(
                fileURLWithPath: String($0.split(separator: " ").first ?? "").trimmingCharacters(
                    in: CharacterSet(charactersIn: "'\""))
            ).lastPathComponent
        }
        let printer = LinePrinter(names: names, color: panel.color)
        let log = Locked<[String]>([])
        let verbose = self.verbose
        var children: [ChildProcess] = []
        for (index, command) in commands.enumerated() {
            let name = names[index]
            children.append(
                try ChildProcess(command: command, environment: environment, directory: nil) { line in
                    log.withLock { $0.append("\(name) | \(line)") }
                    if verbose { printer.print(name, index: index, line) }
                })
            CLI.emit("● started listener \(name) (pid \(children[index].pid))")
        }

        var code: Int32 = 1
        do {
            code = try await demo(broker: broker, panel: panel, bold: bold, children: children)
        } catch {
            CLI.note("jobwire demo: \(CLI.message(error))")
        }
        if code != 0 && !verbose {
            let lines = log.withLock { $0 }
            if !lines.isEmpty {
                CLI.note("the listeners' output:")
                for line in lines.suffix(40) { CLI.note("  " + line) }
            }
        }
        for child in children { _ = await child.stop(grace: .seconds(5)) }
        broker.requestStop()
        await broker.waitUntilStopped()
        CLI.emit("● stopped the listener\(children.count == 1 ? "" : "s") and the broker")
        if code != 0 { throw ExitCode(code) }
    }

    private func demo(
        broker: BrokerServer, panel: JobPanel, bold: (String) -> String, children: [ChildProcess]
    ) async throws -> Int32 {
        let options = try ClientOptions.parse([
            "--commands", broker.commandsEndpoint, "--events", broker.eventsEndpoint,
        ])
        let client = try options.makeClient()
        do {
            let code = try await demo(client: client, options: options, panel: panel, bold: bold, children: children)
            await client.close()
            return code
        } catch {
            await client.close()
            throw error
        }
    }

    private func demo(
        client: JobsClient, options: ClientOptions, panel: JobPanel, bold: (String) -> String,
        children: [ChildProcess]
    ) async throws -> Int32 {
        let action = try await client.mountAction(
            domain: "workbook", resourceId: "us_wb_demo",
            action: [
                "operation": "export", "label": "Export workbook", "primary": true,
                "description": "Export every sheet of the workbook to a file",
            ])
        CLI.emit("● mounted the action \(bold("“\(action.label)”")) (\(action.id)) on workbook \(action.resourceId)")
        let job = try await client.triggerAction(actionId: action.id, actorId: "us_usr_demo")
        CLI.emit("▶ clicked \(bold("“\(action.label)”")): job \(job.id) (\(job.name)) is \(job.status.rawValue)")
        CLI.emit("")

        let timeout = self.timeout
        let code = try await withThrowingTaskGroup(of: Int32?.self) { group in
            group.addTask {
                try await Watch.run(
                    client: client, options: options, panel: panel, ids: [job.id], job: nil, untilDone: true)
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int64(timeout * 1000)))
                let now = try await client.get(jobId: job.id)
                guard now.status == .ready || now.status == .created else { return nil }
                throw UsageError(
                    "no listener picked up \(job.name) within \(CLI.seconds(timeout)): "
                        + (children.allSatisfy(\.hasExited) ? "the listener exited" : "is it listening for it?"))
            }
            group.addTask {
                // A listener that exits (a crash, a wrong endpoint) ends the demo at once.
                while !children.allSatisfy(\.hasExited) { try await Task.sleep(for: .milliseconds(100)) }
                let now = try await client.get(jobId: job.id)
                guard !now.status.isTerminal else { return nil }
                let statuses = children.compactMap { $0.exitStatus.map { "\($0)" } }.joined(separator: ", ")
                throw UsageError(
                    "the listener exited (\(statuses)) before \(job.name) ended")
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            return Int32(1)
        }
        let final = try await client.get(jobId: job.id)
        CLI.emit("")
        let elapsed = JobPanel.duration(
            (final.finishedAt ?? .now()).milliseconds - (final.startedAt ?? final.createdAt).milliseconds)
        let mark = final.status == .complete ? "✔" : "✘"
        CLI.emit("\(mark) \(final.name) \(bold(final.status.rawValue)) in \(elapsed)")
        if let outcome = final.outcome {
            if let heading = outcome.heading { CLI.emit("  \(bold(heading))") }
            if let message = outcome.message { CLI.emit("  \(message)") }
            if let next = outcome.next { CLI.emit("  → \(JobText.describe(next))") }
        }
        return final.status == .complete ? 0 : max(code, 1)
    }

    /// The workbook-export example built next to this executable.
    static func exampleListener() throws -> String {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let candidate = executable.deletingLastPathComponent().appendingPathComponent("workbook-export").path
        guard FileManager.default.isExecutableFile(atPath: candidate) else {
            CLI.note(
                "jobwire demo: no workbook-export example next to \(executable.path): build it with `swift build` "
                    + "(or run another listener: jobwire demo --listener 'COMMAND')")
            throw ExitCode(1)
        }
        return "'\(candidate)'"
    }
}

/// A value behind a lock, for closures that run on other threads.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) throws -> R) rethrows -> R { try mutex.withLock { try body(&$0) } }
}

extension CLI {
    /// An error as a sentence.
    static func message(_ error: any Error) -> String {
        switch error {
        case let error as ProtocolError: describe(error)
        case let error as JobwireError: error.message
        default: "\(error)"
        }
    }
}
