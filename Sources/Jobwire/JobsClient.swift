public import Logging
import Synchronization
internal import ZeroMQ

/// An async client for every command of the broker (PROTOCOL.md §4) over one DEALER connection.
///
/// The commands endpoint may be a list of brokers (`tcp://a:7401,tcp://b:7401`: an active one and its
/// standbys). The DEALER connects to each and sends only over connections that are complete
/// (`ZMQ_IMMEDIATE`), so requests go to the broker that is bound, never into the queue of one that is not;
/// when another takes over, requests wait in memory until its connection is up.
///
/// Requests are pipelined: many may be in flight at once (a `jobs.claim` that waits a minute does not hold
/// up a `jobs.get`), and replies are matched to requests by id. libzmq reconnects on its own with backoff
/// (``Configuration/reconnectInterval`` up to ``Configuration/reconnectIntervalMax``); a request whose reply
/// was lost times out, and calls that are safe to repeat (reads, and creates, which carry an
/// `idempotencyKey`) are retried.
/// ```swift
/// let client = try JobsClient(commands: "tcp://127.0.0.1:7401")
/// let job = try await client.create(type: "workbook", operation: "export", source: "us_wb_1")
/// ```
public final class JobsClient: Sendable {
    /// How a client connects and how long it waits.
    public struct Configuration: Sendable {
        /// How long a request waits for its reply (a `jobs.claim` waits this much longer than its `wait`).
        public var requestTimeout: Duration
        /// The `listenerId` sent with acks, claims, updates, completes, fails, releases and splits; `nil`
        /// acts as an operator.
        public var listenerId: String?
        /// The `instanceId` sent with the same calls: which running copy of the listener this client is. The
        /// broker fences leases by the pair (`listenerId`, `instanceId`), so copies of one listener sharing a
        /// name never both run a job. By default a new one per configuration, `<host>-<pid>-<random>`
        /// (``JobsClient/makeInstanceId()``); `nil` sends none, for callers that act on one lease from
        /// several processes (the CLI).
        public var instanceId: String?
        /// How many times a call that is safe to repeat is sent before its timeout is thrown.
        public var attempts: Int
        /// The first reconnect delay after the connection drops.
        public var reconnectInterval: Duration
        /// The longest reconnect delay; delays double up to it.
        public var reconnectIntervalMax: Duration
        /// CURVE keys, when the broker requires them.
        public var curve: CurveConfiguration?

        public init(
            requestTimeout: Duration = .seconds(10), listenerId: String? = nil,
            instanceId: String? = JobsClient.makeInstanceId(), attempts: Int = 3,
            reconnectInterval: Duration = .milliseconds(100), reconnectIntervalMax: Duration = .seconds(1),
            curve: CurveConfiguration? = nil
        ) {
            self.requestTimeout = requestTimeout
            self.listenerId = listenerId
            self.instanceId = instanceId
            self.attempts = attempts
            self.reconnectInterval = reconnectInterval
            self.reconnectIntervalMax = reconnectIntervalMax
            self.curve = curve
        }
    }

    /// CURVE keys of a client, as Z85 strings of 40 characters.
    public struct CurveConfiguration: Sendable {
        /// The broker's public key.
        public var serverPublicKey: String
        /// This client's public key (on the broker's allow-list).
        public var publicKey: String
        /// This client's secret key.
        public var secretKey: String

        public init(serverPublicKey: String, publicKey: String, secretKey: String) {
            self.serverPublicKey = serverPublicKey
            self.publicKey = publicKey
            self.secretKey = secretKey
        }
    }

    /// The commands endpoint, or the comma-separated list of them, as given.
    public let endpoint: String
    /// How this client connects and waits.
    public let configuration: Configuration
    let logger: Logger
    private let socket: AsyncSocket
    private let pending: Pending
    private let reader: Task<Void, Never>

    /// Connects (lazily: libzmq connects in the background and requests wait in memory meanwhile).
    /// - Parameters:
    ///   - commands: the broker's commands endpoint, or a comma-separated list of the brokers that may serve
    ///     (``Endpoints/list(_:)``); by default `JOBWIRE_COMMANDS`, else `tcp://127.0.0.1:7401`.
    ///   - configuration: timeouts, listener id, reconnect and CURVE.
    ///   - logger: where the client logs retries and dropped replies.
    /// - Throws: ``EndpointError`` naming a malformed endpoint of the list, ``ZMQError`` when libzmq refuses
    ///   one or the socket cannot be made.
    public init(
        commands: String = Endpoints.fromEnvironment().commands, configuration: Configuration = .init(),
        logger: Logger = Logger(label: "jobwire.client")
    ) throws {
        self.endpoint = commands
        self.configuration = configuration
        self.logger = logger
        let endpoints = try Endpoints.list(commands)
        let socket = try AsyncSocket(context: SharedContext.context, type: .dealer) { socket in
            try socket.set(.linger, .zero)
            try socket.set(.reconnectInterval, configuration.reconnectInterval)
            try socket.set(.reconnectIntervalMax, configuration.reconnectIntervalMax)
            // Without it libzmq gives each endpoint a queue from the start and deals requests round-robin
            // into them, also into the queue of a standby that binds nothing: those would wait for ever.
            try socket.set(.immediate, true)
            if let curve = configuration.curve {
                try socket.set(.curveServerKey, curve.serverPublicKey)
                try socket.set(.curvePublicKey, curve.publicKey)
                try socket.set(.curveSecretKey, curve.secretKey)
            }
            for endpoint in endpoints { try socket.connect(endpoint) }
        }
        self.socket = socket
        let pending = Pending()
        self.pending = pending
        reader = Task { [logger] in
            do {
                for try await frames in socket.messages {
                    guard let body = frames.last, let response = try? RPCResponse.decode(body),
                        let id = response.id.intValue
                    else {
                        logger.debug("dropped a reply that is not JSON-RPC")
                        continue
                    }
                    pending.deliver(id: id, response.result)
                }
            } catch {
                logger.debug("commands socket ended", metadata: ["error": "\(error)"])
            }
            pending.closeAll(JobwireError(.closed, "the client for \(commands) was closed"))
        }
    }

    deinit {
        reader.cancel()
    }

    /// Closes the connection; calls in flight and later calls throw ``JobwireError/Code/closed``.
    public func close() async {
        pending.closeAll(JobwireError(.closed, "the client for \(endpoint) was closed"))
        await socket.close()
    }

    /// Sends every request still waiting for its reply again, with the same id: for after the broker
    /// restarted, or another broker of the list took over, when the replies to them are lost with the old
    /// process.
    ///
    /// Each verb is safe to repeat: a create carries its idempotency key, an ack or update from the owner
    /// applies again, and a complete, fail or cancel the old process had already written gets
    /// `invalid_transition`, which ``complete(jobId:outcome:info:attempt:)``, ``fail(jobId:outcome:info:attempt:)``
    /// and ``cancel(jobId:info:)`` answer with the job when it ended as asked.
    /// - Parameter methods: methods not to send again (a claim is re-sent by its own loop).
    public func resendPending(except methods: Set<String> = ["jobs.claim"]) {
        for body in pending.waitingBodies(except: methods) { socket.send([[], body]) }
    }

    /// Sends any JSON-RPC request and returns its result.
    /// - Parameters:
    ///   - method: e.g. `jobs.get`.
    ///   - params: the request's `params` object.
    ///   - timeout: how long to wait for the reply; the configuration's ``Configuration/requestTimeout``
    ///     when `nil`.
    ///   - retry: whether to send it again (with a new id) after a timeout; only for calls safe to repeat.
    /// - Returns: the `result` of the reply.
    /// - Throws: ``ProtocolError`` for an error reply, ``JobwireError`` when no reply comes.
    public func call(method: String, params: JSONObject = [:], timeout: Duration? = nil, retry: Bool = false)
        async throws -> JSONValue
    {
        try await call(method: method, params: params, timeout: timeout, retry: retry, orphan: nil)
    }

    /// `orphan` runs with a reply that arrives after its caller gave up (cancelled): a claim answered
    /// after a shutdown holds a job that must be released. `repeated` runs with the error answered to a
    /// request that was sent more than once (resent after a broker change, or retried): the first may have
    /// landed, and `repeated` may return the result it had; nil throws the error.
    func call(
        method: String, params: JSONObject, timeout: Duration?, retry: Bool,
        orphan: (@Sendable (Result<JSONValue, ProtocolError>) -> Void)?,
        repeated: (@Sendable (ProtocolError) async throws -> JSONValue?)? = nil
    ) async throws -> JSONValue {
        let timeout = timeout ?? configuration.requestTimeout
        let attempts = retry ? max(1, configuration.attempts) : 1
        var attempt = 1
        while true {
            do {
                let (result, resent) = try await send(method: method, params: params, timeout: timeout, orphan: orphan)
                switch result {
                case .success(let value):
                    return value
                case .failure(let error):
                    if resent || attempt > 1, let repeated, let value = try await repeated(error) { return value }
                    throw error
                }
            } catch let error as JobwireError where error.code != .closed && attempt < attempts {
                attempt += 1
                logger.debug(
                    "retrying after a timeout",
                    metadata: ["rpc.method": "\(method)", "rpc.attempt": "\(attempt)", "zmq.endpoint": "\(endpoint)"])
            }
        }
    }

    /// What ends one request's wait: its reply, or its timer.
    private enum Wait: Sendable {
        case reply(Result<JSONValue, ProtocolError>)
        case timedOut
        case timerCancelled
    }

    /// Sends one request and waits for its reply, racing it against its timeout in a task group of its own.
    /// - Returns: the reply, and whether the request was sent again (``resendPending(except:)``) meanwhile.
    private func send(
        method: String, params: JSONObject, timeout: Duration,
        orphan: (@Sendable (Result<JSONValue, ProtocolError>) -> Void)?
    ) async throws -> (Result<JSONValue, ProtocolError>, resent: Bool) {
        let pending = self.pending
        let socket = self.socket
        let id = pending.nextId()
        let body = RPCRequest(id: .int(id), method: method, params: params).bytes
        let endpoint = self.endpoint
        // A cancel or a timeout that raced the registration leaves a mark for it; the request is over here.
        defer { pending.settle(id: id) }
        return try await withThrowingTaskGroup(of: Wait.self) { group in
            group.addTask {
                let result: Result<JSONValue, ProtocolError> = try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { continuation in
                        switch pending.register(
                            id: id, continuation: continuation, orphan: orphan, method: method, body: body)
                        {
                        case .registered:
                            socket.send([[], body])
                        case .cancelled:
                            continuation.resume(throwing: CancellationError())
                        case .failed(let error):
                            continuation.resume(throwing: error)
                        case .closed:
                            continuation.resume(
                                throwing: JobwireError(.closed, "the client for \(endpoint) was closed"))
                        }
                    }
                } onCancel: {
                    pending.cancel(id: id)
                }
                return .reply(result)
            }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return .timerCancelled
                }
                return .timedOut
            }
            while let wait = try await group.next() {
                switch wait {
                case .reply(let result):
                    group.cancelAll()
                    return (result, pending.wasResent(id: id))
                case .timedOut:
                    // The reply's child then throws this error.
                    let error =
                        pending.hasEverReplied
                        ? JobwireError(.timeout, "no reply to \(method) from \(endpoint) within \(timeout)")
                        : JobwireError(.brokerUnreachable, "the broker at \(endpoint) does not answer (\(method))")
                    pending.fail(id: id, error)
                case .timerCancelled:
                    continue
                }
            }
            throw CancellationError()
        }
    }
}

/// One libzmq context for every client and listener of the process: a context costs an I/O thread.
enum SharedContext {
    // A failure here means the process cannot open file descriptors at all.
    static let context: Context = try! Context()
}

/// The requests waiting for replies, by id.
final class Pending: Sendable {
    enum Registration {
        case registered, cancelled, closed
        /// Its timeout passed before it was registered.
        case failed(JobwireError)
    }

    struct Waiter {
        var continuation: CheckedContinuation<Result<JSONValue, ProtocolError>, any Error>
        var orphan: (@Sendable (Result<JSONValue, ProtocolError>) -> Void)?
        /// The request as sent, to send again after a broker restart.
        var method: String = ""
        var body: [UInt8] = []
    }

    struct State: ~Copyable {
        var nextId: Int64 = 1
        var waiting: [Int64: Waiter] = [:]
        /// Ids cancelled before they were registered.
        var cancelled: Set<Int64> = []
        /// Ids whose timeout passed before they were registered.
        var failed: [Int64: JobwireError] = [:]
        /// Ids of waiting requests that were sent again.
        var resent: Set<Int64> = []
        /// Ids whose caller gave up but whose late reply still matters.
        var orphans: [Int64: @Sendable (Result<JSONValue, ProtocolError>) -> Void] = [:]
        var closed: JobwireError?
        var everReplied = false
    }

    private let state = Mutex(State())

    func nextId() -> Int64 {
        state.withLock { s in
            defer { s.nextId += 1 }
            return s.nextId
        }
    }

    var hasEverReplied: Bool { state.withLock { $0.everReplied } }

    func register(
        id: Int64, continuation: CheckedContinuation<Result<JSONValue, ProtocolError>, any Error>,
        orphan: (@Sendable (Result<JSONValue, ProtocolError>) -> Void)?, method: String, body: [UInt8]
    ) -> Registration {
        state.withLock { s in
            if s.closed != nil { return .closed }
            if s.cancelled.remove(id) != nil { return .cancelled }
            if let error = s.failed.removeValue(forKey: id) { return .failed(error) }
            s.waiting[id] = Waiter(continuation: continuation, orphan: orphan, method: method, body: body)
            return .registered
        }
    }

    /// The bodies of the requests still waiting, except the methods named, marked as sent again.
    func waitingBodies(except methods: Set<String>) -> [[UInt8]] {
        state.withLock { s in
            let again = s.waiting.sorted { $0.key < $1.key }.filter { !methods.contains($0.value.method) }
            s.resent.formUnion(again.map(\.key))
            return again.map(\.value.body)
        }
    }

    /// Whether the request was sent again while it waited.
    func wasResent(id: Int64) -> Bool {
        state.withLock { $0.resent.contains(id) }
    }

    func deliver(id: Int64, _ result: Result<JSONValue, ProtocolError>) {
        let (waiter, orphan) = state.withLock { s in
            s.everReplied = true
            return (s.waiting.removeValue(forKey: id), s.orphans.removeValue(forKey: id))
        }
        waiter?.continuation.resume(returning: result)
        orphan?(result)
    }

    func fail(id: Int64, _ error: JobwireError) {
        let waiter = state.withLock { s -> Waiter? in
            guard let waiter = s.waiting.removeValue(forKey: id) else {
                if !s.cancelled.contains(id) { s.failed[id] = error }
                return nil
            }
            return waiter
        }
        waiter?.continuation.resume(throwing: error)
    }

    /// Forgets the marks a cancel or a timeout left for a request that is over.
    func settle(id: Int64) {
        state.withLock { s in
            s.cancelled.remove(id)
            s.failed[id] = nil
            s.resent.remove(id)
        }
    }

    /// The marks left for requests (cancelled or timed out before they were registered), for the tests.
    var markCount: Int { state.withLock { $0.cancelled.count + $0.failed.count } }

    func cancel(id: Int64) {
        let waiter = state.withLock { s -> Waiter? in
            guard let waiter = s.waiting.removeValue(forKey: id) else {
                s.cancelled.insert(id)
                return nil
            }
            if let orphan = waiter.orphan { s.orphans[id] = orphan }
            return waiter
        }
        waiter?.continuation.resume(throwing: CancellationError())
    }

    func closeAll(_ error: JobwireError) {
        let waiters = state.withLock { s in
            if s.closed == nil { s.closed = error }
            defer { s.waiting = [:] }
            return s.waiting
        }
        for waiter in waiters.values { waiter.continuation.resume(throwing: error) }
    }
}
