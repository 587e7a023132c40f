/// An event as published on the events socket (PROTOCOL.md §2): the envelope frame.
public struct Event: Sendable, Hashable {
    /// `us_evt_…`.
    public var id: String
    /// The broker-wide sequence number; `nil` for heartbeats, which are not part of the log.
    public var seq: Int64?
    /// The store's identity; a new epoch means a new store.
    public var epoch: String?
    /// `job:ready`, `broker:heartbeat`, …
    public var topic: String
    /// `job` or `broker`.
    public var domain: String
    /// The ids that apply (`environmentId`, `spaceId`, `workbookId`, `jobId`, `actorId`, …); never null values.
    public var context: JSONObject
    public var payload: JSONObject
    public var createdAt: Timestamp

    public init(
        id: String, seq: Int64?, epoch: String?, topic: String, domain: String, context: JSONObject,
        payload: JSONObject, createdAt: Timestamp
    ) {
        self.id = id
        self.seq = seq
        self.epoch = epoch
        self.topic = topic
        self.domain = domain
        self.context = context
        self.payload = payload
        self.createdAt = createdAt
    }

    /// The subject of the topic frame: the job name for job events, empty for broker events.
    public var subject: String { payload["job"]?.stringValue ?? "" }

    /// The two frames as sent: the topic frame and the envelope.
    public var frames: [[UInt8]] {
        [TopicFrame.encode(topic: topic, subject: subject), JSONCodec.encode(.object(json))]
    }
}

extension Event {
    /// The envelope as its wire JSON object.
    public var json: JSONObject {
        var o = JSONObject()
        o.append("id", .string(id))
        if let seq { o.append("seq", .int(seq)) }
        if let epoch { o.append("epoch", .string(epoch)) }
        o.append("topic", .string(topic))
        o.append("domain", .string(domain))
        o.append("context", .object(context))
        o.append("payload", .object(payload))
        o.append("createdAt", JSONValue(createdAt))
        return o
    }

    /// Reads an envelope.
    /// - Throws: ``FieldError`` naming the field that is missing or wrong.
    public init(json value: JSONValue) throws(FieldError) {
        let r = try FieldReader(value, path: "")
        id = try r.requiredString("id")
        seq = try r.int("seq")
        epoch = try r.string("epoch")
        topic = try r.requiredString("topic")
        domain = try r.string("domain") ?? ""
        context = try r.object("context")?.object ?? [:]
        payload = try r.object("payload")?.object ?? [:]
        guard let createdAt = try r.timestamp("createdAt") else { throw .missing("createdAt") }
        self.createdAt = createdAt
    }

    /// Reads the envelope frame of an event message.
    public init(envelope bytes: some Collection<UInt8>) throws(ProtocolError) {
        let value: JSONValue
        do {
            value = try JSONCodec.parse(bytes)
        } catch {
            throw ProtocolError(.parseError, "event envelope is not JSON: \(error)")
        }
        do {
            try self.init(json: value)
        } catch {
            throw ProtocolError(.invalidParams, error.message, field: error.field)
        }
    }
}

extension Event: Codable {
    public init(from decoder: any Decoder) throws { try self.init(json: try JSONValue(from: decoder)) }
    public func encode(to encoder: any Encoder) throws { try JSONValue.object(json).encode(to: encoder) }
}

/// The first frame of an event message: `<topic>/<subject>/`, so that ZeroMQ prefix subscriptions are exact.
public enum TopicFrame {
    /// The frame for a topic and subject (`job:ready/workbook:export/`, `broker:heartbeat//`).
    public static func encode(topic: String, subject: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(topic.utf8.count + subject.utf8.count + 2)
        bytes.append(contentsOf: topic.utf8)
        bytes.append(UInt8(ascii: "/"))
        bytes.append(contentsOf: subject.utf8)
        bytes.append(UInt8(ascii: "/"))
        return bytes
    }

    /// Splits a topic frame into its topic and subject; `nil` if it is not one.
    public static func decode(_ frame: some Collection<UInt8>) -> (topic: String, subject: String)? {
        guard let text = String(validating: Array(frame), as: UTF8.self), text.hasSuffix("/") else { return nil }
        let parts = text.dropLast().split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        return (String(parts[0]), String(parts[1]))
    }
}
