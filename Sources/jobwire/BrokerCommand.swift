import ArgumentParser
import JobwireBroker
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

    @Option(name: .customLong("events"), help: "Where the events (XPUB) socket binds.")
    var events = "tcp://127.0.0.1:7400"

    @Option(name: .customLong("commands"), help: "Where the commands (ROUTER) socket binds.")
    var commands = "tcp://127.0.0.1:7401"

    @Option(name: .customLong("data"), help: "The folder of the SQLite store.")
    var data = "./.jobwire"

    @Flag(name: .customLong("in-memory"), help: "Keep everything in memory; nothing survives a restart.")
    var inMemory = false

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
    var eventsHighWaterMark = 100_000

    @Flag(
        name: .customLong("no-fsync"),
        help:
            "Commit without waiting for the disk: a crash of the broker loses nothing, a power cut may lose the last commits."
    )
    var noFsync = false

    @Option(
        name: .customLong("curve-secret-key"),
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
        guard leaseSeconds > 0 else { throw ValidationError("--lease-seconds must be at least 1") }
        guard maxAttempts > 0 else { throw ValidationError("--max-attempts must be at least 1") }
        guard maxMessageSize >= 1024 else { throw ValidationError("--max-message-size must be at least 1024") }
        guard eventRetention > 0 else { throw ValidationError("--event-retention must be at least 1") }
        guard eventsHighWaterMark > 0 else { throw ValidationError("--events-high-water-mark must be at least 1") }
        if curveSecretKey != nil && curveSecretKeyFile != nil {
            throw ValidationError("give --curve-secret-key or --curve-secret-key-file, not both")
        }
        if authorizedKeys != nil, try KeyFiles.secretKey(inline: curveSecretKey, file: curveSecretKeyFile) == nil {
            throw ValidationError(
                "--authorized-keys needs --curve-secret-key, --curve-secret-key-file or JOBWIRE_CURVE_SECRET_KEY")
        }
    }

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level.level
            return handler
        }
        let logger = Logger(label: "jobwire.broker")
        let configuration = BrokerConfiguration(
            eventsEndpoint: events, commandsEndpoint: commands, dataDirectory: inMemory ? nil : data,
            leaseSeconds: leaseSeconds, maxAttempts: maxAttempts, maxMessageSize: maxMessageSize,
            eventRetention: eventRetention, sendHighWaterMark: eventsHighWaterMark, fsync: !noFsync,
            curveSecretKey: try KeyFiles.secretKey(inline: curveSecretKey, file: curveSecretKeyFile),
            authorizedKeys: try authorizedKeys.map(KeyFiles.publicKeys(in:)) ?? [],
            allowInsecureRemote: insecureAllowRemote, acceptLostChanges: acceptLostChanges)
        let store = inMemory ? "in memory" : data
        let service = BrokerService(configuration: configuration, logger: logger) { server in
            let curve = server.publicKey.map { ", curve public key \($0)" } ?? ""
            print(
                "jobwire broker listening: events \(server.eventsEndpoint), commands \(server.commandsEndpoint), "
                    + "store \(store), epoch \(server.epoch)\(curve)")
            fflush(nil)
        }
        let group = ServiceGroup(
            configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
