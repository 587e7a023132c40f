import Foundation
import JobwireCore
import JobwirePostgres
import JobwireProtocol
public import Logging
import Synchronization
import ZeroMQ

/// A running broker: its sockets and state machine on a thread of their own.
///
/// The loop takes up to ``BrokerConfiguration/maxBatch`` requests off the ROUTER socket, applies them,
/// commits them in one transaction, then sends the replies and publishes the events. Nothing in it runs
/// on Swift's cooperative pool.
public final class BrokerServer: Sendable {
    /// Where the events socket listens (the bound address, also for `tcp://127.0.0.1:*`).
    public let eventsEndpoint: String
    /// Where the commands socket listens.
    public let commandsEndpoint: String
    /// The store's epoch.
    public let epoch: String
    /// The broker's CURVE public key, which clients need; `nil` without CURVE.
    public let publicKey: String?

    private let control: Mutex<Control>
    private let stopped: Mutex<Stopped>

    private struct Control {
        var stopRequested = false
    }

    private struct Stopped {
        var done = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// Opens the store, binds both sockets and starts the loop.
    ///
    /// On a PostgreSQL store another broker may be active: then this one waits as a standby (calling
    /// `standby` once) and binds nothing until it takes over, or until `cancelled` answers true.
    /// - Throws: when the store cannot be opened or an endpoint cannot be bound.
    public static func start(
        configuration: BrokerConfiguration, logger: Logger, standby: (String) -> Void = { _ in },
        cancelled: @escaping @Sendable () -> Bool = { false }
    ) throws -> BrokerServer {
        let store: any JobStore
        if let postgres = configuration.postgres {
            store = try PostgresJobStore(
                location: postgres, holder: holderName(configuration), failoverTimeout: configuration.failoverTimeout,
                logger: logger, standby: standby, cancelled: cancelled, lost: configuration.roleLost)
        } else {
            store = try SQLiteJobStore(
                directory: configuration.dataDirectory, fsync: configuration.fsync,
                acceptLostChanges: configuration.acceptLostChanges)
        }
        let core = try BrokerCore(
            configuration: configuration.core, store: store, clock: SystemClock(), logger: logger)
        if configuration.curveSecretKey == nil && !configuration.allowInsecureRemote {
            for endpoint in [configuration.commandsEndpoint, configuration.eventsEndpoint]
            where !BrokerConfiguration.isLocal(endpoint) {
                throw BrokerError(
                    message:
                        "refusing to listen on \(endpoint) without CURVE: anyone who can reach it could run and read jobs. "
                        + "Use a loopback address, turn on CURVE (--curve-secret-key, --authorized-keys), "
                        + "or pass --insecure-allow-remote")
            }
        }
        let context = try Context()
        var publicKey: String?
        if let secret = configuration.curveSecretKey {
            do {
                publicKey = try CurveKeyPair.publicKey(forSecret: secret)
            } catch {
                throw BrokerError(message: "the CURVE secret key is not a 40-character Z85 key: \(error)")
            }
        }
        let router = try Socket(context, type: .router)
        try router.set(.routerMandatory, true)
        try router.set(.linger, .seconds(1))
        // Per client: a reply libzmq cannot queue waits in the loop's backlog (PendingReplies), which is
        // bounded in bytes, so a client that does not read holds a bounded amount of memory.
        try router.set(.sendHighWaterMark, configuration.repliesHighWaterMark)
        // Requests libzmq queues per client before it stops reading that client's connection (the client
        // then waits; nothing is lost): at most this many messages of up to twice maxMessageSize each.
        try router.set(.receiveHighWaterMark, Self.requestsHighWaterMark)
        // libzmq drops a peer that sends more than this; between the configured limit and this guard
        // the broker still answers with an error.
        try router.set(.maxMessageSize, max(configuration.maxMessageSize * 2, configuration.maxMessageSize + 65_536))
        let xpub = try Socket(context, type: .xpub)
        try xpub.set(.linger, .zero)
        try xpub.set(.sendHighWaterMark, configuration.sendHighWaterMark)
        // A subscriber sends only subscribe and unsubscribe messages: libzmq drops a subscriber that sends
        // a longer one before it is buffered or enters libzmq's own subscription trie.
        try xpub.set(.maxMessageSize, SubscriptionLimits.maxMessageSize)
        if let secret = configuration.curveSecretKey {
            try secure(router, secretKey: secret)
            try secure(xpub, secretKey: secret)
        }
        // The ZAP handler must exist before a socket with a ZAP domain accepts anyone: without one libzmq
        // admits every client. Under CURVE it checks keys and roles; with a connection limit it counts the
        // sockets' connections (from their monitors) and refuses clients past the limit, CURVE or not.
        var authenticator: ZAPAuthenticator?
        if configuration.curveSecretKey != nil || configuration.maxConnections != nil {
            var limit: ZAPAuthenticator.ConnectionLimit?
            if let maxConnections = configuration.maxConnections {
                let tag = UInt64.random(in: 0...UInt64.max)
                let monitors = ["inproc://jobwire-monitor-commands-\(tag)", "inproc://jobwire-monitor-events-\(tag)"]
                try router.monitor(monitors[0], events: [.accepted, .disconnected])
                try xpub.monitor(monitors[1], events: [.accepted, .disconnected])
                limit = ZAPAuthenticator.ConnectionLimit(monitors: monitors, maxConnections: maxConnections)
            }
            try router.set(.zapDomain, Self.commandsZAPDomain)
            try xpub.set(.zapDomain, Self.eventsZAPDomain)
            authenticator = try ZAPAuthenticator(
                context: context, allowedClientKeys: configuration.authorizedKeys,
                domainKeys: configuration.curveSecretKey == nil
                    ? [:] : [Self.eventsZAPDomain: configuration.readerKeys],
                allowNull: configuration.curveSecretKey == nil, connectionLimit: limit)
        }
        // The router's monitor is the ZAP handler's when it counts connections; else the loop's own.
        let connections =
            if let authenticator, configuration.maxConnections != nil {
                ConnectionWatch(authenticator: authenticator)
            } else {
                try ConnectionWatch(router: router, context: context)
            }
        do {
            try router.bind(configuration.commandsEndpoint)
        } catch {
            throw BrokerError(message: "cannot listen for commands on \(configuration.commandsEndpoint): \(error)")
        }
        do {
            try xpub.bind(configuration.eventsEndpoint)
        } catch {
            throw BrokerError(message: "cannot publish events on \(configuration.eventsEndpoint): \(error)")
        }
        let server = BrokerServer(
            events: try xpub.lastEndpoint, commands: try router.lastEndpoint, epoch: core.epoch, publicKey: publicKey)
        let loop = Loop(
            core: core, configuration: configuration, context: context, router: router, xpub: xpub,
            authenticator: authenticator, server: server, logger: logger)
        loop.connections = connections
        let thread = Thread { loop.run() }
        thread.name = "jobwire-broker"
        thread.start()
        return server
    }

    /// How this broker appears in the PostgreSQL store's leader row: host, process and commands endpoint.
    private static func holderName(_ configuration: BrokerConfiguration) -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier) \(configuration.commandsEndpoint)"
    }

    private static func secure(_ socket: borrowing Socket, secretKey: String) throws {
        try socket.set(.curveServer, true)
        try socket.set(.curveSecretKey, secretKey)
    }

    /// Requests libzmq queues for one client; more than a batch takes from one client.
    static let requestsHighWaterMark = 256

    /// The ZAP domain of the commands socket: every authorized key connects.
    static let commandsZAPDomain = "jobwire"
    /// The ZAP domain of the events socket: only keys with the `read` role connect.
    static let eventsZAPDomain = "jobwire.events"

    private init(events: String, commands: String, epoch: String, publicKey: String?) {
        eventsEndpoint = events
        commandsEndpoint = commands
        self.epoch = epoch
        self.publicKey = publicKey
        control = Mutex(Control())
        stopped = Mutex(Stopped())
    }

    /// Asks the loop to answer what it has in hand, commit, and stop. Returns at once.
    public func requestStop() {
        control.withLock { $0.stopRequested = true }
    }

    var stopRequested: Bool { control.withLock { $0.stopRequested } }

    /// Waits until the loop has stopped and closed its sockets.
    public func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = stopped.withLock { state in
                if state.done { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Stops the loop and waits for it.
    public func stop() async {
        requestStop()
        await waitUntilStopped()
    }

    fileprivate func markStopped() {
        let waiters = stopped.withLock { state in
            state.done = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// The broker could not start.
public struct BrokerError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The loop's state; lives on the broker thread only.
private final class Loop: @unchecked Sendable {
    // @unchecked Sendable: handed once to the broker thread, which is its only user from then on.
    let core: BrokerCore
    let configuration: BrokerConfiguration
    let context: Context
    var router: Socket?
    var xpub: Socket?
    let authenticator: ZAPAuthenticator?
    let server: BrokerServer
    let logger: Logger
    let maxRequest: Int
    /// The prefixes subscribers have subscribed to, as the XPUB reports them.
    var subscriptions: SubscriptionTable
    /// Replies libzmq could not queue yet, per client.
    var backlog: [[UInt8]: PendingReplies] = [:]
    /// Whether a backlog took or sent a reply in the last round.
    var backlogMoved = false
    /// When the loop last logged each kind of dropped input, to log it at most once a minute.
    var lastWarning: [String: Timestamp] = [:]
    /// Which clients have gone: their waiting claims are dropped.
    var connections: ConnectionWatch?

    init(
        core: BrokerCore, configuration: BrokerConfiguration, context: Context, router: consuming Socket,
        xpub: consuming Socket, authenticator: ZAPAuthenticator?, server: BrokerServer, logger: Logger
    ) {
        self.authenticator = authenticator
        self.core = core
        self.configuration = configuration
        self.context = context
        self.router = .some(router)
        self.xpub = .some(xpub)
        self.server = server
        self.logger = logger
        self.maxRequest = configuration.maxMessageSize
        self.subscriptions = SubscriptionTable(
            maxPrefixLength: SubscriptionLimits.maxPrefixLength,
            maxPrefixes: configuration.maxSubscriptionPrefixes)
    }

    func run() {
        var poller = Poller()
        let routerIndex = poller.add(router!, events: .readable)
        let xpubIndex = poller.add(xpub!, events: .readable)
        let heartbeatEvery = configuration.heartbeatInterval
        var nextHeartbeat = Timestamp.now()
        var stopping = false
        while true {
            let now = Timestamp.now()
            if now >= nextHeartbeat {
                publish([core.heartbeat()])
                nextHeartbeat = now + heartbeatEvery
            }
            // A backlog that moved goes on as soon as libzmq has room again; one that is stuck (a client
            // that does not read) is retried less often.
            let backlogRetry: Duration =
                backlog.isEmpty ? .milliseconds(100) : backlogMoved ? .milliseconds(1) : .milliseconds(20)
            var wake = min(nextHeartbeat, now + backlogRetry)
            if let deadline = core.nextDeadline { wake = min(wake, deadline) }
            let timeout = stopping ? Duration.zero : wake.duration(since: now)
            do {
                try poller.poll(timeout: max(timeout, .zero))
            } catch {
                if error == .interrupted { continue }
                logger.error("poll failed; the broker stops", metadata: ["error": "\(error)"])
                break
            }
            if poller.events(at: xpubIndex).contains(.readable) { drainSubscriptions() }
            core.readClock()
            if poller.events(at: routerIndex).contains(.readable) || stopping {
                var requestBytes = 0
                var replyBytes = 0
                let batchStarted = ContinuousClock.now
                for _ in 0..<configuration.maxBatch {
                    // Every reply of a batch waits for its commit: a batch of requests that each cost a few
                    // milliseconds (a pipelining client's) is cut after a time budget, so that another
                    // client's request waits for at most that much of someone else's work.
                    guard requestBytes < Self.maxBatchBytes, replyBytes < Self.maxBatchBytes,
                        ContinuousClock.now - batchStarted < Self.batchTimeBudget,
                        let request = receiveRequest()
                    else { break }
                    let replied = core.outbox.count
                    handle(request)
                    requestBytes += request.byteCount
                    replyBytes += core.outbox[replied...].reduce(0) { $0 + $1.body.count }
                }
            }
            for route in connections?.goneRoutes() ?? [] { core.dropWaitingClaims(route: route) }
            core.tick()
            // The last round: a claim still waiting would never be answered.
            if stopping { core.answerWaitingClaims() }
            core.commit()
            let (replies, events) = core.takeOutput()
            // Events first: a client that reads a reply usually finds the events it caused already sent.
            publish(events)
            backlogMoved = false
            flushBacklog()
            for reply in replies where !deliver(reply) { undelivered(reply) }
            core.writeCommitMark()
            if stopping { break }
            if server.stopRequested { stopping = true }
        }
        logger.info("broker stopped", metadata: ["broker.seq": "\(core.seq)"])
        router = nil  // closes the socket (Socket.deinit)
        connections?.close()
        xpub = nil
        authenticator?.stop()
        core.store.close()
        context.terminate()
        server.markStopped()
    }

    /// Routing id, delimiter, body, and one more frame to tell a message of several body frames.
    static let maxFrames = 4

    /// The most request bytes one batch takes, and the most reply bytes it gathers, before it is committed
    /// and sent: a few large requests or replies end a batch early, so they neither pile up in memory nor
    /// keep other clients waiting long for the commit.
    static let maxBatchBytes = 4 << 20

    /// How long a batch takes requests before it is committed and answered.
    static let batchTimeBudget = Duration.milliseconds(20)

    /// Receives one message, copying at most ``maxFrames`` frames and `maxMessageSize` plus 1 KiB
    /// bytes; the rest of a larger message is read and dropped without a copy.
    private func receiveRequest() -> LimitedMessage? {
        do {
            return try router!.receiveMultipart(
                dontWait: true, maxFrames: Self.maxFrames, maxBytes: maxRequest + 1024,
                metadata: configuration.curveSecretKey != nil ? "User-Id" : nil)
        } catch {
            logger.warning("receive failed", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Reads the subscription changes the XPUB passes on: `1` + prefix when a prefix gets its first
    /// subscriber, `0` + prefix when its last one leaves (libzmq counts subscribers per prefix itself).
    private func drainSubscriptions() {
        while let message = try? xpub!.receiveMultipart(dontWait: true) {
            guard let frame = message.first, let kind = frame.first else { continue }
            let prefix = frame.dropFirst()
            if kind == 1 {
                if !subscriptions.add(prefix) {
                    warn(
                        "subscriptions",
                        "more than \(subscriptions.maxPrefixes) distinct subscription prefixes: until some go, "
                            + "every event is handed to libzmq, which filters by its own subscription trie")
                }
            } else if kind == 0 {
                subscriptions.remove(prefix)
            }
        }
    }

    /// Logs a warning at most once a minute per kind.
    private func warn(_ kind: String, _ message: String) {
        let now = Timestamp.now()
        if let last = lastWarning[kind], now < last + .seconds(60) { return }
        lastWarning[kind] = now
        logger.warning("\(message)")
    }

    /// Checks the framing of one ROUTER message and applies the request in it.
    private func handle(_ request: LimitedMessage) {
        let frames = request.frames
        guard let route = frames.first else { return }
        let descriptor = router!.lastFrameDescriptor()
        for gone in connections?.note(route: route, descriptor: descriptor) ?? [] {
            core.dropWaitingClaims(route: gone)
        }
        let caller = Caller(route: route, authenticatedKey: request.property)
        if backlog[route]?.isDropping == true {
            // Its replies are being dropped: a further request is not even run, so it changes nothing.
            warn("requests", "request dropped unanswered: a client does not read its replies and its backlog is full")
            if logger.logLevel <= .debug, let body = frames.last, case .success(let dropped) = RPCRequest.decode(body) {
                logger.debug(
                    "request dropped unanswered",
                    metadata: ["rpc.id": "\(String(decoding: dropped.rawID, as: UTF8.self))"])
            }
            return
        }
        let rest = frames.dropFirst()
        if request.isTruncated {
            // A frame not kept was not empty: without a kept first frame there was no delimiter.
            reject(
                route: route, delimited: rest.first?.isEmpty ?? false,
                ProtocolError(
                    .invalidRequest,
                    "a request must be one frame of at most \(maxRequest) bytes after the delimiter; "
                        + "this message has more frames or bytes"))
            return
        }
        guard let first = rest.first else { return }
        if !first.isEmpty {
            // A DEALER that sent no delimiter: answer in its own framing.
            reject(
                route: route, delimited: false,
                ProtocolError(.invalidRequest, "a request must be [empty frame, request]"))
            return
        }
        guard rest.count <= 2 else {
            reject(
                route: route, delimited: true,
                ProtocolError(.invalidRequest, "a request must be one frame after the delimiter"))
            return
        }
        let body = rest.count == 2 ? rest.last! : []
        if body.count > maxRequest {
            reject(
                route: route, delimited: true,
                ProtocolError(.invalidRequest, "request of \(body.count) bytes exceeds the limit of \(maxRequest)"))
            return
        }
        switch RPCRequest.decode(body) {
        case .success(let request):
            if let denied = configuration.authorizationError(method: request.method, key: caller.authenticatedKey) {
                core.reply(caller, rawID: request.rawID, .failure(denied))
                return
            }
            core.handle(request, from: caller)
        case .failure(let failure): core.reply(caller, rawID: failure.rawID, .failure(failure.error))
        }
    }

    /// Answers a message that is not a request: in the round's outbox, behind the replies to the client's
    /// earlier requests, and through the client's backlog like any reply.
    private func reject(route: [UInt8], delimited: Bool, _ error: ProtocolError) {
        let body = RPCResponse(id: .null, result: .failure(error)).bytes
        core.outbox.append(OutgoingReply(route: route, body: body, delimited: delimited))
    }

    /// Replies libzmq could not queue for one client yet (its send high-water mark was reached), oldest first.
    struct PendingReplies {
        /// The replies from `head` on wait; those before it were sent.
        var replies: [OutgoingReply] = []
        var head = 0
        var bytes = 0
        /// A reply was dropped since the client last took one: its requests are dropped too.
        var isDropping = false
        var isEmpty: Bool { head >= replies.count }

        mutating func append(_ reply: OutgoingReply) {
            replies.append(reply)
            bytes += reply.body.count
        }

        /// Forgets the `count` replies from `head` on, which were sent.
        mutating func sent(_ count: Int) {
            for reply in replies[head..<head + count] { bytes -= reply.body.count }
            head += count
            if head > 64 && head * 2 > replies.count {
                replies.removeFirst(head)
                head = 0
            }
        }
    }

    private enum SendResult { case sent, full, gone }

    private func trySend(_ reply: OutgoingReply) -> SendResult {
        do {
            let frames = reply.delimited ? [reply.route, [], reply.body] : [reply.route, reply.body]
            return try router!.send(frames, dontWait: true) ? .sent : .full
        } catch {
            // ROUTER_MANDATORY: the client went away.
            logger.debug("reply dropped", metadata: ["error": "\(error)"])
            return .gone
        }
    }

    /// Sends a reply, or keeps it in the client's backlog behind earlier ones while that stays within
    /// ``BrokerConfiguration/replyBacklogBytes``; returns false when the reply was dropped.
    private func deliver(_ reply: OutgoingReply) -> Bool {
        if backlog[reply.route] == nil {
            switch trySend(reply) {
            case .sent: return true
            case .gone: return false
            case .full: break
            }
        }
        if let pending = backlog[reply.route], !pending.isEmpty,
            pending.bytes + reply.body.count > configuration.replyBacklogBytes
        {
            warn("replies", "reply dropped: a client does not read its replies and its backlog is full")
            backlog[reply.route]?.isDropping = true
            return false
        }
        // Appended in place: a copy of the backlog per reply made a long one quadratic.
        backlog[reply.route, default: PendingReplies()].append(reply)
        backlogMoved = true
        return true
    }

    /// Sends what the backlogs hold while libzmq takes it; drops the backlog of a client that is gone.
    private func flushBacklog() {
        for route in Array(backlog.keys) {
            // Taken out of the dictionary while it is worked on, so that changing it copies nothing.
            guard var pending = backlog.removeValue(forKey: route) else { continue }
            var sent = 0
            sending: while pending.head + sent < pending.replies.count {
                switch trySend(pending.replies[pending.head + sent]) {
                case .sent: sent += 1
                case .full: break sending
                case .gone:
                    for reply in pending.replies[(pending.head + sent)...] { undelivered(reply) }
                    sent = pending.replies.count - pending.head
                }
            }
            if sent > 0 {
                backlogMoved = true
                pending.sent(sent)
                pending.isDropping = false
            }
            if !pending.isEmpty { backlog[route] = pending }
        }
    }

    /// A job handed to a claimer that never gets the reply goes back to ready, in the next batch's commit.
    private func undelivered(_ reply: OutgoingReply) {
        if let claimed = reply.claimed {
            core.returnUndeliveredClaim(jobId: claimed.jobId, owner: claimed.owner, attempt: claimed.attempt)
        }
    }

    private func publish(_ events: [[[UInt8]]]) {
        // Subscriptions that arrived since the last round count for these events; an event no one
        // subscribed to is not handed to libzmq at all (it would copy it, then drop it). The log keeps
        // every event for replay either way.
        drainSubscriptions()
        for frames in events where subscriptions.wants(frames[0]) {
            // XPUB never blocks: a subscriber past its high-water mark loses messages, which seq and
            // events.list make good.
            _ = try? xpub!.send(frames, dontWait: true)
        }
    }
}
