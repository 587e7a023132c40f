package import JobwireProtocol

/// Where the broker's core keeps jobs, the event log, actions and its identity.
///
/// The core calls it synchronously from its own dedicated thread, and only from that thread: between
/// rounds it reads (a job not in memory, a page of `jobs.list`, a page of events), and at the end of a
/// round it writes everything the round changed in one ``commit(_:)``. An implementation over an
/// asynchronous driver (PostgreSQL through postgres-nio, say) may block that thread on its futures: no
/// other work shares it.
///
/// An implementation keeps what a committed batch wrote across a restart, and tells of damage it finds
/// by throwing ``StoreDamage``. How it stores (files, checksums, logs) is its own affair.
package protocol JobStore: AnyObject {
    /// The store's epoch (made with `newEpoch` once, when the store is new), the last seq it committed
    /// and the oldest seq it still holds (`seq + 1` when it holds none).
    func identity(newEpoch: () -> String) throws -> (epoch: String, seq: Int64, firstSeq: Int64)

    /// What the store found lost against its record of committed changes, when it was opened to accept
    /// such a loss: for the core to log before it marks the store as it is. Nil when nothing was lost.
    var lostChanges: String? { get }

    /// Records `seq` as the last seq of `epoch` that reached the store. It may lag a commit, never lead
    /// it; a store that cannot lose commits may do nothing.
    func markCommitted(epoch: String, seq: Int64)

    /// How many jobs there are of each status.
    func statusCounts() throws -> [JobStatus: Int]

    /// Every mounted action, in the order they were mounted.
    func actions() throws -> [Action]

    /// Every job that has not ended (not complete, failed or canceled).
    func activeJobs() throws -> [JobRecord]

    /// The job with `id`, nil when there is none.
    func job(id: String) throws -> JobRecord?

    /// The job created with the idempotency key `idempotencyKey`, nil when there is none.
    func job(idempotencyKey: String) throws -> JobRecord?

    /// The counts of a parent's parts by status.
    func partStatuses(parentId: String) throws -> [JobStatus: Int]

    /// A page of jobs as their JSON bodies, and how many match in all.
    func list(_ query: ListQuery) throws -> (jobs: [[UInt8]], total: Int)

    /// Events with seq above `since`, ascending, at most `limit`.
    func events(since: Int64, limit: Int) throws -> [StoredEvent]

    /// Writes every change of a round in one transaction: all of it or none of it.
    func commit(_ batch: StoreBatch) throws

    /// Lets go of the store; nothing is called after.
    func close()
}

/// A job as the broker keeps it: the wire job plus what only the broker needs.
package struct JobRecord: Sendable {
    package var job: Job
    /// Every listener that held this job's lease before; their late calls get `lease_expired`.
    package var formerOwners: [String] = []
    package var idempotencyKey: String?
    /// A fingerprint of the create params, to tell a retried create from a reused key.
    package var idempotencyHash: String?
    /// The status of the job's row in the store, nil when it has none. A change to a stored job is an
    /// UPDATE, which leaves the other indexes be, and leaves the status index be too when the status is
    /// the stored one (a progress update).
    package var storedStatus: JobStatus?
    /// The job's JSON as last written for a reply, when the job has not changed since: the commit stores it
    /// instead of encoding the job again.
    package var body: [UInt8]?

    package init(
        job: Job, formerOwners: [String] = [], idempotencyKey: String? = nil, idempotencyHash: String? = nil,
        storedStatus: JobStatus? = nil, body: [UInt8]? = nil
    ) {
        self.job = job
        self.formerOwners = formerOwners
        self.idempotencyKey = idempotencyKey
        self.idempotencyHash = idempotencyHash
        self.storedStatus = storedStatus
        self.body = body
    }

    /// A job as a store read it back: its JSON body and the columns beside it (`formerOwners` joined by
    /// newlines, as ``JobRow`` writes them). The store is named in the damage thrown for a body that is not a job.
    package init(
        storedBody body: [UInt8], id: String, formerOwners: String?, idempotencyKey: String?,
        idempotencyHash: String?, store: String
    ) throws {
        let job: Job
        do {
            job = try Job(json: try JSONCodec.parse(body))
        } catch {
            throw StoreDamage(description: "job \(id) in the store \(store) is damaged: \(error)")
        }
        self.init(
            job: job, formerOwners: formerOwners.map { $0.split(separator: "\n").map(String.init) } ?? [],
            idempotencyKey: idempotencyKey, idempotencyHash: idempotencyHash, storedStatus: job.status)
    }

    /// Keeps `bytes` as the body to store when `job` is this record's current state (in place: no copy
    /// of the record).
    package mutating func keep(body bytes: [UInt8], of job: Job) {
        if body == nil, self.job == job { body = bytes }
    }
}

/// One event of the log.
package struct StoredEvent: Sendable {
    package var seq: Int64
    package var topic: String
    package var body: [UInt8]

    package init(seq: Int64, topic: String, body: [UInt8]) {
        self.seq = seq
        self.topic = topic
        self.body = body
    }
}

/// What `jobs.list` asks the store for.
package struct ListQuery {
    package var statuses: [JobStatus] = []
    package var type: String?
    package var operation: String?
    package var source: String?
    package var parentId: String?
    package var excludeChildJobs = false
    package var pageSize = 20
    package var pageNumber = 1
    package var descending = false
    /// Only jobs of this priority.
    package var priority: Int?
    /// Sort by priority, then `createdAt` and `id` (all in the one direction), instead of by `createdAt`.
    package var sortByPriority = false
    /// Context ids the job must carry (`spaceId`, …): keys from ``JobContext/keys``.
    package var context: [(key: String, value: String)] = []

    package init() {}
}

/// A job's row as a commit writes it: the columns, not the whole job (a copy of a ``Job`` retains
/// every one of its strings and values).
package struct JobRow {
    package var id: String
    package var status: JobStatus
    package var storedStatus: JobStatus?
    package var type: String
    package var operation: String
    package var source: String
    package var parentId: String?
    package var createdAt: Timestamp
    /// Never changes after create: only an insert writes it.
    package var priority: Int
    package var formerOwners: String?
    package var idempotencyKey: String?
    package var idempotencyHash: String?
    package var body: [UInt8]
    /// The job's context ids, for ``JobStore/list(_:)``'s filters; only for a job not stored yet (they
    /// never change).
    package var context: [(name: String, value: String)] = []

    package init(_ record: borrowing JobRecord) {
        id = record.job.id
        status = record.job.status
        storedStatus = record.storedStatus
        type = record.job.type
        operation = record.job.operation
        source = record.job.source
        parentId = record.job.parentId
        createdAt = record.job.createdAt
        priority = record.job.priority
        formerOwners = record.formerOwners.isEmpty ? nil : record.formerOwners.joined(separator: "\n")
        idempotencyKey = record.idempotencyKey
        idempotencyHash = record.idempotencyHash
        body = record.body ?? record.job.jsonBytes
        if record.storedStatus == nil {
            record.job.context.visit { name, value in context.append(("\(name)", value)) }
        }
    }
}

/// Everything one group commit writes, in one transaction.
package struct StoreBatch {
    package var jobs: [JobRow] = []
    package var deletedJobs: [String] = []
    package var events: [StoredEvent] = []
    package var actions: [Action] = []
    package var deletedActions: [String] = []
    /// The last seq the batch's events reach: the store's seq once it is written.
    package var seq: Int64 = 0
    /// Delete events at or below this seq (retention).
    package var pruneThrough: Int64?

    package init() {}

    package var isEmpty: Bool {
        jobs.isEmpty && deletedJobs.isEmpty && events.isEmpty && actions.isEmpty && deletedActions.isEmpty
            && pruneThrough == nil
    }
}

/// The store could not be opened or written.
package struct StoreError: Error, CustomStringConvertible {
    package var message: String
    package var description: String { message }

    package init(message: String) { self.message = message }
}

/// A row of the store that is not what the broker wrote: a flipped bit, a torn write.
package struct StoreDamage: Error, CustomStringConvertible {
    package var description: String

    package init(description: String) { self.description = description }
}
