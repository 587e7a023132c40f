/// A job, with every field of PROTOCOL.md §3, as the broker stores and sends it.
public struct Job: Sendable, Hashable {
    public var id: String
    /// The domain: `file`, `workbook`, `sheet`, `space`, `document` or any other name.
    public var type: String
    /// The operation, e.g. `export`; may contain `:`.
    public var operation: String
    public var source: String
    public var destination: String?
    public var trigger: JobTrigger
    public var mode: JobMode
    public var status: JobStatus
    /// From 0 to 100.
    public var progress: Double
    public var estimatedCompletionAt: Timestamp?
    public var info: String?
    public var input: JSONValue?
    public var config: JSONValue?
    public var subject: JSONValue?
    public var metadata: JSONValue?
    public var outcome: Outcome?
    public var parentId: String?
    public var part: Int?
    public var partData: JSONValue?
    public var partExecution: PartExecution?
    public var predecessorIds: [String]
    public var runAt: Timestamp?
    public var attempt: Int
    public var maxAttempts: Int
    public var leaseSeconds: Int
    /// From -100 to 100, default 0: `jobs.claim` hands out the highest first, then the oldest.
    public var priority: Int
    /// The delay before the next attempt after a failed attempt; nil: the next attempt is ready at once.
    public var backoff: Backoff?
    /// How long one attempt may execute before it ends as an expired lease does, renewed or not.
    public var timeoutSeconds: Int?
    public var lease: Lease?
    /// Ids that go into the `context` of the job's events.
    public var environmentId: String?
    public var spaceId: String?
    public var workbookId: String?
    public var sheetId: String?
    public var fileId: String?
    public var documentId: String?
    public var actorId: String?
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    public var startedAt: Timestamp?
    public var finishedAt: Timestamp?
    public var outcomeAcknowledgedAt: Timestamp?

    /// A new job in `created`, as `jobs.create` starts it.
    public init(
        id: String, type: String, operation: String, source: String, trigger: JobTrigger = .immediate,
        mode: JobMode = .background, createdAt: Timestamp = .now(), maxAttempts: Int = 3, leaseSeconds: Int = 30
    ) {
        self.id = id
        self.type = type
        self.operation = operation
        self.source = source
        self.trigger = trigger
        self.mode = mode
        self.status = .created
        self.progress = 0
        self.predecessorIds = []
        self.attempt = 1
        self.maxAttempts = maxAttempts
        self.leaseSeconds = leaseSeconds
        self.priority = 0
        self.createdAt = createdAt
        self.updatedAt = createdAt
    }

    /// The job's name, `type:operation`, which event subjects and `job:` filters use.
    public var name: String { "\(type):\(operation)" }

    /// Whether this job is a part of a split job.
    public var isPart: Bool { parentId != nil }
}

extension Job {
    /// The job as its wire JSON object.
    ///
    /// Read back from ``jsonBytes``, the one place that lists the fields.
    public var json: JSONObject {
        // jsonBytes writes valid JSON by construction.
        (try? JSONCodec.parse(jsonBytes))?.objectValue ?? [:]
    }

    /// The job as wire JSON bytes, written without building a value tree (the broker's hot path).
    public var jsonBytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(640)
        return write(into: bytes)
    }

    /// Appends the job's JSON to `bytes`.
    public func write(into bytes: consuming [UInt8]) -> [UInt8] {
        var w = JSONObjectWriter(appendingTo: bytes)
        w.string("id", id)
        w.string("type", type)
        w.string("operation", operation)
        w.string("source", source)
        w.string("destination", destination, omitNil: true)
        w.string("trigger", trigger.rawValue)
        w.string("mode", mode.rawValue)
        w.string("status", status.rawValue)
        w.double("progress", progress)
        w.timestamp("estimatedCompletionAt", estimatedCompletionAt)
        w.string("info", info, omitNil: false)
        w.value("input", input, omitNil: true)
        w.value("config", config, omitNil: true)
        w.value("subject", subject, omitNil: true)
        w.value("metadata", metadata, omitNil: true)
        w.value("outcome", outcome.map { .object($0.json) })
        w.string("parentId", parentId, omitNil: true)
        if let part { w.int("part", Int64(part)) }
        w.value("partData", partData, omitNil: true)
        w.string("partExecution", partExecution?.rawValue, omitNil: true)
        if !predecessorIds.isEmpty { w.value("predecessorIds", .array(predecessorIds.map(JSONValue.string))) }
        w.timestamp("runAt", runAt, omitNil: true)
        w.bool("isPart", isPart)
        w.int("attempt", Int64(attempt))
        w.int("maxAttempts", Int64(maxAttempts))
        w.int("leaseSeconds", Int64(leaseSeconds))
        w.int("priority", Int64(priority))
        if let backoff {
            w.object("backoff") { b in
                b.string("type", backoff.type.rawValue)
                b.int("delaySeconds", Int64(backoff.delaySeconds))
                b.int("maxDelaySeconds", Int64(backoff.maxDelaySeconds))
            }
        }
        if let timeoutSeconds { w.int("timeoutSeconds", Int64(timeoutSeconds)) }
        if let lease {
            w.object("lease") { l in
                l.string("owner", lease.owner)
                l.string("instanceId", lease.instanceId, omitNil: true)
                l.timestamp("expiresAt", lease.expiresAt)
                l.timestamp("timesOutAt", lease.timesOutAt, omitNil: true)
            }
        } else {
            w.null("lease")
        }
        context.write(into: &w)
        w.timestamp("createdAt", createdAt)
        w.timestamp("updatedAt", updatedAt)
        w.timestamp("startedAt", startedAt)
        w.timestamp("finishedAt", finishedAt)
        w.timestamp("outcomeAcknowledgedAt", outcomeAcknowledgedAt)
        return w.finish()
    }

    /// Reads a job from its wire JSON object, as the broker writes it.
    /// - Throws: ``FieldError`` naming the first field that is missing or wrong.
    public init(json value: JSONValue) throws(FieldError) {
        let r = try FieldReader(value, path: "")
        try self.init(reader: r)
    }

    init(reader r: FieldReader) throws(FieldError) {
        id = try r.requiredString("id")
        type = try r.requiredString("type")
        operation = try r.requiredString("operation")
        source = try r.string("source") ?? ""
        destination = try r.string("destination")
        trigger = try r.enumeration("trigger", as: JobTrigger.self) ?? .immediate
        mode = try r.enumeration("mode", as: JobMode.self) ?? .background
        guard let statusText = try r.string("status") else { throw .missing("status") }
        guard let status = JobStatus(wire: statusText) else {
            throw FieldError(field: "status", message: "status \"\(statusText)\" is not a job status")
        }
        self.status = status
        progress = try r.double("progress") ?? 0
        estimatedCompletionAt = try r.timestamp("estimatedCompletionAt")
        info = try r.string("info")
        input = r.value("input")
        config = r.value("config")
        subject = r.value("subject")
        metadata = r.value("metadata")
        outcome = try r.object("outcome").map { reader throws(FieldError) in try Outcome(reader: reader) }
        parentId = try r.string("parentId")
        part = try r.int("part").map { Int($0) }
        partData = r.value("partData")
        partExecution = try r.enumeration("partExecution", as: PartExecution.self)
        predecessorIds = try r.stringArray("predecessorIds") ?? []
        runAt = try r.timestamp("runAt")
        attempt = Int(try r.int("attempt") ?? 1)
        maxAttempts = Int(try r.int("maxAttempts") ?? 3)
        leaseSeconds = Int(try r.int("leaseSeconds") ?? 30)
        priority = Int(try r.int("priority") ?? 0)
        backoff = try r.object("backoff").map { reader throws(FieldError) in try Backoff(stored: reader) }
        timeoutSeconds = try r.int("timeoutSeconds").map { Int($0) }
        if let l = try r.object("lease") {
            guard let expiresAt = try l.timestamp("expiresAt") else { throw .missing("lease.expiresAt") }
            lease = Lease(
                owner: try l.requiredString("owner"), instanceId: try l.string("instanceId"), expiresAt: expiresAt,
                timesOutAt: try l.timestamp("timesOutAt"))
        }
        let context = try JobContext(reader: r)
        guard let createdAt = try r.timestamp("createdAt") else { throw .missing("createdAt") }
        self.createdAt = createdAt
        updatedAt = try r.timestamp("updatedAt") ?? createdAt
        startedAt = try r.timestamp("startedAt")
        finishedAt = try r.timestamp("finishedAt")
        outcomeAcknowledgedAt = try r.timestamp("outcomeAcknowledgedAt")
        self.context = context
    }
}

extension Job: Codable {
    public init(from decoder: any Decoder) throws {
        try self.init(json: try JSONValue(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try JSONValue.object(json).encode(to: encoder)
    }
}
