public import Logging
import Synchronization

/// An event as a handler sees it, with helpers that act on its job.
public struct ListenerEvent: Sendable {
    /// The envelope as received (or as rebuilt from the store for a job found waiting).
    public let event: Event
    /// True when the event came from replay (`events.list`, or a job found `ready` in the store).
    public let isReplay: Bool
    /// The client the listener talks to the broker with, as this listener.
    public let client: JobsClient
    let runtime: Runtime?
    var leases: LeaseKeeper? { runtime?.leases }
    /// The attempt this event's handlers took with `ack`, shared by the copies of the event.
    private let acked = AckedAttempt()

    init(event: Event, isReplay: Bool, client: JobsClient, runtime: Runtime?) {
        self.event = event
        self.isReplay = isReplay
        self.client = client
        self.runtime = runtime
    }

    /// The attempt the helpers work on: the one `ack` took, else the one a `job:ready` event announced.
    /// The broker answers a call from an attempt that is over with `lease_expired`.
    var readyAttempt: Int? {
        acked.value ?? (topic == "job:ready" ? event.payload["attempt"]?.intValue.map { Int($0) } : nil)
    }

    /// Whether `ack` found the job already taken by another listener or another copy of this one.
    var takenElsewhere: Bool { acked.takenElsewhere }

    /// Whether the handlers took the job's lease through ``ack(progress:info:estimatedCompletionAt:)``.
    var tookLease: Bool { acked.value != nil }

    /// The listener's logger, with the event's topic, seq and job in its metadata.
    public var logger: Logger {
        var logger = runtime?.logger ?? client.logger
        logger[metadataKey: "event.topic"] = "\(topic)"
        if let seq { logger[metadataKey: "event.seq"] = "\(seq)" }
        if let jobId { logger[metadataKey: "job.id"] = "\(jobId)" }
        return logger
    }

    /// `job:ready`, `job:updated`, …
    public var topic: String { event.topic }
    /// The ids that apply: `jobId`, `spaceId`, `workbookId`, …
    public var context: JSONObject { event.context }
    public var payload: JSONObject { event.payload }
    /// The broker-wide sequence number; nil for a job found waiting in the store.
    public var seq: Int64? { event.seq }
    /// The job's name, `type:operation`, for job events.
    public var jobName: String? { event.payload["job"]?.stringValue }
    /// The job's id, for job events.
    public var jobId: String? { event.context["jobId"]?.stringValue }
    /// The job's `input`.
    public var input: JSONValue? { event.payload["input"] }

    private func requireJobId() throws -> String {
        guard let jobId else { throw ProtocolError(.invalidParams, "the \(topic) event has no job", field: "jobId") }
        return jobId
    }

    /// Reads the event's job.
    @_optimize(none)  // Swift 6.3 crashes splitting these coroutines when optimized
    public func job() async throws -> Job {
        try await client.get(jobId: try requireJobId())
    }

    /// Takes the job (`jobs.ack`); the listener then renews its lease until it is completed, failed or
    /// released through this event.
    /// - Throws: ``ProtocolError/Code/conflict`` when another listener has it.
    @discardableResult
    @_optimize(none)  // Swift 6.3 crashes splitting these coroutines when optimized
    public func ack(progress: Double? = nil, info: String? = nil, estimatedCompletionAt: Timestamp? = nil)
        async throws -> Job
    {
        let jobId = try requireJobId()
        let job: Job
        do {
            job = try await client.ack(
                jobId: jobId, progress: progress, info: info, estimatedCompletionAt: estimatedCompletionAt,
                attempt: acked.value)
        } catch let error as ProtocolError
            where acked.value == nil && topic == "job:ready"
            && [.conflict, .leaseExpired, .invalidTransition].contains(error.code)
        {
            // Another listener, or another copy of this one, took the job first (and may have ended it).
            acked.takenElsewhere = true
            throw error
        }
        acked.value = job.attempt
        leases?.hold(job)
        return job
    }

    /// Reports progress, info or an estimated completion time (`jobs.update`).
    @discardableResult
    @_optimize(none)  // Swift 6.3 crashes splitting these coroutines when optimized
    public func update(
        progress: Double? = nil, info: String? = nil, estimatedCompletionAt: Timestamp? = nil,
        metadata: JSONValue? = nil
    ) async throws -> Job {
        try await client.update(
            jobId: try requireJobId(), progress: progress, info: info, estimatedCompletionAt: estimatedCompletionAt,
            metadata: metadata, attempt: readyAttempt)
    }

    /// Completes the job (`jobs.complete`).
    @discardableResult
    @_optimize(none)  // Swift 6.3 crashes splitting these coroutines when optimized
    public func complete(outcome: Outcome? = nil, info: String? = nil) async throws -> Job {
        let jobId = try requireJobId()
        leases?.drop(jobId, attempt: readyAttempt)
        return try await client.complete(jobId: jobId, outcome: outcome, info: info, attempt: readyAttempt)
    }

    /// Fails the job (`jobs.fail`).
    @discardableResult
    @_optimize(none)  // Swift 6.3 crashes splitting these coroutines when optimized
    public func fail(outcome: Outcome? = nil, info: String? = nil) async throws -> Job {
        let jobId = try requireJobId()
        leases?.drop(jobId, attempt: readyAttempt)
        return try await client.fail(jobId: jobId, outcome: outcome, info: info, attempt: readyAttempt)
    }

    /// Gives the job back unfinished, for another listener (`jobs.release`).
    @discardableResult
    @_optimize(none)  // Swift 6.3 crashes splitting these coroutines when optimized
    public func release(info: String? = nil) async throws -> Job {
        let jobId = try requireJobId()
        leases?.drop(jobId, attempt: readyAttempt)
        return try await client.release(jobId: jobId, info: info, attempt: readyAttempt)
    }

    /// Splits the job into `parts` parts (`jobs.split`); the job must be executing.
    @discardableResult
    @_optimize(none)  // Swift 6.3 crashes splitting these coroutines when optimized
    public func split(parts: Int, runInParallel: Bool = true) async throws -> [Job] {
        try await client.split(jobId: try requireJobId(), parts: parts, runInParallel: runInParallel)
    }

    /// Splits the job into one part per `partData` object (`jobs.split`).
    @discardableResult
    @_optimize(none)  // Swift 6.3 crashes splitting these coroutines when optimized
    public func split(partData: [JSONValue], runInParallel: Bool = true) async throws -> [Job] {
        try await client.split(jobId: try requireJobId(), partData: partData, runInParallel: runInParallel)
    }
}

extension Event {
    /// The `job:ready` event a job found waiting (or claimed) stands for.
    init(readyJob job: Job) {
        self.init(job: job, topic: "job:ready", id: "", seq: nil, epoch: nil, createdAt: job.updatedAt)
    }
}

/// The attempt an event's handlers acked; a reference, since handlers get copies of the event.
final class AckedAttempt: Sendable {
    private let attempt = Mutex<Int?>(nil)
    private let taken = Mutex(false)

    var value: Int? {
        get { attempt.withLock { $0 } }
        set { attempt.withLock { $0 = newValue } }
    }

    /// Whether the first ack found the job taken by another listener: that handler's error is no failure.
    var takenElsewhere: Bool {
        get { taken.withLock { $0 } }
        set { taken.withLock { $0 = newValue } }
    }
}
