import Foundation
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
    /// - Throws: when the store cannot be opened or an endpoint cannot be bound.
    public static func start(configuration: BrokerConfiguration, logger: Logger) throws -> BrokerServer {
        let store = try JobStore(
            directory: configuration.dataDirectory, fsync: configuration.fsync,
            acceptLostChanges: configuration.acceptLostChanges)
        let core = try BrokerCore(configuration: configuration, store: store, logger: logger)
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
        // The ZAP handler must exist before a CURVE socket accepts anyone: without one libzmq admits every key.
        var authenticator: ZAPAuthenticator?
        var publicKey: String?
        if let secret = configuration.curveSecretKey {
            do {
                publicKey = try CurveKeyPair.publicKey(forSecret: secret)
            } catch {
                throw BrokerError(message: "the CURVE secret key is not a 40-character Z85 key: \(error)")
            }
            authenticator = try ZAPAuthenticator(context: context, allowedClientKeys: configuration.authorizedKeys)
        }
        let router = try Socket(context, type: .router)
        try router.set(.routerMandatory, true)
        try router.set(.linger, .seconds(1))
        try router.set(.sendHighWaterMark, 100_000)
        try router.set(.receiveHighWaterMark, 100_000)
        // libzmq drops a peer that sends more than this; between the configured limit and this guard
        // the broker still answers with an error.
        try router.set(.maxMessageSize, max(configuration.maxMessageSize * 2, configuration.maxMessageSize + 65_536))
        let xpub = try Socket(context, type: .xpub)
        try xpub.set(.linger, .zero)
        try xpub.set(.sendHighWaterMark, configuration.sendHighWaterMark)
        if let secret = configuration.curveSecretKey {
            try secure(router, secretKey: secret)
            try secure(xpub, secretKey: secret)
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
            core: core, context: context, router: router, xpub: xpub, authenticator: authenticator, server: server,
            logger: logger)
        let thread = Thread { loop.run() }
        thread.name = "jobwire-broker"
        thread.start()
        return server
    }

    private static func secure(_ socket: borrowing Socket, secretKey: String) throws {
        try socket.set(.curveServer, true)
        try socket.set(.curveSecretKey, secretKey)
        try socket.set(.zapDomain, "jobwire")
    }

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
    let context: Context
    var router: Socket?
    var xpub: Socket?
    let authenticator: ZAPAuthenticator?
    let server: BrokerServer
    let logger: Logger
    let maxRequest: Int
    /// The prefixes subscribers have subscribed to, as the XPUB reports them.
    var subscriptions: [[UInt8]] = []

    init(
        core: BrokerCore, context: Context, router: consuming Socket, xpub: consuming Socket,
        authenticator: ZAPAuthenticator?, server: BrokerServer, logger: Logger
    ) {
        self.authenticator = authenticator
        self.core = core
        self.context = context
        self.router = .some(router)
        self.xpub = .some(xpub)
        self.server = server
        self.logger = logger
        self.maxRequest = core.configuration.maxMessageSize
    }

    func run() {
        var poller = Poller()
        let routerIndex = poller.add(router!, events: .readable)
        let xpubIndex = poller.add(xpub!, events: .readable)
        let heartbeatEvery = core.configuration.heartbeatInterval
        var nextHeartbeat = Timestamp.now()
        var stopping = false
        while true {
            var now = Timestamp.now()
            if now >= nextHeartbeat {
                publish([core.heartbeat()])
                nextHeartbeat = now + heartbeatEvery
            }
            var wake = min(nextHeartbeat, now + .milliseconds(100))
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
            now = Timestamp.now()
            core.now = now
            if poller.events(at: routerIndex).contains(.readable) || stopping {
                for _ in 0..<core.configuration.maxBatch {
                    guard let (frames, key) = receiveRequest() else { break }
                    handle(frames, authenticatedKey: key)
                }
            }
            core.tick()
            // The last round: a claim still waiting would never be answered.
            if stopping { core.answerWaitingClaims() }
            core.commit()
            let (replies, events) = core.takeOutput()
            // Events first: a client that reads a reply usually finds the events it caused already sent.
            publish(events)
            for reply in replies where !send(reply) {
                // A job handed to a claimer that is gone goes back to ready, in the next batch's commit.
                if let claimed = reply.claimed {
                    core.returnUndeliveredClaim(jobId: claimed.jobId, owner: claimed.owner)
                }
            }
            core.writeCommitMark()
            if stopping { break }
            if server.stopRequested { stopping = true }
        }
        logger.info("broker stopped", metadata: ["broker.seq": "\(core.seq)"])
        router = nil  // closes the socket (Socket.deinit)
        xpub = nil
        authenticator?.stop()
        core.store.close()
        context.terminate()
        server.markStopped()
    }

    private func receiveRequest() -> (frames: [[UInt8]], key: String?)? {
        do {
            if authenticator != nil {
                return try router!.receiveMultipart(dontWait: true, metadata: "User-Id").map {
                    ($0.frames, $0.property)
                }
            }
            return try router!.receiveMultipart(dontWait: true).map { ($0, nil) }
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
            let prefix = Array(frame.dropFirst())
            if kind == 1 {
                if !subscriptions.contains(prefix) { subscriptions.append(prefix) }
            } else if kind == 0 {
                subscriptions.removeAll { $0 == prefix }
            }
        }
    }

    /// Whether any subscriber wants an event with this topic frame.
    private func isSubscribed(_ topicFrame: [UInt8]) -> Bool {
        subscriptions.contains { topicFrame.starts(with: $0) }
    }

    /// Checks the framing of one ROUTER message and applies the request in it.
    private func handle(_ frames: [[UInt8]], authenticatedKey: String?) {
        guard let route = frames.first else { return }
        let caller = Caller(route: route, authenticatedKey: authenticatedKey)
        let rest = frames.dropFirst()
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
        case .success(let request): core.handle(request, from: caller)
        case .failure(let failure): core.reply(caller, id: failure.id, .failure(failure.error))
        }
    }

    private func reject(route: [UInt8], delimited: Bool, _ error: ProtocolError) {
        let body = RPCResponse(id: .null, result: .failure(error)).bytes
        do {
            try router!.send(delimited ? [route, [], body] : [route, body], dontWait: true)
        } catch {
            logger.debug("reply dropped", metadata: ["error": "\(error)"])
        }
    }

    /// Sends a reply; returns false when it could not be delivered.
    @discardableResult
    private func send(_ reply: OutgoingReply) -> Bool {
        do {
            if try router!.send([reply.route, [], reply.body], dontWait: true) { return true }
            logger.warning("reply dropped: the client is not reading")
        } catch {
            // ROUTER_MANDATORY: the client went away.
            logger.debug("reply dropped", metadata: ["error": "\(error)"])
        }
        return false
    }

    private func publish(_ events: [[[UInt8]]]) {
        // Subscriptions that arrived since the last round count for these events; an event no one
        // subscribed to is not handed to libzmq at all (it would copy it, then drop it). The log keeps
        // every event for replay either way.
        drainSubscriptions()
        for frames in events where isSubscribed(frames[0]) {
            // XPUB never blocks: a subscriber past its high-water mark loses messages, which seq and
            // events.list make good.
            _ = try? xpub!.send(frames, dontWait: true)
        }
    }
}
