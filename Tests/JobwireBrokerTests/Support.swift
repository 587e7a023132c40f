import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

/// A broker process with a context and a client, for one test.
final class Harness: Sendable {
    let broker: Locked<BrokerProcess>
    let context: Context
    let client: Locked<RawClient>

    var process: BrokerProcess { broker.withLock { $0 } }
    var rpc: RawClient { client.withLock { $0 } }

    init(arguments: [String] = []) async throws {
        let broker = try await BrokerProcess.start(arguments: arguments)
        self.broker = Locked(broker)
        context = try Context()
        client = Locked(try RawClient(context: context, endpoint: broker.commands))
    }

    /// A new client connection to the same broker.
    func newClient() throws -> RawClient { try RawClient(context: context, endpoint: process.commands) }

    /// A subscriber that has seen its first heartbeat, so it misses no event published after.
    func subscribe(_ prefix: String = "") async throws -> EventSubscriber {
        let subscriber = try EventSubscriber(context: context, endpoint: process.events, prefix: prefix)
        try await subscriber.waitForHeartbeat()
        return subscriber
    }

    /// Stops (SIGTERM) or kills the broker and starts it again on the same data and endpoints.
    func restart(signal: Int32 = SIGTERM) async throws {
        let old = process
        if signal == SIGTERM { await old.stop() } else { await old.kill(signal) }
        let new = try await old.restart()
        broker.withLock { $0 = new }
    }

    func close() async {
        await rpc.close()
        await process.stop()
    }

    // MARK: Calls

    @discardableResult
    func call(_ method: String, _ params: JSONObject = [:]) async throws -> JSONObject {
        let value = try await rpc.result(method, params)
        return try #require(value.objectValue, "\(method) returned \(value)")
    }

    /// Calls and expects a JSON-RPC error, which it returns.
    func failure(_ method: String, _ params: JSONObject = [:]) async throws -> ProtocolError {
        let response = try await rpc.call(method, params)
        switch response.result {
        case .success(let value):
            Issue.record("\(method) \(params) succeeded with \(value), expected an error")
            throw TestSupportError("unexpected success")
        case .failure(let error): return error
        }
    }

    @discardableResult
    func create(_ extra: JSONObject = [:], type: String = "workbook", operation: String = "export") async throws
        -> JSONObject
    {
        var params: JSONObject = ["type": .string(type), "operation": .string(operation), "source": "us_wb_1"]
        for (key, value) in extra { params[key] = value }
        return try await call("jobs.create", params)
    }

    func get(_ id: String) async throws -> JSONObject { try await call("jobs.get", ["jobId": .string(id)]) }

    func info() async throws -> JSONObject { try await call("broker.info") }

    func seq() async throws -> Int64 { try #require(try await info()["seq"]?.intValue) }

    /// The log after `since`, page by page (a page may stop short of `lastSeq`; `nextSince` goes on).
    func events(since: Int64, topics: [String]? = nil) async throws -> [JSONObject] {
        var events: [JSONObject] = []
        var since = since
        while true {
            var params: JSONObject = ["since": .int(since), "limit": 10_000]
            if let topics { params["topics"] = .array(topics.map(JSONValue.string)) }
            let result = try await call("events.list", params)
            events += (result["events"]?.arrayValue ?? []).compactMap(\.objectValue)
            let next = try #require(result.int("nextSince"))
            if next >= result.int("lastSeq") ?? 0 || next <= since { return events }
            since = next
        }
    }
}

/// Starts a broker with a client (a ``Harness``), runs `body` with it, and closes both (awaited) however
/// `body` ends.
/// - Returns: what `body` returns.
func withHarness<Result>(arguments: [String] = [], _ body: (Harness) async throws -> Result) async throws -> Result {
    let harness = try await Harness(arguments: arguments)
    return try await withTearDown(harness, { await $0.close() }, body)
}

/// A SUB socket that keeps every message it receives.
final class EventSubscriber: Sendable {
    struct Message: Sendable {
        var topicFrame: String
        var envelope: JSONObject
        var receivedAt: ContinuousClock.Instant
        var topic: String { envelope["topic"]?.stringValue ?? "" }
        var seq: Int64? { envelope["seq"]?.intValue }
        var jobId: String? { envelope["context"]?["jobId"]?.stringValue }
    }

    private let socket: AsyncSocket
    private let received: Locked<[Message]>
    private let reader: Task<Void, Never>

    init(context: Context, endpoint: String, prefix: String) throws {
        socket = try AsyncSocket(context: context, type: .sub) { socket in
            try socket.set(.linger, .zero)
            try socket.subscribe(prefix)
            if !prefix.isEmpty && !"broker:heartbeat/".hasPrefix(prefix) { try socket.subscribe("broker:heartbeat/") }
            try socket.connect(endpoint)
        }
        let received = Locked<[Message]>([])
        self.received = received
        let socket = self.socket
        reader = Task {
            do {
                for try await frames in socket.messages where frames.count == 2 {
                    guard let envelope = try? JSONCodec.parse(frames[1]).objectValue else { continue }
                    let message = Message(
                        topicFrame: String(decoding: frames[0], as: UTF8.self), envelope: envelope,
                        receivedAt: .now)
                    received.withLock { $0.append(message) }
                }
            } catch {}
        }
    }

    var messages: [Message] { received.withLock { $0 } }
    /// Job and broker events of the log (heartbeats left out).
    var events: [Message] { messages.filter { $0.topic != "broker:heartbeat" } }
    var heartbeats: [Message] { messages.filter { $0.topic == "broker:heartbeat" } }

    func waitForHeartbeat() async throws {
        let start = heartbeats.count
        try await eventually("a heartbeat") { self.heartbeats.count > start }
    }

    /// Waits until the events with seq above `since` satisfy `condition`; returns them.
    @discardableResult
    func waitForEvents(
        since: Int64, timeout: Duration = .seconds(10), _ condition: @escaping @Sendable ([Message]) -> Bool
    ) async throws -> [Message] {
        var found: [Message] = []
        try await eventually("events after \(since)", timeout: timeout) {
            found = self.events.filter { ($0.seq ?? 0) > since }
            return condition(found)
        }
        return found
    }

    func close() async {
        reader.cancel()
        await socket.close()
    }
}

/// A DEALER that sends and receives raw frames, for requests the broker cannot match to an id.
final class RawDealer: Sendable {
    private let socket: AsyncSocket
    private let received: Locked<[[[UInt8]]]>
    private let reader: Task<Void, Never>

    init(context: Context, endpoint: String) throws {
        socket = try AsyncSocket(context: context, type: .dealer) { socket in
            try socket.set(.linger, .zero)
            try socket.connect(endpoint)
        }
        let received = Locked<[[[UInt8]]]>([])
        self.received = received
        let socket = self.socket
        reader = Task {
            do {
                for try await frames in socket.messages { received.withLock { $0.append(frames) } }
            } catch {}
        }
    }

    func send(_ frames: [[UInt8]]) { socket.send(frames) }

    /// The next message, or nil when none comes within `timeout`.
    func next(timeout: Duration = .seconds(5)) async throws -> [[UInt8]]? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let message = received.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            if let message { return message }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    /// Sends `frames` and decodes the reply body (the last frame).
    func exchange(_ frames: [[UInt8]]) async throws -> (frames: [[UInt8]], response: RPCResponse) {
        send(frames)
        let reply = try #require(try await next(), "no reply to \(frames.map(\.count)) bytes")
        return (reply, try RPCResponse.decode(reply.last ?? []))
    }

    func close() async {
        reader.cancel()
        await socket.close()
    }
}

extension ProtocolError {
    var type: String? { data["type"]?.stringValue }
}

extension JSONObject {
    func string(_ key: String) -> String? { self[key]?.stringValue }
    func int(_ key: String) -> Int64? { self[key]?.intValue }
}

extension String {
    var json: JSONValue { .string(self) }
}
