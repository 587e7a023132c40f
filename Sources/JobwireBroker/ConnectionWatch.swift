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
    private var events: Socket?
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
        self.events = .some(events)
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
        while let frames = try? events!.receiveMultipart(dontWait: true) {
            // An accept on a descriptor also ends whatever was filed under it before.
            guard let event = MonitorEvent(frames: frames),
                let closed = routes.removeValue(forKey: event.value)
            else { continue }
            gone += closed
        }
        return gone
    }

    /// Closes the monitor's socket: after the monitored socket (whose close still reports events), before
    /// the context is terminated.
    func close() { events = nil }
}
