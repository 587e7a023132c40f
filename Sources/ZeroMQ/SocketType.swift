internal import CZeroMQ

/// The kind of a ZeroMQ socket, which fixes its messaging pattern.
public struct SocketType: Sendable, Hashable, CustomStringConvertible {
    let rawValue: Int32
    private let name: String

    private init(_ rawValue: Int32, _ name: String) {
        self.rawValue = rawValue
        self.name = name
    }

    public var description: String { name }

    /// Publishes to every matching subscriber; drops when a subscriber is at its high-water mark.
    public static let pub = SocketType(ZMQ_PUB, "PUB")
    /// Like ``pub``, but receives subscribe (`0x01` + prefix) and unsubscribe (`0x00` + prefix) messages.
    public static let xpub = SocketType(ZMQ_XPUB, "XPUB")
    /// Receives the messages of publishers whose topic starts with a subscribed prefix.
    public static let sub = SocketType(ZMQ_SUB, "SUB")
    /// Like ``sub``, but subscriptions are sent as messages.
    public static let xsub = SocketType(ZMQ_XSUB, "XSUB")
    /// Lock-step client: send one request, receive one reply, repeat.
    public static let req = SocketType(ZMQ_REQ, "REQ")
    /// Lock-step server: receive one request, send one reply, repeat.
    public static let rep = SocketType(ZMQ_REP, "REP")
    /// Asynchronous client: round-robins outgoing messages, fair-queues incoming ones.
    public static let dealer = SocketType(ZMQ_DEALER, "DEALER")
    /// Asynchronous server: prefixes each incoming message with the peer's routing id, routes replies by it.
    public static let router = SocketType(ZMQ_ROUTER, "ROUTER")
    /// Exclusive one-to-one pair.
    public static let pair = SocketType(ZMQ_PAIR, "PAIR")
    /// Pipeline: distributes messages to pullers.
    public static let push = SocketType(ZMQ_PUSH, "PUSH")
    /// Pipeline: fair-queues messages from pushers.
    public static let pull = SocketType(ZMQ_PULL, "PULL")
}
