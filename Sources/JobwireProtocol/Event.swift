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
        [TopicFrame.encode(topic: topic, subject: subject), envelopeBytes]
    }
}

extension Event {
    /// Writes an envelope frame: the one place that lists its members and their order (PROTOCOL.md §2).
    /// - Parameters:
    ///   - capacity: the bytes to reserve.
    ///   - id: appends the event id as a JSON string.
    ///   - seq: the event's seq; nil for a heartbeat, which is not part of the log.
    ///   - epoch: the store's epoch; nil for a heartbeat.
    ///   - context: writes the members of `context`.
    ///   - payload: writes the members of `payload`.
    /// - Returns: the envelope's JSON bytes.
    public static func envelope(
        reservingCapacity capacity: Int = 512, id: (inout [UInt8]) -> Void, seq: Int64?, epoch: String?,
        topic: String, domain: String, createdAt: Timestamp, context: (inout JSONObjectWriter) -> Void,
        payload: (inout JSONObjectWriter) -> Void
    ) -> [UInt8] {
        var w = JSONObjectWriter(reservingCapacity: capacity)
        w.raw("id", writing: id)
        if let seq { w.int("seq", seq) }
        if let epoch { w.string("epoch", epoch) }
        w.string("topic", topic)
        w.string("domain", domain)
        w.object("context", context)
        w.object("payload", payload)
        w.timestamp("createdAt", createdAt)
        return w.finish()
    }

    /// The envelope frame's bytes.
    public var envelopeBytes: [UInt8] {
        Event.envelope(
            id: { JSONCodec.writeString(id, into: &$0) }, seq: seq, epoch: epoch, topic: topic, domain: domain,
            createdAt: createdAt, context: { $0.members(context) }, payload: { $0.members(payload) })
    }

    /// The envelope as its wire JSON object, read back from ``envelopeBytes``.
    public var json: JSONObject {
        // envelopeBytes writes valid JSON by construction.
        (try? JSONCodec.parse(envelopeBytes))?.objectValue ?? [:]
    }

    /// The counts a `job:parts-completed` event carries.
    public struct PartCounts: Sendable, Hashable {
        public var total: Int
        public var completed: Int
        public var failed: Int
        public var canceled: Int

        public init(total: Int, completed: Int, failed: Int, canceled: Int) {
            self.total = total
            self.completed = completed
            self.failed = failed
            self.canceled = canceled
        }
    }

    /// Writes the envelope of an event about a job: its context ids and the payload every job event has.
    /// - Parameters:
    ///   - id: appends the event id as a JSON string.
    ///   - parts: the counts of a `job:parts-completed` event.
    /// - Returns: the envelope's JSON bytes.
    public static func jobEnvelope(
        id: (inout [UInt8]) -> Void, seq: Int64?, epoch: String?, topic: String, job: Job, parts: PartCounts? = nil,
        createdAt: Timestamp
    ) -> [UInt8] {
        envelope(
            id: id, seq: seq, epoch: epoch, topic: topic, domain: "job", createdAt: createdAt,
            context: { c in job.context.write(into: &c, jobId: job.id) },
            payload: { p in writePayload(of: job, parts: parts, into: &p) })
    }

    /// Writes the payload members every event about a job has (PROTOCOL.md §2).
    static func writePayload(of job: Job, parts: PartCounts?, into p: inout JSONObjectWriter) {
        p.string("job", job.name)
        p.string("domain", job.type)
        p.string("operation", job.operation)
        p.string("status", job.status.rawValue)
        p.bool("isPart", job.isPart)
        p.string("info", job.info, omitNil: false)
        p.value("input", job.input ?? .object([:]))
        p.double("progress", job.progress)
        p.int("attempt", Int64(job.attempt))
        p.string("mode", job.mode.rawValue)
        p.int("priority", Int64(job.priority))
        // When a scheduled job (a retry's backoff, a delayed release, a runAt) becomes ready.
        if job.status == .scheduled { p.timestamp("runAt", job.runAt, omitNil: true) }
        p.timestamp("estimatedCompletionAt", job.estimatedCompletionAt, omitNil: true)
        if let outcome = job.outcome { p.value("outcome", .object(outcome.json)) }
        if let parentId = job.parentId {
            p.string("parentId", parentId)
            if let part = job.part { p.int("part", Int64(part)) }
            p.value("partData", job.partData, omitNil: true)
        }
        if let parts {
            p.object("parts") { c in
                c.int("total", Int64(parts.total))
                c.int("completed", Int64(parts.completed))
                c.int("failed", Int64(parts.failed))
                c.int("canceled", Int64(parts.canceled))
            }
        }
    }

    /// An event about a job, as the broker would publish it.
    public init(job: Job, topic: String, id: String, seq: Int64?, epoch: String?, createdAt: Timestamp) {
        var payload = JSONObjectWriter(reservingCapacity: 256)
        Event.writePayload(of: job, parts: nil, into: &payload)
        self.init(
            id: id, seq: seq, epoch: epoch, topic: topic, domain: "job",
            context: job.context.eventContext(jobId: job.id),
            // The writer writes valid JSON by construction.
            payload: (try? JSONCodec.parse(payload.finish()))?.objectValue ?? [:], createdAt: createdAt)
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
