import Synchronization

/// A socket driven by a dedicated thread, for async code: received messages arrive as an
/// `AsyncSequence`, and sends never block the caller.
///
/// No blocking libzmq call ever runs on Swift's cooperative pool: the thread loops on `zmq_poll`
/// over the socket and an `eventfd` that ``send(_:)``, ``withSocket(_:)`` and ``close()`` signal.
/// ```swift
/// let subscriber = try AsyncSocket(context: context, type: .sub) { socket in
///     try socket.subscribe("job:ready/")
///     try socket.connect("tcp://127.0.0.1:7400")
/// }
/// for try await frames in subscriber.messages { … }
/// ```
/// Buffers are unbounded on both sides: the consumer of ``messages`` must keep up, and messages
/// given to ``send(_:)`` wait in memory while the socket applies back-pressure (for a PUB or a
/// ROUTER libzmq drops instead, so nothing piles up).
public final class AsyncSocket: Sendable {
    /// Every received multipart message, in order. One consumer at a time.
    ///
    /// Finishes normally after ``close()``; finishes with ``ZMQError/contextTerminated`` when the
    /// context is shut down, or with the ``ZMQError`` of a failed receive.
    public let messages: AsyncThrowingStream<[[UInt8]], any Error>
    private let core: Core

    /// Creates the socket, lets `configure` bind, connect and set options, then starts its thread.
    ///
    /// - Parameters:
    ///   - context: the context of the socket.
    ///   - type: the messaging pattern.
    ///   - configure: runs on the calling thread before the I/O thread starts.
    /// - Throws: ``ZMQError`` from creating the socket or the thread, or what `configure` throws.
    public init(
        context: Context,
        type: SocketType,
        configure: (borrowing Socket) throws -> Void = { _ in }
    ) throws {
        let socket = try Socket(context, type: type)
        try configure(socket)
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: [[UInt8]].self)
        let core = try Core(continuation: continuation)
        let handoff = SocketHandoff(socket)
        let thread = try IOThread {
            guard let socket = handoff.take() else { return }
            core.run(socket)
        }
        thread.detach()
        self.messages = stream
        self.core = core
    }

    deinit {
        core.requestClose()
    }

    /// Queues a multipart message for the I/O thread to send; never blocks.
    ///
    /// Messages are sent in the order queued. A message the socket refuses (e.g.
    /// ``ZMQError/hostUnreachable`` on a ROUTER with ``SocketOption/routerMandatory``) is dropped.
    /// - Parameter frames: at least one frame.
    /// - Returns: `false` when the socket is closed and the message was dropped.
    @discardableResult
    public func send(_ frames: [[UInt8]]) -> Bool {
        core.enqueue(frames)
    }

    /// Runs `body` with the socket on the I/O thread, e.g. to subscribe at runtime.
    ///
    /// Calls that wait (a blocking receive, a long send timeout) stall the I/O thread; keep `body` short.
    /// - Parameter body: the work; it runs exactly once unless the socket is closed first.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws, or ``AsyncSocketError/closed``.
    public func withSocket<R: Sendable>(_ body: @escaping @Sendable (borrowing Socket) throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
            let job = Job(
                run: { socket in
                    do {
                        continuation.resume(returning: try body(socket))
                    } catch {
                        continuation.resume(throwing: error)
                    }
                },
                cancel: { continuation.resume(throwing: AsyncSocketError.closed) })
            if !core.enqueue(job) {
                continuation.resume(throwing: AsyncSocketError.closed)
            }
        }
    }

    /// Stops the thread, closes the socket (unsent messages are discarded unless ``SocketOption/linger``
    /// was raised) and finishes ``messages``. Returns once the socket is closed; idempotent.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            core.close(notifying: continuation)
        }
    }
}

/// Why an ``AsyncSocket`` call could not run.
public struct AsyncSocketError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kinds of failure.
    public struct Code: Sendable, Hashable {
        let rawValue: Int
        /// The socket was closed, or its thread ended, before the call could run.
        public static let closed = Code(rawValue: 1)
    }

    /// What went wrong.
    public let code: Code

    /// The socket was closed before the call could run.
    public static let closed = AsyncSocketError(code: .closed)

    public var description: String {
        switch code {
        case .closed: "AsyncSocketError: the socket is closed"
        default: "AsyncSocketError(\(code.rawValue))"
        }
    }
}

/// Work to run on the I/O thread with the socket.
private struct Job: Sendable {
    let run: @Sendable (borrowing Socket) -> Void
    let cancel: @Sendable () -> Void
}

/// Carries the socket to the I/O thread.
///
/// `@unchecked Sendable`: written once before the thread is created and taken once on it;
/// `pthread_create` orders the write before everything the new thread does.
final class SocketHandoff: @unchecked Sendable {
    private var socket: Socket?

    init(_ socket: consuming Socket) {
        self.socket = consume socket
    }

    func take() -> Socket? {
        socket.take()
    }
}

/// The state shared by the ``AsyncSocket`` handle and its I/O thread.
private final class Core: Sendable {
    struct State: ~Copyable {
        var outbox: [[[UInt8]]] = []
        var jobs: [Job] = []
        var closing = false
        var finished = false
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let wake: WakeSignal
    let state = Mutex(State())
    let continuation: AsyncThrowingStream<[[UInt8]], any Error>.Continuation

    init(continuation: AsyncThrowingStream<[[UInt8]], any Error>.Continuation) throws(ZMQError) {
        self.wake = try WakeSignal()
        self.continuation = continuation
    }

    func enqueue(_ frames: [[UInt8]]) -> Bool {
        let accepted = state.withLock { state in
            guard !state.closing else { return false }
            state.outbox.append(frames)
            return true
        }
        if accepted { wake.signal() }
        return accepted
    }

    func enqueue(_ job: Job) -> Bool {
        let accepted = state.withLock { state in
            guard !state.closing else { return false }
            state.jobs.append(job)
            return true
        }
        if accepted { wake.signal() }
        return accepted
    }

    func requestClose() {
        state.withLock { $0.closing = true }
        wake.signal()
    }

    func close(notifying waiter: CheckedContinuation<Void, Never>) {
        let finished = state.withLock { state in
            state.closing = true
            if !state.finished { state.closeWaiters.append(waiter) }
            return state.finished
        }
        if finished { waiter.resume() } else { wake.signal() }
    }

    /// The I/O thread's loop: runs until closed, or until the socket fails (e.g. context terminated).
    func run(_ socket: consuming Socket) {
        // PUB and PUSH cannot receive: libzmq fails the call with ENOTSUP.
        let receives = socket.type != .pub && socket.type != .push
        let idle: PollEvents = receives ? .readable : []
        var poller = Poller()
        let socketIndex = poller.add(socket, events: idle)
        poller.add(fileDescriptor: wake.fileDescriptor, events: .readable)
        var pending: [[[UInt8]]] = []
        var head = 0
        var failure: ZMQError?
        let receiveBatch = 256

        while true {
            // Drain before reading the state: a signal that lands after this is seen by the next poll.
            wake.drain()
            let (jobs, outbox, closing) = state.withLock { state in
                defer {
                    state.jobs.removeAll(keepingCapacity: true)
                    state.outbox.removeAll(keepingCapacity: true)
                }
                return (state.jobs, state.outbox, state.closing)
            }
            if closing { break }
            for job in jobs { job.run(socket) }
            pending.append(contentsOf: outbox)

            do throws(ZMQError) {
                while head < pending.count {
                    do {
                        guard try socket.send(pending[head], dontWait: true) else { break }
                    } catch .contextTerminated {
                        throw .contextTerminated
                    } catch {
                        // A refused message (no route, wrong state) is dropped, not fatal.
                    }
                    pending[head] = []
                    head += 1
                }
                if head == pending.count {
                    pending.removeAll(keepingCapacity: true)
                    head = 0
                } else if head > 1024 && head * 2 > pending.count {
                    pending.removeFirst(head)
                    head = 0
                }

                var received = 0
                while receives, received < receiveBatch, let frames = try socket.receiveMultipart(dontWait: true) {
                    continuation.yield(frames)
                    received += 1
                }
                // A full batch means more may be waiting: go round again without sleeping in poll.
                if received == receiveBatch { continue }

                poller.setEvents(head < pending.count ? idle.union(.writable) : idle, at: socketIndex)
                try poller.poll(timeout: nil)
            } catch .interrupted {
                continue
            } catch {
                failure = error
                break
            }
        }

        socket.close()
        let (jobs, waiters) = state.withLock { state in
            state.closing = true
            state.finished = true
            defer {
                state.jobs = []
                state.closeWaiters = []
                state.outbox = []
            }
            return (state.jobs, state.closeWaiters)
        }
        for job in jobs { job.cancel() }
        continuation.finish(throwing: failure)
        for waiter in waiters { waiter.resume() }
    }
}
