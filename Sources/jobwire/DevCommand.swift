import ArgumentParser
import Foundation
import JobwireBroker
import JobwireProtocol
import Logging
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// `jobwire dev`: an embedded broker and the listeners of a Procfile, for local multi-process work.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run a broker and every listener of a Procfile; restart crashed listeners; Ctrl-C stops all.",
        discussion: """
            The Procfile has one `name: command` line per process, as foreman and
            honcho read it:
              export: .build/debug/workbook-export
              py: .venv/bin/python Examples/python/listener.py
            Each command runs from the Procfile's folder with JOBWIRE_COMMANDS and
            JOBWIRE_EVENTS set to the broker's endpoints; its output is prefixed with
            its name. A simple command runs as `sh -c 'exec COMMAND'`, so the pid
            shown is the command's own; a line with shell operators (; && |) runs
            under sh. Each process has a process group of its own. When one ends,
            what it left in its group is stopped, and it restarts after 1 s, doubling
            up to 30 s (back to 1 s once it ran 10 s). Ctrl-C or SIGTERM sends SIGTERM
            to every group, SIGKILL after 5 s, then stops the broker. If dev itself
            is killed, even with SIGKILL, each process it started gets SIGTERM (Linux).
            """)

    @Option(help: "The Procfile to run.")
    var procfile = "./Procfile"

    @Option(
        name: .customLong("events"),
        help: "Where the broker's events (XPUB) socket binds (default: JOBWIRE_EVENTS, else tcp://127.0.0.1:7400).")
    var events: String?

    @Option(
        name: .customLong("commands"),
        help:
            "Where the broker's commands (ROUTER) socket binds (default: JOBWIRE_COMMANDS, else tcp://127.0.0.1:7401)."
    )
    var commands: String?

    @Option(help: "The folder of the broker's SQLite store.")
    var data = "./.jobwire"

    @Flag(name: .customLong("in-memory"), help: "Keep the broker's store in memory; nothing survives a restart.")
    var inMemory = false

    @Flag(name: .customLong("no-color"), help: "No colors, even on a terminal.")
    var noColor = false

    @Option(name: .customLong("log-level"), help: "The embedded broker's log level (to standard error).")
    var logLevel: LogLevel = .warning

    func run() async throws {
        let procfile = try Procfile.read(self.procfile)
        let directory = URL(fileURLWithPath: self.procfile).deletingLastPathComponent().path
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level.level
            return handler
        }
        // Trap before anything starts, so a Ctrl-C during startup still stops cleanly.
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let broker: BrokerServer
        do {
            broker = try BrokerServer.start(
                configuration: BrokerConfiguration(
                    eventsEndpoint: events ?? Endpoints.fromEnvironment().events,
                    commandsEndpoint: commands ?? Endpoints.fromEnvironment().commands,
                    dataDirectory: inMemory ? nil : data),
                logger: Logger(label: "jobwire.dev.broker"))
        } catch {
            CLI.note("jobwire: the broker cannot start: \(error)")
            throw ExitCode(1)
        }
        let tty = isatty(1) == 1
        let color = tty && !noColor && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
        let printer = LinePrinter(names: procfile.entries.map(\.name), color: color)
        printer.system(
            "broker listening: events \(broker.eventsEndpoint), commands \(broker.commandsEndpoint), store "
                + (inMemory ? "in memory" : data))
        var environment = ProcessInfo.processInfo.environment
        environment["JOBWIRE_COMMANDS"] = broker.commandsEndpoint
        environment["JOBWIRE_EVENTS"] = broker.eventsEndpoint
        environment["PYTHONUNBUFFERED"] = "1"
        let supervisor = Supervisor(
            procfile: procfile, environment: environment, directory: directory, printer: printer)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await supervisor.run() }
            for await signal in signals {
                printer.system("\(signal) received: stopping")
                break
            }
            await supervisor.stop()
            await group.waitForAll()
        }
        broker.requestStop()
        await broker.waitUntilStopped()
        printer.system("stopped")
    }
}
