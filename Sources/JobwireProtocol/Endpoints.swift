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
///
/// A client's value may be a comma-separated list, one endpoint per broker that may serve (an active broker
/// and its standbys): `tcp://a:7401,tcp://b:7401`. ``list(_:)`` splits and checks it; the client connects to
/// every one and talks to whichever broker is bound there (standbys bind nothing until they take over).
public struct Endpoints: Sendable, Hashable {
    /// The events (XPUB) endpoint when `JOBWIRE_EVENTS` is not set.
    public static let defaultEvents = "tcp://127.0.0.1:7400"
    /// The commands (ROUTER) endpoint when `JOBWIRE_COMMANDS` is not set.
    public static let defaultCommands = "tcp://127.0.0.1:7401"
    /// The variable naming the events endpoint.
    public static let eventsVariable = "JOBWIRE_EVENTS"
    /// The variable naming the commands endpoint.
    public static let commandsVariable = "JOBWIRE_COMMANDS"

    /// Where events are published, e.g. `tcp://127.0.0.1:7400`; for a client, maybe a comma-separated list.
    public var events: String
    /// Where commands are answered, e.g. `tcp://127.0.0.1:7401`; for a client, maybe a comma-separated list.
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

    /// Splits a client's endpoint value, one endpoint or a comma-separated list (`tcp://a:7401,tcp://b:7401`),
    /// and checks each element: `tcp://HOST:PORT` (a port from 1 to 65535), `ipc://PATH` or `inproc://NAME`.
    /// Spaces around an element are dropped.
    /// - Parameter value: the value of `--commands`, `--events`, `JOBWIRE_COMMANDS` or `JOBWIRE_EVENTS`.
    /// - Returns: the endpoints in the order given.
    /// - Throws: ``EndpointError`` naming the first element that is empty, malformed or listed twice.
    public static func list(_ value: String) throws(EndpointError) -> [String] {
        var endpoints: [String] = []
        for part in value.split(separator: ",", omittingEmptySubsequences: false) {
            var trimmed = part
            while trimmed.first == " " { trimmed = trimmed.dropFirst() }
            while trimmed.last == " " { trimmed = trimmed.dropLast() }
            let endpoint = String(trimmed)
            if endpoint.isEmpty {
                let fix =
                    value.contains(",") ? "drop the extra comma" : "give tcp://HOST:PORT, ipc://PATH or inproc://NAME"
                throw EndpointError(value: value, endpoint: "", reason: "is not allowed: \(fix)")
            }
            if let reason = problem(endpoint) {
                throw EndpointError(value: value, endpoint: endpoint, reason: reason)
            }
            if endpoints.contains(endpoint) {
                throw EndpointError(value: value, endpoint: endpoint, reason: "is listed twice")
            }
            endpoints.append(endpoint)
        }
        return endpoints
    }

    /// What is wrong with one endpoint a client connects to, or nil.
    private static func problem(_ endpoint: String) -> String? {
        let hint = "is not an endpoint: write tcp://HOST:PORT, ipc://PATH or inproc://NAME"
        for scheme in ["ipc://", "inproc://"] where endpoint.hasPrefix(scheme) {
            return endpoint.count > scheme.count ? nil : hint
        }
        guard endpoint.hasPrefix("tcp://") else { return hint }
        let address = endpoint.dropFirst(6)
        guard let colon = address.lastIndex(of: ":"), colon != address.startIndex else {
            return "has no port: write tcp://HOST:PORT, e.g. tcp://127.0.0.1:7401"
        }
        let host = address[..<colon]
        guard !host.contains(where: { $0 == " " || $0 == "/" }) else { return hint }
        guard let port = UInt16(address[address.index(after: colon)...]), port > 0 else {
            return "has no port a client can connect to: write tcp://HOST:PORT with a port from 1 to 65535"
        }
        return nil
    }
}
