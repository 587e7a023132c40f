import Foundation
import ZeroMQ

/// Tells which ROUTER peers have gone, so that the claims they left waiting can be dropped.
///
/// libzmq's ROUTER says nothing when a peer leaves (`ZMQ_ROUTER_NOTIFY` is a draft option the
/// distributions' libzmq leaves out). So a socket monitor reports each connection's file descriptor when
/// it is accepted and when it closes, and each request's descriptor (``Socket/lastFrameDescriptor()``)
/// ties its routing id to a connection. A descriptor is reused by later connections: the monitor reports
/// the close of the old one before the accept of the new one, and ``note(route:descriptor:)`` reads
/// the monitor first, so a routing id is never filed under the connection before its own.
final class ConnectionWatch {
    // Where the router's connection events come from: its own monitor, or the ZAP handler, which owns
    // the router's monitor when it counts connections (a socket has one monitor).
    private var monitor: Socket?
    private var authenticator: ZAPAuthenticator?
    private var routes: [Int32: Set<[UInt8]>] = [:]

    /// Monitors `router`, whose context must be `context`.
    init(router: borrowing Socket, context: Context) throws {
        let endpoint = "inproc://jobwire-connections-\(UUID().uuidString)"
        try router.monitor(endpoint, events: [.accepted, .disconnected])
        let events = try Socket(context, type: .pair)
        try events.set(.linger, .zero)
        // libzmq sends monitor events blocking, from its I/O thread: a full queue would stall every
        // connection until the loop reads it. Unbounded instead; the loop reads it every round.
        try events.set(.receiveHighWaterMark, 0)
        try events.connect(endpoint)
        monitor = .some(events)
    }

    /// Reads the router's events that `authenticator` forwards from its first monitor, the router's.
    init(authenticator: ZAPAuthenticator) {
        self.authenticator = authenticator
    }

    /// Files `route` under the connection it sent a request over; returns the routes that have gone
    /// since the last call, as ``goneRoutes()`` does.
    func note(route: [UInt8], descriptor: Int32?) -> [[UInt8]] {
        let gone = goneRoutes()
        if let descriptor { routes[descriptor, default: []].insert(route) }
        return gone
    }

    /// The routing ids whose connection has closed since the last call.
    func goneRoutes() -> [[UInt8]] {
        var gone: [[UInt8]] = []
        // An accept on a descriptor also ends whatever was filed under it before.
        for event in events() {
            if let closed = routes.removeValue(forKey: Int32(bitPattern: event.value)) { gone += closed }
        }
        return gone
    }

    private func events() -> [SocketEvent] {
        if let authenticator { return authenticator.takeFirstMonitorEvents() }
        var events: [SocketEvent] = []
        while monitor != nil, let frames = try? monitor!.receiveMultipart(dontWait: true) {
            if let event = SocketEvent(frames: frames) { events.append(event) }
        }
        return events
    }

    /// Closes the monitor's socket: after the monitored socket (whose close still reports events), before
    /// the context is terminated.
    func close() {
        monitor = nil
        authenticator = nil
    }
}
