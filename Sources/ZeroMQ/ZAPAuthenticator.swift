import Synchronization

/// A ZAP handler (ZeroMQ RFC 27) that admits only CURVE clients on an allow-list.
///
/// It binds a REP socket at `inproc://zeromq.zap.01` in the given context and answers libzmq's
/// authentication requests on a thread of its own: `200` with the client's Z85 public key as
/// user id (read it with ``Socket/receiveMultipart(dontWait:metadata:)`` and `"User-Id"`), `400`
/// for any other key or mechanism. A domain given its own list (``setAllowedClientKeys(_:domain:)``)
/// admits only the keys on both lists, e.g. a subscribe-only socket with a ZAP domain of its own.
/// Create it before any CURVE server socket accepts clients:
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
    /// - Throws: ``ZMQError/addressInUse`` if the context already has a handler, or another ``ZMQError``.
    public init(
        context: Context, allowedClientKeys: some Sequence<String> = [], domainKeys: [String: Set<String>] = [:]
    ) throws(ZMQError) {
        let socket = try Socket(context, type: .rep)
        try socket.bind(Self.endpoint)
        let core = try Core(allowed: Set(allowedClientKeys), domains: domainKeys)
        let handoff = SocketHandoff(socket)
        self.core = core
        self.thread = Mutex(
            try IOThread {
                guard let socket = handoff.take() else { return }
                core.run(socket)
            })
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
        let stopping = Mutex(false)
        let wake: WakeSignal

        init(allowed: Set<String>, domains: [String: Set<String>]) throws(ZMQError) {
            self.allowed = Mutex(allowed)
            self.domains = Mutex(domains)
            self.wake = try WakeSignal()
        }

        func run(_ socket: consuming Socket) {
            var poller = Poller()
            let socketIndex = poller.add(socket)
            poller.add(fileDescriptor: wake.fileDescriptor)
            while !stopping.withLock({ $0 }) {
                do {
                    try poller.poll(timeout: nil)
                    wake.drain()
                    guard poller.events(at: socketIndex).contains(.readable),
                        let request = try socket.receiveMultipart(dontWait: true)
                    else { continue }
                    try socket.send(reply(to: request))
                } catch .interrupted {
                    continue
                } catch {
                    break  // contextTerminated: the context is going away.
                }
            }
            socket.close()
        }

        /// RFC 27: version, request id, domain, address, identity, mechanism, credentials…
        func reply(to request: [[UInt8]]) -> [[UInt8]] {
            let version = Array("1.0".utf8)
            let requestId = request.count > 1 ? request[1] : []
            func answer(_ status: String, _ text: String, userId: String = "") -> [[UInt8]] {
                [version, requestId, Array(status.utf8), Array(text.utf8), Array(userId.utf8), []]
            }
            guard request.count >= 7, request[0] == version else {
                return answer("500", "Malformed ZAP request")
            }
            guard request[5] == Array("CURVE".utf8), let key = z85Encode(request[6]) else {
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
