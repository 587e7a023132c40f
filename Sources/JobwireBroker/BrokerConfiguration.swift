import Foundation
package import JobwireCore
public import JobwirePostgres
public import JobwireProtocol

/// How a broker runs: where it listens, where it keeps its store, and its limits.
public struct BrokerConfiguration: Sendable {
    /// Where the XPUB events socket binds.
    public var eventsEndpoint: String
    /// Where the ROUTER commands socket binds.
    public var commandsEndpoint: String
    /// The folder of the SQLite store; `nil` keeps everything in memory (lost on exit). Unused with
    /// ``postgres``.
    public var dataDirectory: String?
    /// The PostgreSQL store, instead of SQLite: several brokers may run on it, one active at a time.
    public var postgres: PostgresLocation?
    /// With ``postgres``: how long the active broker's role lasts without a renewal, so how long at most
    /// a standby waits to take over from a broker that stopped renewing it (one whose process died is
    /// replaced at once, as PostgreSQL ends its session).
    public var failoverTimeout: Duration = .seconds(5)
    /// With ``postgres``: called once when this broker loses the active role (another took over, or it could
    /// not renew the role in time). The broker must stop serving at once: by default it exits with status 3.
    public var roleLost: @Sendable (String) -> Void = { _ in
        fflush(nil)
        _exit(3)
    }
    /// The default lease of an acked or claimed job, when the job names none.
    public var leaseSeconds: Int
    /// The default number of attempts before a lease expiry fails a job, when the job names none.
    public var maxAttempts: Int
    /// The largest request the broker accepts; libzmq drops the connection of a peer that sends more.
    public var maxMessageSize: Int
    /// How many events the log keeps for replay; older `events.list` asks get `gone`.
    public var eventRetention: Int
    /// How often `broker:heartbeat` is published.
    public var heartbeatInterval: Duration
    /// How many events may queue for one slow subscriber before libzmq drops its messages. Events are
    /// shared between subscribers; each queued one costs a subscriber a 64-byte slot.
    public var sendHighWaterMark: Int
    /// How many replies libzmq may queue for one client that does not read them (the ROUTER's send
    /// high-water mark); more wait in the broker's own per-client backlog.
    public var repliesHighWaterMark: Int
    /// How many bytes of replies the broker keeps for one client that does not read them, beyond what
    /// libzmq queues; replies past it are dropped (the client times out and asks again).
    public var replyBacklogBytes: Int
    /// The most connections open at once over both sockets; a client past it is refused in its
    /// handshake (ZAP) and reconnects later. `nil` is no limit.
    public var maxConnections: Int?
    /// The most distinct subscription prefixes the broker tracks; past it every event goes to libzmq,
    /// which filters by its own subscription trie.
    public var maxSubscriptionPrefixes: Int
    /// Whether every commit waits for the disk (`synchronous=FULL`); otherwise a crash of the process
    /// still loses nothing, but a power cut may lose the last commits (`synchronous=NORMAL`).
    public var fsync: Bool
    /// The most requests taken off the socket before one group commit.
    public var maxBatch: Int
    /// The broker's CURVE secret key (Z85). With it both sockets require CURVE and only
    /// ``authorizedKeys`` may connect; the lease owner is then the client's authenticated key.
    public var curveSecretKey: String?
    /// The client public keys (Z85) admitted under CURVE.
    public var authorizedKeys: [String]
    /// The roles of authorized keys (see ``BrokerRole``); a key not named here has every role.
    public var keyRoles: [String: Set<BrokerRole>]
    /// Whether the broker may listen on other than loopback addresses without CURVE.
    public var allowInsecureRemote: Bool
    /// Whether to start on a store that lost committed changes (a torn or damaged write-ahead log),
    /// saying what was dropped, instead of refusing to.
    public var acceptLostChanges: Bool

    public init(
        eventsEndpoint: String = Endpoints.defaultEvents,
        commandsEndpoint: String = Endpoints.defaultCommands,
        dataDirectory: String? = "./.jobwire",
        leaseSeconds: Int = 30,
        maxAttempts: Int = 3,
        maxMessageSize: Int = 1 << 20,
        eventRetention: Int = 1_000_000,
        heartbeatInterval: Duration = .seconds(1),
        sendHighWaterMark: Int = 1_000,
        repliesHighWaterMark: Int = 64,
        replyBacklogBytes: Int = 8 << 20,
        maxSubscriptionPrefixes: Int = 4_096,
        maxConnections: Int? = 4_096,
        fsync: Bool = true,
        maxBatch: Int = 512,
        curveSecretKey: String? = nil,
        authorizedKeys: [String] = [],
        keyRoles: [String: Set<BrokerRole>] = [:],
        allowInsecureRemote: Bool = false,
        acceptLostChanges: Bool = false
    ) {
        self.eventsEndpoint = eventsEndpoint
        self.commandsEndpoint = commandsEndpoint
        self.dataDirectory = dataDirectory
        self.leaseSeconds = leaseSeconds
        self.maxAttempts = maxAttempts
        self.maxMessageSize = maxMessageSize
        self.eventRetention = eventRetention
        self.heartbeatInterval = heartbeatInterval
        self.sendHighWaterMark = sendHighWaterMark
        self.repliesHighWaterMark = repliesHighWaterMark
        self.replyBacklogBytes = replyBacklogBytes
        self.maxSubscriptionPrefixes = maxSubscriptionPrefixes
        self.maxConnections = maxConnections
        self.fsync = fsync
        self.maxBatch = maxBatch
        self.curveSecretKey = curveSecretKey
        self.authorizedKeys = authorizedKeys
        self.keyRoles = keyRoles
        self.allowInsecureRemote = allowInsecureRemote
        self.acceptLostChanges = acceptLostChanges
    }

    /// What the broker's core needs of this configuration.
    package var core: CoreConfiguration {
        CoreConfiguration(leaseSeconds: leaseSeconds, maxAttempts: maxAttempts, eventRetention: eventRetention)
    }

    /// Whether an endpoint only reaches this machine: loopback TCP, ipc or inproc.
    public static func isLocal(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        var host = endpoint.dropFirst("tcp://".count)
        if let colon = host.lastIndex(of: ":") { host = host[..<colon] }
        return host.hasPrefix("127.") || host == "localhost" || host == "[::1]" || host == "::1"
    }
}
