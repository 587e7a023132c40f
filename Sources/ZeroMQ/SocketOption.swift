internal import CZeroMQ

/// A typed socket option, set with ``Socket/set(_:_:)`` and read with ``Socket/get(_:)``.
///
/// Durations are sent to libzmq in whole milliseconds (rounded up, so a tiny non-zero duration
/// never becomes "off"); `nil` means "infinite" where libzmq uses `-1`.
/// ```swift
/// try socket.set(.linger, .seconds(1))
/// try socket.set(.sendHighWaterMark, 10_000)
/// let key = try socket.get(.curvePublicKey)
/// ```
public struct SocketOption<Value>: Sendable {
    let id: Int32
    let name: String
    let encode: @Sendable (Value) -> RawOptionValue
    let decode: @Sendable (RawOptionValue) -> Value
    let kind: RawOptionKind
}

enum RawOptionKind: Sendable {
    case int32, int64
    case bytes(capacity: Int)
    case string(capacity: Int)
}

enum RawOptionValue: Sendable {
    case int32(Int32)
    case int64(Int64)
    case bytes([UInt8])

    var int32: Int32 { if case .int32(let v) = self { v } else { 0 } }
    var int64: Int64 { if case .int64(let v) = self { v } else { 0 } }
    var bytes: [UInt8] { if case .bytes(let v) = self { v } else { [] } }
    var string: String { String(decoding: bytes, as: UTF8.self) }
}

extension Socket {
    /// Sets an option.
    ///
    /// The corresponding libzmq call is `zmq_setsockopt`.
    /// - Parameters:
    ///   - option: which option, e.g. `.linger`.
    ///   - value: its new value.
    /// - Throws: ``ZMQError``, e.g. ``ZMQError/invalidArgument`` for a value libzmq rejects.
    public func set<Value>(_ option: SocketOption<Value>, _ value: Value) throws(ZMQError) {
        switch option.encode(value) {
        case .int32(let v): try setInt32(option.id, v)
        case .int64(let v): try setInt64(option.id, v)
        case .bytes(let v): try setBytes(option.id, v)
        }
    }

    /// Reads an option.
    ///
    /// The corresponding libzmq call is `zmq_getsockopt`.
    /// - Parameter option: which option, e.g. `.receiveHighWaterMark`.
    /// - Returns: its current value.
    /// - Throws: ``ZMQError``.
    public func get<Value>(_ option: SocketOption<Value>) throws(ZMQError) -> Value {
        let raw: RawOptionValue
        switch option.kind {
        case .int32: raw = .int32(try getInt32(option.id))
        case .int64: raw = .int64(try getInt64(option.id))
        case .bytes(let capacity): raw = .bytes(try getBytes(option.id, capacity: capacity))
        case .string(let capacity): raw = .bytes(Array(try getString(option.id, capacity: capacity).utf8))
        }
        return option.decode(raw)
    }
}

// MARK: - Encoders

private func milliseconds(_ duration: Duration) -> Int32 {
    let (seconds, attoseconds) = duration.components
    let ms = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    return Int32(clamping: ms)
}

extension SocketOption where Value == Bool {
    fileprivate static func flag(_ id: Int32, _ name: String) -> Self {
        Self(id: id, name: name, encode: { .int32($0 ? 1 : 0) }, decode: { $0.int32 != 0 }, kind: .int32)
    }

    /// Publish even subscriptions already seen to the application of an XPUB (`ZMQ_XPUB_VERBOSE`). Write only.
    public static var xpubVerbose: Self { flag(ZMQ_XPUB_VERBOSE, "xpubVerbose") }
    /// A ROUTER fails with ``ZMQError/hostUnreachable`` instead of dropping a message to an unknown peer
    /// (`ZMQ_ROUTER_MANDATORY`). Write only.
    public static var routerMandatory: Self { flag(ZMQ_ROUTER_MANDATORY, "routerMandatory") }
    /// A ROUTER hands a routing id over to a new connection that claims it (`ZMQ_ROUTER_HANDOVER`). Write only.
    public static var routerHandover: Self { flag(ZMQ_ROUTER_HANDOVER, "routerHandover") }
    /// Queue messages only to completed connections (`ZMQ_IMMEDIATE`).
    public static var immediate: Self { flag(ZMQ_IMMEDIATE, "immediate") }
    /// Act as CURVE server: needs ``curveSecretKey`` (`ZMQ_CURVE_SERVER`).
    public static var curveServer: Self { flag(ZMQ_CURVE_SERVER, "curveServer") }
    /// Also accept IPv6 (`ZMQ_IPV6`).
    public static var ipv6: Self { flag(ZMQ_IPV6, "ipv6") }
    /// Keep only the latest message in the queues (`ZMQ_CONFLATE`). Write only.
    public static var conflate: Self { flag(ZMQ_CONFLATE, "conflate") }
}

extension SocketOption where Value == Int {
    fileprivate static func int(_ id: Int32, _ name: String) -> Self {
        Self(id: id, name: name, encode: { .int32(Int32(clamping: $0)) }, decode: { Int($0.int32) }, kind: .int32)
    }

    /// Messages queued per peer before sending blocks or drops; 0 is unlimited (`ZMQ_SNDHWM`, default 1000).
    public static var sendHighWaterMark: Self { int(ZMQ_SNDHWM, "sendHighWaterMark") }
    /// Messages queued per peer on receipt; 0 is unlimited (`ZMQ_RCVHWM`, default 1000).
    public static var receiveHighWaterMark: Self { int(ZMQ_RCVHWM, "receiveHighWaterMark") }
    /// Kernel send buffer size in bytes; -1 keeps the OS default (`ZMQ_SNDBUF`).
    public static var sendBufferSize: Self { int(ZMQ_SNDBUF, "sendBufferSize") }
    /// Kernel receive buffer size in bytes; -1 keeps the OS default (`ZMQ_RCVBUF`).
    public static var receiveBufferSize: Self { int(ZMQ_RCVBUF, "receiveBufferSize") }
}

extension SocketOption where Value == Int? {
    /// The largest message a peer may send, in bytes; `nil` is unlimited (`ZMQ_MAXMSGSIZE`).
    /// A peer that sends a larger message is disconnected; the message never arrives.
    public static var maxMessageSize: Self {
        Self(
            id: ZMQ_MAXMSGSIZE, name: "maxMessageSize",
            encode: { .int64($0.map(Int64.init) ?? -1) }, decode: { $0.int64 < 0 ? nil : Int($0.int64) },
            kind: .int64)
    }
}

extension SocketOption where Value == Bool? {
    /// TCP keepalive: `true` on, `false` off, `nil` the OS default (`ZMQ_TCP_KEEPALIVE`).
    public static var tcpKeepalive: Self {
        Self(
            id: ZMQ_TCP_KEEPALIVE, name: "tcpKeepalive",
            encode: { .int32($0.map { $0 ? 1 : 0 } ?? -1) },
            decode: { $0.int32 < 0 ? nil : $0.int32 != 0 }, kind: .int32)
    }
}

extension SocketOption where Value == Duration {
    fileprivate static func duration(_ id: Int32, _ name: String) -> Self {
        Self(
            id: id, name: name, encode: { .int32(milliseconds($0)) }, decode: { .milliseconds($0.int32) },
            kind: .int32)
    }

    /// Send a ZMTP PING this often; zero turns heartbeats off (`ZMQ_HEARTBEAT_IVL`).
    public static var heartbeatInterval: Self { duration(ZMQ_HEARTBEAT_IVL, "heartbeatInterval") }
    /// Close the connection if no traffic arrives this long after a PING (`ZMQ_HEARTBEAT_TIMEOUT`).
    public static var heartbeatTimeout: Self { duration(ZMQ_HEARTBEAT_TIMEOUT, "heartbeatTimeout") }
    /// Ask the peer to close the connection if it hears nothing from us for this long; sent in
    /// tenths of a second, at most 6553.5 s (`ZMQ_HEARTBEAT_TTL`).
    public static var heartbeatTTL: Self { duration(ZMQ_HEARTBEAT_TTL, "heartbeatTTL") }
    /// Wait this long before reconnecting (`ZMQ_RECONNECT_IVL`, default 100 ms).
    public static var reconnectInterval: Self { duration(ZMQ_RECONNECT_IVL, "reconnectInterval") }
    /// Double the reconnect wait up to this; zero keeps it at ``reconnectInterval`` (`ZMQ_RECONNECT_IVL_MAX`).
    public static var reconnectIntervalMax: Self { duration(ZMQ_RECONNECT_IVL_MAX, "reconnectIntervalMax") }
}

extension SocketOption where Value == Duration? {
    fileprivate static func timeout(_ id: Int32, _ name: String) -> Self {
        Self(
            id: id, name: name, encode: { .int32($0.map(milliseconds) ?? -1) },
            decode: { $0.int32 < 0 ? nil : .milliseconds($0.int32) }, kind: .int32)
    }

    /// How long unsent messages are kept after close; `nil` forever, zero discards them (`ZMQ_LINGER`).
    /// ``Socket/init(_:type:)`` sets zero.
    public static var linger: Self { timeout(ZMQ_LINGER, "linger") }
    /// A blocking receive fails with ``ZMQError/wouldBlock`` after this; `nil` waits forever (`ZMQ_RCVTIMEO`).
    public static var receiveTimeout: Self { timeout(ZMQ_RCVTIMEO, "receiveTimeout") }
    /// A blocking send fails with ``ZMQError/wouldBlock`` after this; `nil` waits forever (`ZMQ_SNDTIMEO`).
    public static var sendTimeout: Self { timeout(ZMQ_SNDTIMEO, "sendTimeout") }
}

extension SocketOption where Value == [UInt8] {
    /// The identity a ROUTER peer sees for this socket, 1 to 255 bytes, not starting with 0 (`ZMQ_ROUTING_ID`).
    public static var routingId: Self {
        Self(
            id: ZMQ_ROUTING_ID, name: "routingId", encode: { .bytes($0) }, decode: { $0.bytes },
            kind: .bytes(capacity: 255))
    }
}

extension SocketOption where Value == String {
    fileprivate static func z85Key(_ id: Int32, _ name: String) -> Self {
        // 40 Z85 characters; libzmq returns the Z85 form when the buffer has room for 41 bytes.
        Self(id: id, name: name, encode: { .bytes(Array($0.utf8)) }, decode: { $0.string }, kind: .string(capacity: 41))
    }

    /// This socket's long-term CURVE public key, 40 characters of Z85 (`ZMQ_CURVE_PUBLICKEY`).
    public static var curvePublicKey: Self { z85Key(ZMQ_CURVE_PUBLICKEY, "curvePublicKey") }
    /// This socket's long-term CURVE secret key, 40 characters of Z85 (`ZMQ_CURVE_SECRETKEY`).
    public static var curveSecretKey: Self { z85Key(ZMQ_CURVE_SECRETKEY, "curveSecretKey") }
    /// The server's CURVE public key, which makes this socket a CURVE client (`ZMQ_CURVE_SERVERKEY`).
    public static var curveServerKey: Self { z85Key(ZMQ_CURVE_SERVERKEY, "curveServerKey") }
    /// The ZAP domain sent to the authentication handler (`ZMQ_ZAP_DOMAIN`).
    public static var zapDomain: Self {
        Self(
            id: ZMQ_ZAP_DOMAIN, name: "zapDomain", encode: { .bytes(Array($0.utf8)) }, decode: { $0.string },
            kind: .string(capacity: 256))
    }
}
