internal import CZeroMQ

/// Connection events a socket can report to a monitor (`ZMQ_EVENT_*`).
public struct SocketEvents: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// A listening socket accepted a connection (`ZMQ_EVENT_ACCEPTED`).
    public static let accepted = SocketEvents(rawValue: UInt16(ZMQ_EVENT_ACCEPTED))
    /// A connection closed, also one refused in its handshake (`ZMQ_EVENT_DISCONNECTED`).
    public static let disconnected = SocketEvents(rawValue: UInt16(ZMQ_EVENT_DISCONNECTED))
}

/// One event read from a monitor socket: which event, its value (a file descriptor for accepts and
/// disconnects), and the endpoint.
public struct SocketEvent: Sendable, Hashable {
    public var event: SocketEvents
    public var value: UInt32
    public var endpoint: String

    /// Reads the two frames libzmq sends a monitor: 2 bytes of event and 4 of value, then the endpoint.
    public init?(frames: [[UInt8]]) {
        guard frames.count == 2, frames[0].count == 6 else { return nil }
        let head = frames[0]
        event = SocketEvents(rawValue: UInt16(head[0]) | UInt16(head[1]) << 8)
        value = UInt32(head[2]) | UInt32(head[3]) << 8 | UInt32(head[4]) << 16 | UInt32(head[5]) << 24
        endpoint = String(decoding: frames[1], as: UTF8.self)
    }
}

extension Socket {
    /// Reports this socket's connection events to a PAIR socket that connects to `endpoint`.
    ///
    /// Read them with a `.pair` socket connected to `endpoint` and ``SocketEvent/init(frames:)``.
    /// The corresponding libzmq call is `zmq_socket_monitor`.
    /// - Parameters:
    ///   - endpoint: an `inproc://` endpoint libzmq binds for the monitor.
    ///   - events: which events to report.
    /// - Throws: ``ZMQError``.
    public func monitor(_ endpoint: String, events: SocketEvents) throws(ZMQError) {
        try check(zmq_socket_monitor(handle, endpoint, Int32(events.rawValue)))
    }

    /// The file descriptor of the connection the last frame received came over (`ZMQ_SRCFD`, which libzmq
    /// still answers though it marks it deprecated); nil when there is none, as over `inproc`.
    ///
    /// With a monitor's ``SocketEvents/disconnected`` events it tells which peers have gone.
    public func lastFrameDescriptor() -> Int32? {
        let fd = zmq_msg_get(scratch, ZMQ_SRCFD)
        return fd < 0 ? nil : fd
    }
}
