internal import CZeroMQ

/// What to wait for, or what happened, on one poll item.
public struct PollEvents: OptionSet, Sendable, Hashable {
    public let rawValue: Int16

    public init(rawValue: Int16) {
        self.rawValue = rawValue
    }

    /// A message can be received (`ZMQ_POLLIN`), or a file descriptor is readable.
    public static let readable = PollEvents(rawValue: Int16(ZMQ_POLLIN))
    /// A message can be sent (`ZMQ_POLLOUT`), or a file descriptor is writable.
    public static let writable = PollEvents(rawValue: Int16(ZMQ_POLLOUT))
    /// An error condition on a file descriptor (`ZMQ_POLLERR`); never set for ZeroMQ sockets.
    public static let error = PollEvents(rawValue: Int16(ZMQ_POLLERR))
}

/// Waits on ZeroMQ sockets and plain file descriptors (an `eventfd` or pipe lets another thread
/// wake the loop) at once.
///
/// The poller keeps each socket's handle, not the socket: every added ``Socket`` must outlive
/// every ``poll(timeout:)`` that includes it. Results live in the poller and are reused, so a
/// poll loop allocates nothing:
/// ```swift
/// var poller = Poller()
/// let work = poller.add(socket)
/// let wake = poller.add(fileDescriptor: eventFD)
/// while try poller.poll(timeout: nil) > 0 {
///     if poller.events(at: work).contains(.readable) { … }
/// }
/// ```
public struct Poller {
    private var items: [zmq_pollitem_t] = []

    /// An empty poller.
    public init() {}

    /// The number of items added.
    public var count: Int { items.count }

    /// Adds a socket.
    /// - Parameters:
    ///   - socket: must stay open while this poller polls it.
    ///   - events: what to wait for.
    /// - Returns: the item's index, for ``events(at:)`` and ``setEvents(_:at:)``.
    @discardableResult
    public mutating func add(_ socket: borrowing Socket, events: PollEvents = .readable) -> Int {
        items.append(zmq_pollitem_t(socket: socket.handle, fd: -1, events: events.rawValue, revents: 0))
        return items.count - 1
    }

    /// Adds a plain file descriptor (an eventfd, a pipe's read end, a TCP socket).
    /// - Parameters:
    ///   - fileDescriptor: must stay open while this poller polls it.
    ///   - events: what to wait for.
    /// - Returns: the item's index.
    @discardableResult
    public mutating func add(fileDescriptor: Int32, events: PollEvents = .readable) -> Int {
        items.append(zmq_pollitem_t(socket: nil, fd: fileDescriptor, events: events.rawValue, revents: 0))
        return items.count - 1
    }

    /// Changes what an item waits for, e.g. add `.writable` only while there is something to send.
    public mutating func setEvents(_ events: PollEvents, at index: Int) {
        items[index].events = events.rawValue
    }

    /// What happened to an item during the last ``poll(timeout:)``.
    public func events(at index: Int) -> PollEvents {
        PollEvents(rawValue: items[index].revents)
    }

    /// Waits until at least one item is ready or `timeout` passes.
    ///
    /// The corresponding libzmq call is `zmq_poll`.
    /// - Parameter timeout: how long to wait (millisecond resolution, rounded up); `nil` waits forever,
    ///   `.zero` only checks.
    /// - Returns: the number of ready items; 0 when the timeout passed.
    /// - Throws: ``ZMQError/contextTerminated`` when a polled socket's context shuts down,
    ///   ``ZMQError/interrupted`` on a signal, ``ZMQError/fault`` for a closed socket.
    @discardableResult
    public mutating func poll(timeout: Duration?) throws(ZMQError) -> Int {
        let ms: Int
        if let timeout {
            let (seconds, attoseconds) = timeout.components
            ms = max(0, Int(seconds) * 1000 + Int((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000))
        } else {
            ms = -1
        }
        let count = Int32(items.count)
        let rc = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, count, ms) }
        return Int(try check(rc))
    }
}
