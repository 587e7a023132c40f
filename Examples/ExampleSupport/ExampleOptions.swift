import Foundation
public import Jobwire
public import Logging
import ServiceLifecycle
import UnixSignals

/// Endpoints and knobs shared by the examples, from options or the environment.
public struct ExampleOptions: Sendable {
    public var commands: String
    public var events: String
    public var name: String
    /// How long one job's simulated work takes (`JOBWIRE_WORK_MS`, default 400).
    public var workTime: Duration
    public var logLevel: Logger.Level
    /// The listener's settings; `JOBWIRE_GRACE_MS` sets how long running jobs may finish on SIGTERM, and
    /// `JOBWIRE_REQUEST_TIMEOUT_MS` how long a command waits for its reply.
    public var configuration: Listener.Configuration
    /// The values of the example's own options (`extraOptions`), by option name (`--parts`).
    public var extra: [String: String]

    /// Reads the options and the environment; exits with 64 on an unknown option.
    /// - Parameters:
    ///   - defaultName: the listener's name when neither `--name` nor `JOBWIRE_LISTENER` gives one.
    ///   - extraOptions: the example's own options that take a value, e.g. `["--parts"]`.
    public init(defaultName: String, extraOptions: [String] = []) {
        let environment = ProcessInfo.processInfo.environment
        let endpoints = Endpoints.fromEnvironment()
        var commands = endpoints.commands
        var events = endpoints.events
        var name = environment["JOBWIRE_LISTENER"] ?? defaultName
        var extra: [String: String] = [:]
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        while let argument = arguments.next() {
            switch argument {
            case "--commands": commands = arguments.next() ?? commands
            case "--events": events = arguments.next() ?? events
            case "--name": name = arguments.next() ?? name
            case _ where extraOptions.contains(argument):
                guard let value = arguments.next() else {
                    FileHandle.standardError.write(Data("\(argument) needs a value\n".utf8))
                    exit(64)
                }
                extra[argument] = value
            default:
                let known = (["--commands", "--events", "--name"] + extraOptions).joined(separator: ", ")
                FileHandle.standardError.write(Data("unknown option \(argument); use \(known)\n".utf8))
                exit(64)
            }
        }
        self.commands = commands
        self.events = events
        self.name = name
        self.extra = extra
        self.workTime = .milliseconds(Int(environment["JOBWIRE_WORK_MS"] ?? "") ?? 400)
        self.logLevel = Logger.Level(rawValue: environment["JOBWIRE_LOG_LEVEL"] ?? "info") ?? .info
        var configuration = Listener.Configuration()
        if let grace = environment["JOBWIRE_GRACE_MS"].flatMap({ Int($0) }) {
            configuration.shutdownGracePeriod = .milliseconds(grace)
        }
        if let timeout = environment["JOBWIRE_REQUEST_TIMEOUT_MS"].flatMap({ Int($0) }) {
            configuration.requestTimeout = .milliseconds(timeout)
        }
        self.configuration = configuration
    }
}

extension ExampleOptions {
    /// Sends logs to standard error at the chosen level; call it first, once.
    public func bootstrapLogging() {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// Runs a listener until SIGTERM or SIGINT, then lets it finish as Listener's shutdown says.
    public func run(_ listener: Listener) async throws {
        try await ServiceGroup(
            configuration: .init(
                services: [listener], gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: name))
        ).run()
    }
}
