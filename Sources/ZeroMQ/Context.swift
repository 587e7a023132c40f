internal import CZeroMQ
import Synchronization

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// A libzmq context: the I/O threads and the `inproc://` namespace that sockets share.
///
/// Every ``Socket`` keeps its context alive, so the context is terminated only after its last
/// socket is closed (or explicitly, with ``terminate()``).
///
/// `@unchecked Sendable`: libzmq documents contexts as thread safe ("A ØMQ context is thread safe
/// and may be shared among as many application threads as necessary", zmq_ctx_new(3)); the only
/// Swift state is the `terminated` flag, which is behind a `Mutex`.
public final class Context: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private let terminated = Mutex(false)

    /// Creates a context with one I/O thread.
    ///
    /// The corresponding libzmq call is `zmq_ctx_new`.
    /// - Throws: ``ZMQError`` if libzmq cannot create a context (e.g. too many open files).
    public convenience init() throws(ZMQError) {
        try self.init(ioThreads: 1)
    }

    /// Creates a context with the given number of I/O threads.
    ///
    /// The corresponding libzmq calls are `zmq_ctx_new` and `zmq_ctx_set(ZMQ_IO_THREADS)`.
    /// - Parameter ioThreads: threads libzmq uses for network I/O; one handles about a gigabyte a second.
    /// - Throws: ``ZMQError`` if the context cannot be created or the thread count is rejected.
    public init(ioThreads: Int) throws(ZMQError) {
        guard let handle = zmq_ctx_new() else { throw ZMQError(code: zmq_errno()) }
        if ioThreads != 1 {
            let rc = zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(clamping: ioThreads))
            if rc == -1 {
                let error = ZMQError(code: zmq_errno())
                zmq_ctx_term(handle)
                throw error
            }
        }
        self.handle = handle
    }

    /// Makes every blocking call on this context's sockets, in any thread, return
    /// ``ZMQError/contextTerminated``, and every later call on them fail the same way.
    ///
    /// Sockets stay open: their owners see `contextTerminated` and close them. Safe to call more than once.
    /// The corresponding libzmq call is `zmq_ctx_shutdown`.
    public func shutdown() {
        terminated.withLock { done in
            if !done { zmq_ctx_shutdown(handle) }
        }
    }

    /// Runs `body` with the handle unless ``terminate()`` has begun; the lock makes a socket
    /// either exist before the shutdown (so `zmq_ctx_term` waits for it) or never touch a freed context.
    func withLiveHandle<R>(_ body: (UnsafeMutableRawPointer) -> R?) throws(ZMQError) -> R {
        let result: Result<R, ZMQError> = terminated.withLock { done in
            if done { return .failure(.contextTerminated) }
            guard let value = body(handle) else { return .failure(ZMQError(code: zmq_errno())) }
            return .success(value)
        }
        return try result.get()
    }

    /// Shuts the context down and waits until every socket of it is closed, then frees it.
    ///
    /// Blocks: call it from a thread, not from a task. Sockets made by ``Socket/init(_:type:)``
    /// have a linger of zero, so closing them never waits on unsent messages. Idempotent; also
    /// done by `deinit`. The corresponding libzmq call is `zmq_ctx_term`.
    public func terminate() {
        let first = terminated.withLock { done in
            defer { done = true }
            // Shut down inside the lock, so no socket is created between this and `zmq_ctx_term`.
            if !done { zmq_ctx_shutdown(handle) }
            return !done
        }
        guard first else { return }
        // EINTR only means a signal arrived while waiting for sockets to close: wait again.
        while zmq_ctx_term(handle) == -1 && zmq_errno() == EINTR {}
    }

    deinit {
        terminate()
    }
}
