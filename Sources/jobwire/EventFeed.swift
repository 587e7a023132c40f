import ArgumentParser
import Foundation
import Jobwire
import UnixSignals
import ZeroMQ

/// The broker's events from a cursor on, each once, in order: the Clone pattern of PROTOCOL.md §5.
///
/// It subscribes first, then replays `events.list` after the cursor, and drops live events its ``EventCursor``
/// already has. Heartbeats carry the broker's latest seq: when one shows the log moved past the cursor, the
/// feed asks `events.list` again, which repairs both the window before the subscription took effect and events
/// the broker dropped for a slow subscriber (those arrive after the live events that overtook them).
final class EventFeed: Sendable {
    /// Topic globs (`job:*`, `**`); an event matches when any does.
    let topics: GlobSet
    /// A glob over the job name (`workbook:*`), or nil for any.
    let job: Glob?
    private let topicPatterns: [String]
    private let client: JobsClient
    private let socket: AsyncSocket

    /// One libzmq context for the CLI's subscribers.
    static let context: Context = {
        // Failing here means the process cannot open file descriptors at all.
        try! Context()
    }()

    init(client: JobsClient, events endpoint: String, topics: [String], job: String?, options: ClientOptions) throws {
        self.client = client
        self.topics = GlobSet(topics)
        self.topicPatterns = topics
        self.job = job.map { Glob($0) }
        let prefixes = Subscription.prefixes(topics: topics, jobName: job) + ["broker:heartbeat/"]
        let curve = try options.curve
        do {
            socket = try AsyncSocket(context: Self.context, type: .sub) { socket in
                try socket.set(.linger, .zero)
                if let curve {
                    try socket.set(.curveServerKey, curve.serverPublicKey)
                    try socket.set(.curvePublicKey, curve.publicKey)
                    try socket.set(.curveSecretKey, curve.secretKey)
                }
                for prefix in Subscription.minimal(prefixes) { try socket.subscribe(prefix) }
                for one in try Endpoints.list(endpoint) { try socket.connect(one) }
            }
        } catch {
            throw UsageError("--events \(endpoint) is not an endpoint ZeroMQ accepts (\(error))")
        }
    }

    /// Whether an event passes the topic and job globs.
    func matches(_ event: Event) -> Bool {
        guard topics.matches(event.topic) else { return false }
        guard let job else { return true }
        return event.domain == "job" && job.matches(event.subject)
    }

    /// Delivers matching events after `since` (or from now, with nil) until `handle` returns false or the
    /// task is cancelled.
    /// - Parameters:
    ///   - since: the last seq already seen; nil starts at the broker's latest seq.
    ///   - started: called once the cursor is known, before any event; returns whether to go on.
    ///   - heartbeat: called with each heartbeat's seq (nothing is delivered for it).
    ///   - handle: returns whether to go on.
    func run(
        since: Int64?, started: () async throws -> Bool = { true }, heartbeat: (Int64) async throws -> Void = { _ in },
        handle: (Event) async throws -> Bool
    ) async throws {
        // The first call also proves a broker answers, so a missing one fails fast and clearly.
        let info = try await client.brokerInfo()
        var cursor = EventCursor(epoch: info.epoch, confirmed: since ?? info.seq)
        // Whatever `started` reads from the broker now is at least as new as the cursor.
        guard try await started() else { return }
        if since != nil, !(try await replay(&cursor, handle)) { return }
        for try await frames in socket.messages {
            guard frames.count == 2, let event = try? Event(envelope: frames[1]) else { continue }
            guard let seq = event.seq else {
                if event.topic == "broker:heartbeat", let latest = event.payload["seq"]?.intValue {
                    try await heartbeat(latest)
                    let check = cursor.heartbeat(latest: latest, epoch: event.payload["epoch"]?.stringValue)
                    if check != .current, !(try await replay(&cursor, handle)) { return }
                }
                continue
            }
            switch cursor.live(seq: seq, epoch: event.epoch) {
            case .duplicate:
                continue
            case .newEpoch:
                // The replay from seq 0 of the new store brings this event in its order.
                if !(try await replay(&cursor, handle)) { return }
            case .deliver, .gap:
                // A gap is repaired by the next heartbeat's replay: a filtered stream skips seqs all the time.
                if matches(event), !(try await handle(event)) { return }
            }
        }
    }

    /// Applies `events.list` after the cursor, page by page, until the page that reaches the broker's latest seq.
    private func replay(_ cursor: inout EventCursor, _ handle: (Event) async throws -> Bool) async throws -> Bool {
        while let since = cursor.confirmed {
            let limit = 1000
            let page = try await client.events(since: since, topics: topicPatterns, limit: limit)
            guard cursor.accepts(pageOf: page.epoch) else { continue }
            for event in page.events {
                guard let seq = event.seq, cursor.replayed(seq: seq) == .deliver else { continue }
                if matches(event), !(try await handle(event)) { return false }
            }
            // The page examined every event up to `nextSince`; it may stop short of `lastSeq` at any count.
            cursor.replayed(through: max(since, page.nextSince))
            if page.isComplete || page.nextSince <= since { return true }
        }
        return true
    }

    func close() async {
        await socket.close()
    }
}

extension CLI {
    /// Runs `body` until it returns or SIGINT/SIGTERM arrives; returns nil when a signal stopped it.
    static func untilSignal<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                for await _ in signals { return nil }
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }
}
