internal import CZeroMQ

/// A ZeroMQ socket with exactly one owner.
///
/// `~Copyable`: libzmq sockets are not thread safe, so the type system keeps a single owner, and
/// the socket is closed when that owner lets go of it (``close()`` or `deinit`).
///
/// `@unchecked Sendable`: libzmq allows a socket to migrate from one thread to another "after a
/// full memory barrier" (zmq(7), "Thread safety"). Moving a `~Copyable` value into another thread
/// or task can only happen through a `sending`/`Sendable` hand-off (thread creation, a task, a
/// `Mutex`), each of which synchronises (a full barrier), and after the move the old owner can no
/// longer touch it. Concurrent use is impossible without `unsafe` code because only one owner
/// exists and methods borrow it.
///
/// Options are set and read with ``set(_:_:)`` and ``get(_:)`` and a typed ``SocketOption``:
/// ```swift
/// let socket = try Socket(context, type: .router)
/// try socket.set(.routerMandatory, true)
/// try socket.bind("tcp://127.0.0.1:*")
/// ```
public struct Socket: ~Copyable, @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    /// One heap `zmq_msg_t`, reused by every receive, so receiving allocates only the Swift arrays.
    /// A `zmq_msg_t` must never be copied by value: it stays behind this pointer.
    let scratch: UnsafeMutablePointer<zmq_msg_t>
    /// Keeps the context alive while the socket exists: `zmq_ctx_term` would wait for us anyway.
    let context: Context

    /// The kind this socket was created with.
    public let type: SocketType

    /// Creates a socket with a linger of zero.
    ///
    /// A linger of zero means closing the socket discards unsent messages, so ``Context/terminate()``
    /// never waits on an unreachable peer. Set ``SocketOption/linger`` to keep them.
    /// The corresponding libzmq call is `zmq_socket`.
    /// - Parameters:
    ///   - context: the context the socket lives in; the socket keeps it alive.
    ///   - type: the messaging pattern.
    /// - Throws: ``ZMQError``, e.g. ``ZMQError/contextTerminated`` or ``ZMQError/tooManyOpenFiles``.
    public init(_ context: Context, type: SocketType) throws(ZMQError) {
        let handle = try context.withLiveHandle { zmq_socket($0, type.rawValue) }
        var linger: Int32 = 0
        let rc = zmq_setsockopt(handle, ZMQ_LINGER, &linger, MemoryLayout<Int32>.size)
        if rc == -1 {
            let error = ZMQError(code: zmq_errno())
            zmq_close(handle)
            throw error
        }
        let scratch = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        zmq_msg_init(scratch)
        self.handle = handle
        self.scratch = scratch
        self.context = context
        self.type = type
    }

    /// Closes the socket now. Messages still queued are kept for ``SocketOption/linger``.
    ///
    /// The corresponding libzmq call is `zmq_close`.
    public consuming func close() {
        // Consuming `self` ends its lifetime here, and `deinit` does the work.
    }

    deinit {
        zmq_close(handle)
        zmq_msg_close(scratch)
        scratch.deallocate()
    }

    /// Accepts connections on an endpoint, e.g. `tcp://127.0.0.1:*` (any free port), `ipc:///tmp/x`, `inproc://name`.
    ///
    /// The corresponding libzmq call is `zmq_bind`.
    /// - Parameter endpoint: `transport://address`.
    /// - Throws: ``ZMQError``, e.g. ``ZMQError/addressInUse``, ``ZMQError/protocolNotSupported``,
    ///   ``ZMQError/invalidArgument``.
    public func bind(_ endpoint: String) throws(ZMQError) {
        try check(zmq_bind(handle, endpoint))
    }

    /// Connects to an endpoint; the connection is made (and remade) in the background.
    ///
    /// The corresponding libzmq call is `zmq_connect`.
    /// - Parameter endpoint: `transport://address`.
    /// - Throws: ``ZMQError``, e.g. ``ZMQError/protocolNotSupported`` or ``ZMQError/invalidArgument``.
    public func connect(_ endpoint: String) throws(ZMQError) {
        try check(zmq_connect(handle, endpoint))
    }

    /// Stops accepting on an endpoint that ``bind(_:)`` set up (use ``lastEndpoint`` for a wildcard port).
    ///
    /// The corresponding libzmq call is `zmq_unbind`.
    /// - Throws: ``ZMQError/noEntry`` if the endpoint is not bound.
    public func unbind(_ endpoint: String) throws(ZMQError) {
        try check(zmq_unbind(handle, endpoint))
    }

    /// Drops a connection that ``connect(_:)`` set up.
    ///
    /// The corresponding libzmq call is `zmq_disconnect`.
    /// - Throws: ``ZMQError/noEntry`` if the endpoint is not connected.
    public func disconnect(_ endpoint: String) throws(ZMQError) {
        try check(zmq_disconnect(handle, endpoint))
    }

    /// The endpoint of the last ``bind(_:)`` or ``connect(_:)``, with a wildcard port resolved
    /// (`tcp://127.0.0.1:41234`).
    ///
    /// The corresponding libzmq call is `zmq_getsockopt(ZMQ_LAST_ENDPOINT)`.
    public var lastEndpoint: String {
        get throws(ZMQError) { try getString(ZMQ_LAST_ENDPOINT, capacity: 1024) }
    }

    /// Whether at least one message can be received without blocking.
    ///
    /// The corresponding libzmq call is `zmq_getsockopt(ZMQ_EVENTS)` (`ZMQ_POLLIN`).
    public var hasPendingInput: Bool {
        get throws(ZMQError) { try getInt32(ZMQ_EVENTS) & Int32(ZMQ_POLLIN) != 0 }
    }

    /// Whether at least one message can be sent without blocking.
    ///
    /// The corresponding libzmq call is `zmq_getsockopt(ZMQ_EVENTS)` (`ZMQ_POLLOUT`).
    public var canSend: Bool {
        get throws(ZMQError) { try getInt32(ZMQ_EVENTS) & Int32(ZMQ_POLLOUT) != 0 }
    }

    /// Subscribes a SUB socket to every message whose first frame starts with `prefix` (empty: everything).
    ///
    /// The corresponding libzmq call is `zmq_setsockopt(ZMQ_SUBSCRIBE)`.
    public func subscribe(_ prefix: [UInt8]) throws(ZMQError) {
        try setBytes(ZMQ_SUBSCRIBE, prefix)
    }

    /// Subscribes to the UTF-8 bytes of `prefix`.
    ///
    /// The corresponding libzmq call is `zmq_setsockopt(ZMQ_SUBSCRIBE)`.
    public func subscribe(_ prefix: String) throws(ZMQError) {
        try setBytes(ZMQ_SUBSCRIBE, Array(prefix.utf8))
    }

    /// Removes one earlier ``subscribe(_:)-([UInt8])`` of exactly this prefix.
    ///
    /// The corresponding libzmq call is `zmq_setsockopt(ZMQ_UNSUBSCRIBE)`.
    public func unsubscribe(_ prefix: [UInt8]) throws(ZMQError) {
        try setBytes(ZMQ_UNSUBSCRIBE, prefix)
    }

    /// Removes one earlier subscription to the UTF-8 bytes of `prefix`.
    ///
    /// The corresponding libzmq call is `zmq_setsockopt(ZMQ_UNSUBSCRIBE)`.
    public func unsubscribe(_ prefix: String) throws(ZMQError) {
        try setBytes(ZMQ_UNSUBSCRIBE, Array(prefix.utf8))
    }
}

// MARK: - Raw option access, internal only

extension Socket {
    func setInt32(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var value = value
        try check(zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size))
    }

    func setInt64(_ option: Int32, _ value: Int64) throws(ZMQError) {
        var value = value
        try check(zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size))
    }

    func setBytes(_ option: Int32, _ value: [UInt8]) throws(ZMQError) {
        let rc = value.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        try check(rc)
    }

    func getInt32(_ option: Int32) throws(ZMQError) -> Int32 {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        try check(zmq_getsockopt(handle, option, &value, &size))
        return value
    }

    func getInt64(_ option: Int32) throws(ZMQError) -> Int64 {
        var value: Int64 = 0
        var size = MemoryLayout<Int64>.size
        try check(zmq_getsockopt(handle, option, &value, &size))
        return value
    }

    func getBytes(_ option: Int32, capacity: Int) throws(ZMQError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: capacity)
        var size = capacity
        let rc = buffer.withUnsafeMutableBytes { zmq_getsockopt(handle, option, $0.baseAddress, &size) }
        try check(rc)
        buffer.removeSubrange(size...)
        return buffer
    }

    /// Reads a NUL-terminated string option (the returned size includes the NUL).
    func getString(_ option: Int32, capacity: Int) throws(ZMQError) -> String {
        var bytes = try getBytes(option, capacity: capacity)
        if let nul = bytes.firstIndex(of: 0) { bytes.removeSubrange(nul...) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
