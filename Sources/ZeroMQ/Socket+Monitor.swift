internal import CZeroMQ

/// Connection events a socket monitor reports (`ZMQ_EVENT_*`).
public struct MonitorEvents: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// A listening socket accepted a connection; the value is its file descriptor (`ZMQ_EVENT_ACCEPTED`).
    public static let accepted = MonitorEvents(rawValue: ZMQ_EVENT_ACCEPTED)
    /// A connection closed; the value is its file descriptor (`ZMQ_EVENT_DISCONNECTED`).
    public static let disconnected = MonitorEvents(rawValue: ZMQ_EVENT_DISCONNECTED)
}

/// One event read from a monitor's PAIR socket: its first frame is a 16-bit event and a 32-bit value,
/// in the machine's byte order; the second names the endpoint.
public struct MonitorEvent: Sendable {
    public var event: MonitorEvents
    public var value: Int32

    /// Reads an event message; nil when the frames are not one.
    public init?(frames: [[UInt8]]) {
        guard let first = frames.first, first.count == 6 else { return nil }
        let event = first.withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }
        let value = first.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 2, as: UInt32.self) }
        self.event = MonitorEvents(rawValue: Int32(event))
        self.value = Int32(bitPattern: value)
    }
}

extension Socket {
    /// Publishes this socket's `events` on a PAIR socket bound at `endpoint` (an `inproc://` address),
    /// which a PAIR socket of the same context connects to and reads as ``MonitorEvent``s.
    ///
    /// The corresponding libzmq call is `zmq_socket_monitor`.
    /// - Throws: ``ZMQError``.
    public func monitor(_ endpoint: String, events: MonitorEvents) throws(ZMQError) {
        try check(zmq_socket_monitor(handle, endpoint, events.rawValue))
    }

    /// The file descriptor of the connection the last frame received came over (`ZMQ_SRCFD`, which libzmq
    /// still answers though it marks it deprecated); nil when there is none, as over `inproc`.
    ///
    /// With a monitor's ``MonitorEvents/disconnected`` events it tells which peers have gone.
    public func lastFrameDescriptor() -> Int32? {
        let fd = zmq_msg_get(scratch, ZMQ_SRCFD)
        return fd < 0 ? nil : fd
    }
}
