/// The fields of a new job (`jobs.create`). `type`, `operation` and `source` are required.
public struct JobCreateRequest: Sendable {
    public var type: String
    public var operation: String
    public var source: String
    public var destination: String?
    public var trigger: JobTrigger?
    public var mode: JobMode?
    public var input: JSONValue?
    public var config: JSONValue?
    public var subject: JSONValue?
    public var metadata: JSONValue?
    public var info: String?
    public var predecessorIds: [String]?
    public var runAt: Timestamp?
    public var leaseSeconds: Int?
    public var maxAttempts: Int?
    /// From -100 to 100 (0 when nil): claims take the highest first, then the oldest.
    public var priority: Int?
    /// The delay before each next attempt after a failed one (a retryable failure, a lost lease, a timeout);
    /// nil: the next attempt is ready at once.
    public var backoff: Backoff?
    /// How long one attempt may run before it ends as a lost lease does; its handler is then cancelled.
    public var timeoutSeconds: Int?
    /// Context ids the job's events carry (`environmentId`, `spaceId`, `workbookId`, …), sent as they are.
    public var context: JSONObject
    /// The same key returns the same job and creates nothing; the client makes one when `nil`, so a
    /// create retried after a lost reply never creates twice.
    public var idempotencyKey: String?

    public init(
        type: String, operation: String, source: String, destination: String? = nil, trigger: JobTrigger? = nil,
        mode: JobMode? = nil, input: JSONValue? = nil, config: JSONValue? = nil, subject: JSONValue? = nil,
        metadata: JSONValue? = nil, info: String? = nil, predecessorIds: [String]? = nil, runAt: Timestamp? = nil,
        leaseSeconds: Int? = nil, maxAttempts: Int? = nil, priority: Int? = nil, backoff: Backoff? = nil,
        timeoutSeconds: Int? = nil, context: JSONObject = [:], idempotencyKey: String? = nil
    ) {
        self.type = type
        self.operation = operation
        self.source = source
        self.destination = destination
        self.trigger = trigger
        self.mode = mode
        self.input = input
        self.config = config
        self.subject = subject
        self.metadata = metadata
        self.info = info
        self.predecessorIds = predecessorIds
        self.runAt = runAt
        self.leaseSeconds = leaseSeconds
        self.maxAttempts = maxAttempts
        self.priority = priority
        self.backoff = backoff
        self.timeoutSeconds = timeoutSeconds
        self.context = context
        self.idempotencyKey = idempotencyKey
    }

    /// The `params` of `jobs.create`.
    public var json: JSONObject {
        var o = context
        o["type"] = .string(type)
        o["operation"] = .string(operation)
        o["source"] = .string(source)
        if let destination { o["destination"] = .string(destination) }
        if let trigger { o["trigger"] = .string(trigger.rawValue) }
        if let mode { o["mode"] = .string(mode.rawValue) }
        if let input { o["input"] = input }
        if let config { o["config"] = config }
        if let subject { o["subject"] = subject }
        if let metadata { o["metadata"] = metadata }
        if let info { o["info"] = .string(info) }
        if let predecessorIds { o["predecessorIds"] = .array(predecessorIds.map(JSONValue.string)) }
        if let runAt { o["runAt"] = JSONValue(runAt) }
        if let leaseSeconds { o["leaseSeconds"] = .int(Int64(leaseSeconds)) }
        if let maxAttempts { o["maxAttempts"] = .int(Int64(maxAttempts)) }
        if let priority { o["priority"] = .int(Int64(priority)) }
        if let backoff { o["backoff"] = .object(backoff.json) }
        if let timeoutSeconds { o["timeoutSeconds"] = .int(Int64(timeoutSeconds)) }
        if let idempotencyKey { o["idempotencyKey"] = .string(idempotencyKey) }
        return o
    }
}

/// Filters and paging of `jobs.list`.
public struct JobQuery: Sendable {
    public var status: JobStatus?
    public var type: String?
    public var operation: String?
    public var source: String?
    public var parentId: String?
    public var excludeChildJobs: Bool?
    public var pageSize: Int?
    public var pageNumber: Int?
    /// `asc` (default) or `desc`.
    public var sortDirection: String?
    /// Only jobs of this priority.
    public var priority: Int?
    /// `createdAt` (default) or `priority` (then `createdAt`), in `sortDirection`.
    public var sortField: String?
    /// Context ids the jobs must carry (`spaceId`, `workbookId`, …), sent as they are.
    public var context: JSONObject = [:]

    public init(
        status: JobStatus? = nil, type: String? = nil, operation: String? = nil, source: String? = nil,
        parentId: String? = nil, excludeChildJobs: Bool? = nil, pageSize: Int? = nil, pageNumber: Int? = nil,
        sortDirection: String? = nil
    ) {
        self.status = status
        self.type = type
        self.operation = operation
        self.source = source
        self.parentId = parentId
        self.excludeChildJobs = excludeChildJobs
        self.pageSize = pageSize
        self.pageNumber = pageNumber
        self.sortDirection = sortDirection
    }

    var json: JSONObject {
        var o = context
        if let status { o["status"] = .string(status.rawValue) }
        if let type { o["type"] = .string(type) }
        if let operation { o["operation"] = .string(operation) }
        if let source { o["source"] = .string(source) }
        if let parentId { o["parentId"] = .string(parentId) }
        if let excludeChildJobs { o["excludeChildJobs"] = .bool(excludeChildJobs) }
        if let pageSize { o["pageSize"] = .int(Int64(pageSize)) }
        if let pageNumber { o["pageNumber"] = .int(Int64(pageNumber)) }
        if let sortDirection { o["sortDirection"] = .string(sortDirection) }
        if let priority { o["priority"] = .int(Int64(priority)) }
        if let sortField { o["sortField"] = .string(sortField) }
        return o
    }
}

/// One page of `jobs.list`.
public struct JobPage: Sendable, Hashable {
    public var data: [Job]
    public var currentPage: Int
    public var pageCount: Int
    public var totalCount: Int
}

/// A slice of the event log (`events.list`).
public struct EventPage: Sendable, Hashable {
    /// Events after `since`, ascending.
    public var events: [Event]
    /// The broker's latest seq, whatever the filter.
    public var lastSeq: Int64
    /// The store's identity.
    public var epoch: String
    /// The last seq the page examined, matching or not: the next page starts with `since: nextSince`.
    /// A page ends at `limit`, at a byte budget or after a bounded scan, so it may stop short of `lastSeq`
    /// even when it has fewer events than `limit`, or none at all.
    public var nextSince: Int64

    /// Whether the page reached the broker's latest seq: there is nothing more to page through.
    public var isComplete: Bool { nextSince >= lastSeq }
}

/// `broker.info`.
public struct BrokerInfo: Sendable, Hashable {
    public var version: String
    public var epoch: String
    /// The latest event's seq (0 before any event).
    public var seq: Int64
    public var startedAt: Timestamp?
    /// The number of jobs in each status.
    public var jobs: [JobStatus: Int]
}

extension JobPage {
    init(json value: JSONValue) throws {
        let r = try FieldReader(value, path: "")
        data = try (r.array("data") ?? []).map { try Job(json: $0) }
        let pagination = try r.object("pagination")
        currentPage = Int(try pagination?.int("currentPage") ?? 1)
        pageCount = Int(try pagination?.int("pageCount") ?? 0)
        totalCount = Int(try pagination?.int("totalCount") ?? Int64(data.count))
    }
}

extension EventPage {
    init(json value: JSONValue) throws {
        let r = try FieldReader(value, path: "")
        events = try (r.array("events") ?? []).map { try Event(json: $0) }
        lastSeq = try r.int("lastSeq") ?? 0
        epoch = try r.string("epoch") ?? ""
        // A broker without `nextSince` examined every event up to the last one it returned.
        nextSince = try r.int("nextSince") ?? events.last?.seq ?? lastSeq
    }
}

extension BrokerInfo {
    init(json value: JSONValue) throws {
        let r = try FieldReader(value, path: "")
        version = try r.string("version") ?? ""
        epoch = try r.string("epoch") ?? ""
        seq = try r.int("seq") ?? 0
        startedAt = try r.timestamp("startedAt")
        var counts: [JobStatus: Int] = [:]
        if let jobs = try r.object("jobs") {
            for (key, value) in jobs.object {
                if let status = JobStatus(rawValue: key), let count = value.intValue { counts[status] = Int(count) }
            }
        }
        jobs = counts
    }
}
