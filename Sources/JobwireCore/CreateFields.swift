package import JobwireProtocol

/// The checked params of `jobs.create`: everything is validated before anything changes.
package struct CreateFields {
    package var type: String
    package var operation: String
    package var source: String
    package var destination: String?
    package var trigger: JobTrigger
    package var mode: JobMode
    package var info: String?
    package var input: JSONValue?
    package var config: JSONValue?
    package var subject: JSONValue?
    package var metadata: JSONValue?
    package var predecessorIds: [String]
    package var runAt: Timestamp?
    package var leaseSeconds: Int
    package var maxAttempts: Int
    /// From -100 to 100: claims take the highest first.
    package var priority = 0
    package var backoff: Backoff?
    package var timeoutSeconds: Int?
    package var idempotencyKey: String?
    package var context = JobContext()
    /// The params as given, for comparing a reused idempotency key.
    package var fingerprint: String

    /// The most predecessors a job may wait for: a create looks each one up.
    package static let maxPredecessors = 1000
    /// The priorities a job may have.
    package static let priorities: ClosedRange<Int64> = -100...100

    package init(_ p: FieldReader, configuration: CoreConfiguration) throws {
        type = try CreateFields.name(p, "type")
        operation = try CreateFields.name(p, "operation")
        guard let source = try p.identifier("source") else {
            throw FieldError(field: "source", message: "source is required")
        }
        self.source = source
        destination = try p.identifier("destination")
        trigger = try p.enumeration("trigger", as: JobTrigger.self) ?? .immediate
        mode = try p.enumeration("mode", as: JobMode.self) ?? .background
        info = try p.string("info")
        input = p.value("input")
        config = p.value("config")
        subject = p.value("subject")
        metadata = p.value("metadata")
        predecessorIds = try p.identifierArray("predecessorIds") ?? []
        guard predecessorIds.count <= CreateFields.maxPredecessors else {
            throw FieldError(
                field: "predecessorIds",
                message:
                    "predecessorIds has \(predecessorIds.count) ids, at most \(CreateFields.maxPredecessors) are allowed"
            )
        }
        runAt = try p.timestamp("runAt")
        leaseSeconds = Int(try p.int("leaseSeconds", in: 1...86_400) ?? Int64(configuration.leaseSeconds))
        maxAttempts = Int(try p.int("maxAttempts", in: 1...1000) ?? Int64(configuration.maxAttempts))
        priority = Int(try p.int("priority", in: CreateFields.priorities) ?? 0)
        backoff = try p.object("backoff").map { reader throws in try Backoff(reader: reader) }
        timeoutSeconds = try p.int("timeoutSeconds", in: 1...Backoff.maxSeconds).map { Int($0) }
        idempotencyKey = try p.identifier("idempotencyKey")
        for key in JobContext.keys {
            if let value = try p.identifier(key) { context[key] = value }
        }
        var canonical = p.object
        canonical["idempotencyKey"] = nil
        canonical["status"] = nil
        fingerprint = JSONCodec.string(CreateFields.sorted(.object(canonical)))
    }

    /// The fields of the job an action's trigger creates, as a user's click would: `<domain>:<operation>`
    /// on the action's resource, at once, in the action's mode, with the trigger's `input`. It takes no
    /// idempotency key, so it needs no fingerprint.
    package init(action: Action, input: JSONValue, actorId: String?, configuration: CoreConfiguration) {
        type = action.domain
        operation = action.operation
        source = action.resourceId
        trigger = .immediate
        mode = action.mode
        self.input = input
        predecessorIds = []
        leaseSeconds = configuration.leaseSeconds
        maxAttempts = configuration.maxAttempts
        fingerprint = ""
        let resourceKey: String? =
            switch action.domain {
            case "workbook": "workbookId"
            case "sheet": "sheetId"
            case "file": "fileId"
            case "document": "documentId"
            case "space": "spaceId"
            default: nil
            }
        if let resourceKey { context[resourceKey] = action.resourceId }
        if let actorId { context["actorId"] = actorId }
    }

    /// A job or operation name: a required identifier without `/`, which the topic frame reserves.
    private static func name(_ p: FieldReader, _ key: String) throws -> String {
        let value = try p.requiredIdentifier(key)
        guard !value.contains("/") else { throw FieldError(field: key, message: "\(key) must not contain '/'") }
        return value
    }

    private static func sorted(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let o):
            var result = JSONObject()
            for key in o.keys.sorted() { result[key] = sorted(o[key]!) }
            return .object(result)
        case .array(let a): return .array(a.map(sorted))
        default: return value
        }
    }

    package func job(id: String, now: Timestamp) -> Job {
        var job = Job(
            id: id, type: type, operation: operation, source: source, trigger: trigger, mode: mode, createdAt: now,
            maxAttempts: maxAttempts, leaseSeconds: leaseSeconds)
        job.destination = destination
        job.info = info
        job.input = input
        job.config = config
        job.subject = subject
        job.metadata = metadata
        job.predecessorIds = predecessorIds
        job.runAt = runAt
        job.priority = priority
        job.backoff = backoff
        job.timeoutSeconds = timeoutSeconds
        job.context = context
        return job
    }
}
