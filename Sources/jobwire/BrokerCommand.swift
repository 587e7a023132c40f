import ArgumentParser
import Foundation
import JobwireBroker
import JobwirePostgres
import JobwireProtocol
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run the broker: durable jobs, events on XPUB, commands on ROUTER."
    )

    @Option(
        name: .customLong("events"),
        help: ArgumentHelp(
            "Where the events (XPUB) socket binds (default: $JOBWIRE_EVENTS, else \(Endpoints.defaultEvents)).",
            valueName: "endpoint"))
    var eventsOption: String?

    @Option(
        name: .customLong("commands"),
        help: ArgumentHelp(
            "Where the commands (ROUTER) socket binds (default: $JOBWIRE_COMMANDS, else \(Endpoints.defaultCommands)).",
            valueName: "endpoint"))
    var commandsOption: String?

    @Option(
        name: .customLong("data"),
        help: ArgumentHelp("The folder of the SQLite store (default: \(Self.defaultData)).", valueName: "folder"))
    var dataOption: String?

    @Flag(name: .customLong("in-memory"), help: "Keep everything in memory; nothing survives a restart.")
    var inMemory = false

    @Option(
        name: .customLong("store"),
        help: ArgumentHelp(
            "Keep the state in PostgreSQL instead of SQLite: postgresql://USER@HOST:PORT/DB[?schema=NAME&sslmode=MODE] "
                + "(password from the URL, PGPASSWORD or .pgpass). Brokers started on one store elect one active "
                + "broker; the others wait as standbys and take over when it dies.",
            valueName: "url"))
    var storeOption: String?

    @Option(
        name: .customLong("failover-timeout"),
        help: ArgumentHelp(
            "With --store: how long the active broker's role lasts without renewal, in seconds; a standby takes "
                + "over at most this long after the active broker stops (at once when its process dies).",
            valueName: "seconds"))
    var failoverTimeout: Double = 5

    @Option(name: .customLong("lease-seconds"), help: "The default lease of an acked or claimed job, in seconds.")
    var leaseSeconds = 30

    @Option(name: .customLong("max-attempts"), help: "The default attempts before a lease expiry fails a job.")
    var maxAttempts = 3

    @Option(name: .customLong("max-message-size"), help: "The largest request accepted, in bytes.")
    var maxMessageSize = 1 << 20

    @Option(name: .customLong("event-retention"), help: "How many events the log keeps for replay.")
    var eventRetention = 1_000_000

    @Option(
        name: .customLong("events-high-water-mark"),
        help: "How many events may queue for one slow subscriber before it misses some (it replays them).")
    var eventsHighWaterMark = 1_000

    @Option(
        name: .customLong("replies-high-water-mark"),
        help: "How many replies libzmq may queue for one client that does not read them.")
    var repliesHighWaterMark = 64

    @Option(
        name: .customLong("reply-backlog-bytes"),
        help: "How many bytes of further replies the broker keeps for one client that does not read them.")
    var replyBacklogBytes = 8 << 20

    @Option(
        name: .customLong("max-subscription-prefixes"),
        help: "The most distinct subscription prefixes the broker tracks to skip events no one wants.")
    var maxSubscriptionPrefixes = 4_096

    @Option(
        name: .customLong("max-connections"),
        help: "The most connections open at once over both sockets (0: no limit); more are refused until some close.")
    var maxConnections = 4_096

    @Flag(
        name: .customLong("no-fsync"),
        help:
            "Commit without waiting for the disk: a crash of the broker loses nothing, a power cut may lose the last commits."
    )
    var noFsync = false

    @Option(
        name: .customLong("curve-secret-key"), parsing: .unconditional,
        help: "Turn on CURVE with this secret key (Z85), or the path of a file holding it (jobwire keys generate).")
    var curveSecretKey: String?

    @Option(
        name: .customLong("curve-secret-key-file"),
        help: ArgumentHelp(
            "Turn on CURVE with the secret key in this file; also $JOBWIRE_CURVE_SECRET_KEY (a key given inline shows in ps).",
            valueName: "path"))
    var curveSecretKeyFile: String?

    @Option(
        name: .customLong("authorized-keys"),
        help: "With CURVE: a folder of client public keys (*.pub files); only these may connect.")
    var authorizedKeys: String?

    @Flag(
        name: .customLong("accept-lost-changes"),
        help:
            "Start on a store that holds less than jobwire.seq says was committed (its write-ahead log deleted, cut or damaged), saying what was dropped."
    )
    var acceptLostChanges = false

    @Flag(
        name: .customLong("insecure-allow-remote"),
        help: "Allow listening on non-loopback addresses without CURVE.")
    var insecureAllowRemote = false

    @Option(name: .customLong("log-level"), help: "How much the broker logs to standard error.")
    var logLevel: LogLevel = .info

    func validate() throws {
        if storeOption != nil && (inMemory || dataOption != nil) {
            throw ValidationError(
                "--store keeps the state in PostgreSQL: it cannot go with --data or --in-memory (SQLite)")
        }
        guard failoverTimeout >= 1, failoverTimeout <= 3600 else {
            throw ValidationError("--failover-timeout must be between 1 and 3600 seconds")
        }
        guard leaseSeconds > 0 else { throw ValidationError("--lease-seconds must be at least 1") }
        guard maxAttempts > 0 else { throw ValidationError("--max-attempts must be at least 1") }
        guard maxMessageSize >= 1024 else { throw ValidationError("--max-message-size must be at least 1024") }
        guard eventRetention > 0 else { throw ValidationError("--event-retention must be at least 1") }
        guard eventsHighWaterMark > 0 else { throw ValidationError("--events-high-water-mark must be at least 1") }
        guard repliesHighWaterMark > 0 else { throw ValidationError("--replies-high-water-mark must be at least 1") }
        guard replyBacklogBytes >= 0 else { throw ValidationError("--reply-backlog-bytes must be at least 0") }
        guard maxConnections >= 0 else { throw ValidationError("--max-connections must be at least 0") }
        guard maxSubscriptionPrefixes >= 0 else {
            throw ValidationError("--max-subscription-prefixes must be at least 0")
        }
        if curveSecretKey != nil && curveSecretKeyFile != nil {
            throw ValidationError("give --curve-secret-key or --curve-secret-key-file, not both")
        }
        if authorizedKeys != nil, try KeyFiles.secretKey(inline: curveSecretKey, file: curveSecretKeyFile) == nil {
            throw ValidationError(
                "--authorized-keys needs --curve-secret-key, --curve-secret-key-file or JOBWIRE_CURVE_SECRET_KEY")
        }
    }

    static let defaultData = "./.jobwire"

    var data: String { dataOption ?? Self.defaultData }

    func run() async throws {
        let (events, commands) = try checkedEndpoints()
        let postgres: PostgresLocation?
        do {
            postgres = try storeOption.map { try PostgresLocation(url: $0) }
        } catch {
            throw UsageError("--store \(storeOption ?? ""): \(error)")
        }
        if !inMemory && postgres == nil {
            try Self.checkDataFolder(data, option: dataOption == nil ? "the data folder" : "--data")
        }
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level.level
            return handler
        }
        let logger = Logger(label: "jobwire.broker")
        let clients = try authorizedKeys.map(KeyFiles.authorizedKeys(in:)) ?? []
        var configuration = BrokerConfiguration(
            eventsEndpoint: events, commandsEndpoint: commands, dataDirectory: inMemory ? nil : data,
            leaseSeconds: leaseSeconds, maxAttempts: maxAttempts, maxMessageSize: maxMessageSize,
            eventRetention: eventRetention, sendHighWaterMark: eventsHighWaterMark,
            repliesHighWaterMark: repliesHighWaterMark, replyBacklogBytes: replyBacklogBytes,
            maxSubscriptionPrefixes: maxSubscriptionPrefixes,
            maxConnections: maxConnections == 0 ? nil : maxConnections,
            fsync: !noFsync,
            curveSecretKey: try KeyFiles.secretKey(inline: curveSecretKey, file: curveSecretKeyFile),
            authorizedKeys: clients.map(\.key),
            keyRoles: Dictionary(clients.compactMap { c in c.roles.map { (c.key, $0) } }) { $0.union($1) },
            allowInsecureRemote: insecureAllowRemote, acceptLostChanges: acceptLostChanges)
        configuration.postgres = postgres
        configuration.failoverTimeout = .milliseconds(Int64(failoverTimeout * 1000))
        let store = postgres.map { "\($0)" } ?? (inMemory ? "in memory" : data)
        let service = BrokerService(configuration: configuration, logger: logger) { holder in
            print("jobwire broker standby: \(holder); waiting to take over (store \(store))")
            fflush(nil)
        } onListening: { server in
            let curve = server.publicKey.map { ", curve public key \($0)" } ?? ""
            print(
                "jobwire broker listening: events \(server.eventsEndpoint), commands \(server.commandsEndpoint), "
                    + "store \(store), epoch \(server.epoch)\(curve)")
            fflush(nil)
        }
        let group = ServiceGroup(
            configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            CLI.note("jobwire broker: \(explain(error))")
            throw ExitCode.failure
        }
    }
}

extension BrokerCommand {
    /// The endpoints to bind, from the options or the environment, once they make sense.
    /// - Throws: ``UsageError`` naming the endpoint and what to write instead.
    func checkedEndpoints() throws -> (events: String, commands: String) {
        if inMemory && dataOption != nil {
            throw UsageError(
                "--data and --in-memory contradict each other: keep the store in a folder (--data) or in memory "
                    + "(--in-memory), not both")
        }
        let environment = Endpoints.fromEnvironment()
        let events = (
            value: eventsOption ?? environment.events, source: eventsOption == nil ? "JOBWIRE_EVENTS" : "--events"
        )
        let commands = (
            value: commandsOption ?? environment.commands,
            source: commandsOption == nil ? "JOBWIRE_COMMANDS" : "--commands"
        )
        for endpoint in [events, commands] where endpoint.value.contains(",") {
            let isEvents = endpoint.source.hasSuffix("EVENTS") || endpoint.source == "--events"
            let option = isEvents ? "--events" : "--commands"
            throw UsageError(
                "\(endpoint.source) holds a list of brokers (\(endpoint.value)), which is for clients: a broker binds "
                    + "one endpoint; give it with \(option), e.g. \(option) \(endpoint.value.split(separator: ",")[0])")
        }
        for endpoint in [events, commands] where !Self.isEndpoint(endpoint.value) {
            let source =
                endpoint.source.hasPrefix("--")
                ? "\(endpoint.source) \(endpoint.value)" : "\(endpoint.source)=\(endpoint.value)"
            throw UsageError(
                "\(source) is not a valid endpoint: write tcp://HOST:PORT or ipc://PATH, e.g. tcp://127.0.0.1:7400")
        }
        if Self.overlap(events.value, commands.value) {
            throw UsageError(
                "events (\(events.value)) and commands (\(commands.value)) cannot share a port: give each its own, e.g. "
                    + "--events tcp://127.0.0.1:7400 --commands tcp://127.0.0.1:7401")
        }
        return (events.value, commands.value)
    }

    /// Whether ZeroMQ can bind `endpoint` as the broker does: `tcp://HOST:PORT` (or `*`), `ipc://PATH`, `inproc://NAME`.
    static func isEndpoint(_ endpoint: String) -> Bool {
        for scheme in ["ipc://", "inproc://"] where endpoint.hasPrefix(scheme) { return endpoint.count > scheme.count }
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":") else { return false }
        let host = endpoint[endpoint.index(endpoint.startIndex, offsetBy: 6)..<colon]
        let port = endpoint[endpoint.index(after: colon)...]
        return !host.isEmpty && (port == "*" || UInt16(port) != nil)
    }

    /// Whether two endpoints bind the same address: the same ipc path, or the same TCP port on one host (or
    /// on every host).
    static func overlap(_ a: String, _ b: String) -> Bool {
        guard a.hasPrefix("tcp://"), b.hasPrefix("tcp://") else { return a == b }
        func split(_ endpoint: String) -> (host: Substring, port: Substring) {
            let colon = endpoint.lastIndex(of: ":") ?? endpoint.endIndex
            return (endpoint[endpoint.index(endpoint.startIndex, offsetBy: 6)..<colon], endpoint[colon...].dropFirst())
        }
        let (hostA, portA) = split(a)
        let (hostB, portB) = split(b)
        guard portA == portB, portA != "*", portA != "0" else { return false }
        let anyHost: Set<Substring> = ["*", "0.0.0.0"]
        return hostA == hostB || anyHost.contains(hostA) || anyHost.contains(hostB)
    }

    /// Checks that the store's folder is one the broker can create or write.
    /// - Throws: ``UsageError`` saying what is wrong with the folder and what to do.
    static func checkDataFolder(_ path: String, option: String) throws {
        let fix = "pick another folder with --data, or run with --in-memory"
        var status = stat()
        if stat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFDIR else {
                throw UsageError("\(option) \(path) is a file, not a folder: \(fix)")
            }
            if access(path, W_OK) != 0 {
                throw UsageError("\(option) \(path) is not writable (\(String(cString: strerror(errno)))): \(fix)")
            }
            return
        }
        // A missing folder is created; that needs its nearest existing parent to be a writable folder.
        var parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        while stat(parent, &status) != 0, parent != "/" {
            parent = URL(fileURLWithPath: parent).deletingLastPathComponent().path
        }
        guard status.st_mode & S_IFMT == S_IFDIR else {
            throw UsageError("cannot create \(option) \(path): \(parent) is a file, not a folder; \(fix)")
        }
        if access(parent, W_OK) != 0 {
            throw UsageError(
                "cannot create \(option) \(path): \(parent) is not writable (\(String(cString: strerror(errno)))); \(fix)"
            )
        }
    }

    /// A start failure in plain words: what is wrong and what to do.
    func explain(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("database is locked") || text.contains("SQLite error 5:") {
            return "the store in \(data) is in use by another broker: stop that broker, or give this one "
                + "another folder (--data) or --in-memory"
        }
        if text.contains("Address already in use") {
            let endpoint = text.contains("publish events") ? "events" : "commands"
            return "the \(endpoint) endpoint is taken (\(text)): stop what listens there (another broker?), or bind "
                + "another port with --\(endpoint)"
        }
        if text.contains("unable to open database file") || text.contains("SQLite error 14:") {
            return "cannot open the store in \(data) (\(text)): check the folder, or pick another with --data"
        }
        return text
    }
}
