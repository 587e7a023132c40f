import Synchronization

/// A ZAP handler (ZeroMQ RFC 27) that admits only CURVE clients on an allow-list.
///
/// It binds a REP socket at `inproc://zeromq.zap.01` in the given context and answers libzmq's
/// authentication requests on a thread of its own: `200` with the client's Z85 public key as
/// user id (read it with ``Socket/receiveMultipart(dontWait:metadata:)`` and `"User-Id"`), `400`
/// for any other key or mechanism. A domain given its own list (``setAllowedClientKeys(_:domain:)``)
/// admits only the keys on both lists, e.g. a subscribe-only socket with a ZAP domain of its own.
/// With `allowNull` it also admits NULL-mechanism clients of sockets that have a ZAP domain (user id
/// empty), and with a ``ConnectionLimit`` it refuses any client for now (`300`, the client retries)
/// while more than the limit of connections are open on the monitored sockets. Create it before any CURVE server socket accepts clients:
/// without a handler libzmq lets every CURVE client in.
/// ```swift
/// let auth = try ZAPAuthenticator(context: context, allowedClientKeys: [client.publicKey])
/// defer { auth.stop() }
/// ```
public final class ZAPAuthenticator: Sendable {
    /// The ZAP endpoint libzmq sends requests to; one handler per context.
    public static let endpoint = "inproc://zeromq.zap.01"

    private let core: Core
    private let thread: Mutex<IOThread?>

    /// Binds the handler and starts its thread.
    ///
    /// - Parameters:
    ///   - context: the context whose CURVE server sockets it authenticates.
    ///   - allowedClientKeys: client public keys, 40 characters of Z85 each.
    ///   - domainKeys: for a ZAP domain named here, only the keys of both lists are admitted.
    ///   - allowNull: admit NULL-mechanism clients (of sockets given a ZAP domain), with an empty user id.
    ///   - connectionLimit: refuse every client while more connections are open than it allows.
    /// - Throws: ``ZMQError/addressInUse`` if the context already has a handler, or another ``ZMQError``.
    public init(
        context: Context, allowedClientKeys: some Sequence<String> = [], domainKeys: [String: Set<String>] = [:],
        allowNull: Bool = false, connectionLimit: ConnectionLimit? = nil
    ) throws(ZMQError) {
        let socket = try Socket(context, type: .rep)
        try socket.bind(Self.endpoint)
        var monitors: [MonitorSocket] = []
        for endpoint in connectionLimit?.monitors ?? [] {
            let pair = try Socket(context, type: .pair)
            try pair.connect(endpoint)
            monitors.append(MonitorSocket(pair))
        }
        let core = try Core(
            allowed: Set(allowedClientKeys), domains: domainKeys, allowNull: allowNull,
            maxConnections: connectionLimit?.maxConnections)
        let handoff = SocketHandoff(socket)
        let monitorHandoff = MonitorHandoff(monitors)
        self.core = core
        self.thread = Mutex(
            try IOThread {
                guard let socket = handoff.take() else { return }
                core.run(socket, monitors: monitorHandoff.take())
            })
    }

    /// A cap on the connections of some sockets, counted from their monitors.
    public struct ConnectionLimit: Sendable {
        /// The `inproc://` endpoints of the sockets' monitors (``Socket/monitor(_:events:)`` with
        /// `[.accepted, .disconnected]`), set up before the handler is created.
        public var monitors: [String]
        /// The most connections open at once over all those sockets.
        public var maxConnections: Int

        public init(monitors: [String], maxConnections: Int) {
            self.monitors = monitors
            self.maxConnections = maxConnections
        }
    }

    /// The events of the first monitored socket read since the last call, oldest first: a socket has one
    /// monitor, so whoever else needs its connection events (the broker's list of gone clients) takes
    /// them from here.
    public func takeFirstMonitorEvents() -> [SocketEvent] {
        core.forwarded.withLock { events in
            defer { events.removeAll(keepingCapacity: true) }
            return events
        }
    }

    /// How many connections the monitored sockets have open, as the handler last counted them.
    public var openConnections: Int {
        core.open.withLock { $0 }
    }

    deinit {
        stop()
    }

    /// The client public keys admitted now.
    public var allowedClientKeys: Set<String> {
        core.allowed.withLock { $0 }
    }

    /// Admits a client key from the next handshake on; existing connections are unaffected.
    public func allow(_ publicKey: String) {
        _ = core.allowed.withLock { $0.insert(publicKey) }
    }

    /// Refuses a client key from the next handshake on; existing connections are unaffected.
    public func revoke(_ publicKey: String) {
        _ = core.allowed.withLock { $0.remove(publicKey) }
    }

    /// Replaces the whole allow-list.
    public func setAllowedClientKeys(_ keys: some Sequence<String>) {
        let keys = Set(keys)
        core.allowed.withLock { $0 = keys }
    }

    /// Restricts a ZAP domain to the keys of both this list and the allow-list; `nil` lifts the restriction.
    /// Existing connections are unaffected.
    public func setAllowedClientKeys(_ keys: Set<String>?, domain: String) {
        core.domains.withLock { $0[domain] = keys }
    }

    /// Stops the handler and waits for its thread to close the socket. Idempotent.
    ///
    /// Afterwards libzmq lets CURVE clients in again unless the server sockets are closed too.
    public func stop() {
        guard let thread = self.thread.withLock({ $0.take() }) else { return }
        core.stopping.withLock { $0 = true }
        core.wake.signal()
        thread.join()
    }

    private final class Core: Sendable {
        let allowed: Mutex<Set<String>>
        let domains: Mutex<[String: Set<String>]>
        let allowNull: Bool
        let maxConnections: Int?
        let open = Mutex(0)
        /// The first monitor's events, until ``ZAPAuthenticator/takeFirstMonitorEvents()`` takes them.
        let forwarded = Mutex<[SocketEvent]>([])
        let stopping = Mutex(false)
        let wake: WakeSignal

        init(allowed: Set<String>, domains: [String: Set<String>], allowNull: Bool, maxConnections: Int?)
            throws(ZMQError)
        {
            self.allowed = Mutex(allowed)
            self.domains = Mutex(domains)
            self.allowNull = allowNull
            self.maxConnections = maxConnections
            self.wake = try WakeSignal()
        }

        func run(_ socket: consuming Socket, monitors: [MonitorSocket]) {
            var poller = Poller()
            poller.add(socket)
            poller.add(fileDescriptor: wake.fileDescriptor)
            for monitor in monitors { poller.add(monitor.socket) }
            while !stopping.withLock({ $0 }) {
                do {
                    try poller.poll(timeout: nil)
                    wake.drain()
                    // Count first: a client's accept is reported before its ZAP request.
                    try count(monitors)
                    while let request = try socket.receiveMultipart(dontWait: true) {
                        try socket.send(reply(to: request))
                    }
                } catch .interrupted {
                    continue
                } catch {
                    break  // contextTerminated: the context is going away.
                }
            }
            socket.close()
        }

        private func count(_ monitors: [MonitorSocket]) throws(ZMQError) {
            for (index, monitor) in monitors.enumerated() {
                while let frames = try monitor.socket.receiveMultipart(dontWait: true) {
                    guard let event = SocketEvent(frames: frames) else { continue }
                    if index == 0 { forwarded.withLock { $0.append(event) } }
                    if event.event == .accepted { open.withLock { $0 += 1 } }
                    if event.event == .disconnected { open.withLock { $0 = max(0, $0 - 1) } }
                }
            }
        }

        /// RFC 27: version, request id, domain, address, identity, mechanism, credentials…
        func reply(to request: [[UInt8]]) -> [[UInt8]] {
            let version = Array("1.0".utf8)
            let requestId = request.count > 1 ? request[1] : []
            func answer(_ status: String, _ text: String, userId: String = "") -> [[UInt8]] {
                [version, requestId, Array(status.utf8), Array(text.utf8), Array(userId.utf8), []]
            }
            guard request.count >= 6, request[0] == version else {
                return answer("500", "Malformed ZAP request")
            }
            if let maxConnections, open.withLock({ $0 }) > maxConnections {
                // 300, a temporary failure: libzmq closes the connection without an ERROR command (a NULL
                // one when its handshake times out), and the client reconnects later by itself.
                return answer("300", "Too many connections")
            }
            if allowNull && request[5] == Array("NULL".utf8) {
                return answer("200", "OK")
            }
            guard request.count >= 7, request[5] == Array("CURVE".utf8), let key = z85Encode(request[6]) else {
                return answer("400", "Only CURVE clients are admitted")
            }
            guard allowed.withLock({ $0.contains(key) }) else {
                return answer("400", "Unknown client key")
            }
            let domain = String(decoding: request[2], as: UTF8.self)
            guard domains.withLock({ $0[domain]?.contains(key) ?? true }) else {
                return answer("400", "Client key not admitted to domain \(domain)")
            }
            return answer("200", "OK", userId: key)
        }
    }
}

/// A monitor's PAIR socket, in a class so that a list of them can be handed to the handler's thread.
final class MonitorSocket {
    let socket: Socket

    init(_ socket: consuming Socket) {
        self.socket = socket
    }
}

/// Moves the monitor sockets to the handler's thread once.
final class MonitorHandoff: @unchecked Sendable {
    // @unchecked Sendable: the sockets are taken once, by the handler's thread, and used only there.
    private var monitors: [MonitorSocket]?

    init(_ monitors: [MonitorSocket]) {
        self.monitors = monitors
    }

    func take() -> [MonitorSocket] {
        defer { monitors = nil }
        return monitors ?? []
    }
}
