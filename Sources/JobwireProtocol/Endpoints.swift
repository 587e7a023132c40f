#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The broker's two endpoints, and the one place that says where they are by default.
///
/// Every entry point (the broker, `jobwire dev`, the CLI clients, `Listener(name:)`, `JobsClient()` and the
/// examples) reads `JOBWIRE_EVENTS` and `JOBWIRE_COMMANDS` through ``fromEnvironment(_:)`` when it is not
/// given an endpoint.
public struct Endpoints: Sendable, Hashable {
    /// The events (XPUB) endpoint when `JOBWIRE_EVENTS` is not set.
    public static let defaultEvents = "tcp://127.0.0.1:7400"
    /// The commands (ROUTER) endpoint when `JOBWIRE_COMMANDS` is not set.
    public static let defaultCommands = "tcp://127.0.0.1:7401"
    /// The variable naming the events endpoint.
    public static let eventsVariable = "JOBWIRE_EVENTS"
    /// The variable naming the commands endpoint.
    public static let commandsVariable = "JOBWIRE_COMMANDS"

    /// Where events are published, e.g. `tcp://127.0.0.1:7400`.
    public var events: String
    /// Where commands are answered, e.g. `tcp://127.0.0.1:7401`.
    public var commands: String

    public init(events: String = Endpoints.defaultEvents, commands: String = Endpoints.defaultCommands) {
        self.events = events
        self.commands = commands
    }

    /// `JOBWIRE_EVENTS` and `JOBWIRE_COMMANDS` when set and not empty, else the defaults.
    /// - Parameter environment: the variables to read; the process's environment when `nil`.
    public static func fromEnvironment(_ environment: [String: String]? = nil) -> Endpoints {
        func read(_ name: String) -> String? {
            let value = environment.map { $0[name] } ?? getenv(name).map { String(cString: $0) }
            guard let value, !value.isEmpty else { return nil }
            return value
        }
        return Endpoints(
            events: read(eventsVariable) ?? defaultEvents, commands: read(commandsVariable) ?? defaultCommands)
    }
}
