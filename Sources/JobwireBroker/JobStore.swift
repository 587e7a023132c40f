import Foundation
import GRDB
import JobwireProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// A job as the broker keeps it: the wire job plus what only the broker needs.
struct JobRecord: Sendable {
    var job: Job
    /// Every listener that held this job's lease before; their late calls get `lease_expired`.
    var formerOwners: [String] = []
    var idempotencyKey: String?
    /// A fingerprint of the create params, to tell a retried create from a reused key.
    var idempotencyHash: String?
    /// Whether the store has a row for it: then a change is an UPDATE, which leaves the other indexes be.
    var isStored = false
}

/// One event row of the log.
struct StoredEvent: Sendable {
    var seq: Int64
    var topic: String
    var body: [UInt8]
}

/// The embedded SQLite store: jobs, the event log, actions and the broker's identity.
///
/// Only the broker's own thread uses it, synchronously: GRDB's `DatabaseQueue` serializes access on its
/// own dispatch queue, never on Swift's cooperative pool.
final class JobStore: @unchecked Sendable {
    // @unchecked Sendable: DatabaseQueue is Sendable; the class holds nothing else mutable.
    let database: DatabaseQueue

    /// Opens (and creates or migrates) the store.
    /// - Parameters:
    ///   - directory: the folder of `jobwire.sqlite`; `nil` for an in-memory store.
    ///   - fsync: `synchronous=FULL` when true, `NORMAL` otherwise (WAL keeps both crash-safe).
    init(directory: String?, fsync: Bool) throws {
        var configuration = Configuration()
        configuration.label = "jobwire"
        configuration.prepareDatabase { db in
            if db.configuration.readonly == false {
                try db.execute(sql: "PRAGMA synchronous = \(fsync ? "FULL" : "NORMAL")")
            }
        }
        if let directory {
            try JobStore.makeDirectory(directory)
            let path = directory.hasSuffix("/") ? directory + "jobwire.sqlite" : directory + "/jobwire.sqlite"
            database = try DatabaseQueue(path: path, configuration: configuration)
            try database.writeWithoutTransaction { db in
                // The broker is the store's only user: exclusive locking keeps the WAL index in memory and
                // spares every transaction its fcntl locks, which cost more than the writes of a small batch.
                // It also keeps a second broker from opening the same store.
                try db.execute(sql: "PRAGMA locking_mode = EXCLUSIVE")
                try db.execute(sql: "PRAGMA journal_mode = WAL")
            }
        } else {
            database = try DatabaseQueue(configuration: configuration)
        }
        try migrate()
    }

    private static func makeDirectory(_ path: String) throws {
        var isDir = stat()
        if stat(path, &isDir) == 0 { return }
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw StoreError(message: "cannot create the data folder \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    private func migrate() throws {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                    CREATE TABLE jobs (
                        id TEXT PRIMARY KEY NOT NULL,
                        status TEXT NOT NULL,
                        type TEXT NOT NULL,
                        operation TEXT NOT NULL,
                        source TEXT NOT NULL,
                        parentId TEXT,
                        createdAt INTEGER NOT NULL,
                        idempotencyKey TEXT UNIQUE,
                        idempotencyHash TEXT,
                        formerOwners TEXT,
                        body BLOB NOT NULL
                    );
                    CREATE INDEX jobs_by_created ON jobs (createdAt, id);
                    CREATE INDEX jobs_by_status ON jobs (status, createdAt, id);
                    CREATE INDEX jobs_by_parent ON jobs (parentId, createdAt, id);
                    CREATE TABLE events (seq INTEGER PRIMARY KEY NOT NULL, topic TEXT NOT NULL, body BLOB NOT NULL);
                    CREATE TABLE actions (id TEXT PRIMARY KEY NOT NULL, domain TEXT NOT NULL,
                                          resourceId TEXT NOT NULL, body BLOB NOT NULL);
                    CREATE INDEX actions_by_resource ON actions (domain, resourceId);
                    """)
        }
        // A synchronous client pays for every page its one-request transaction writes to the WAL (a whole
        // page each), so v2 writes fewer: the jobs table is keyed by id itself (no separate key index),
        // and the parent index holds parts only.
        migrator.registerMigration("v2: fewer pages per change") { db in
            try db.execute(
                sql: """
                    CREATE TABLE jobs2 (
                        id TEXT PRIMARY KEY NOT NULL,
                        status TEXT NOT NULL,
                        type TEXT NOT NULL,
                        operation TEXT NOT NULL,
                        source TEXT NOT NULL,
                        parentId TEXT,
                        createdAt INTEGER NOT NULL,
                        idempotencyKey TEXT,
                        idempotencyHash TEXT,
                        formerOwners TEXT,
                        body BLOB NOT NULL
                    ) WITHOUT ROWID;
                    INSERT INTO jobs2 SELECT id, status, type, operation, source, parentId, createdAt, idempotencyKey,
                        idempotencyHash, formerOwners, body FROM jobs;
                    DROP TABLE jobs;
                    ALTER TABLE jobs2 RENAME TO jobs;
                    CREATE INDEX jobs_by_created ON jobs (createdAt, id);
                    CREATE INDEX jobs_by_status ON jobs (status, createdAt, id);
                    CREATE INDEX jobs_by_parent ON jobs (parentId, createdAt, id) WHERE parentId IS NOT NULL;
                    CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs (idempotencyKey) WHERE idempotencyKey IS NOT NULL;
                    """)
        }
        try migrator.migrate(database)
    }

    // MARK: Identity

    /// The store's epoch (made once, when the store is new) and the last seq it committed.
    func identity(newEpoch: () -> String) throws -> (epoch: String, seq: Int64, firstSeq: Int64) {
        try database.write { db in
            let epoch: String
            if let stored = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'epoch'") {
                epoch = stored
            } else {
                epoch = newEpoch()
                try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('epoch', ?)", arguments: [epoch])
            }
            let metaSeq =
                try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'seq'").flatMap { Int64($0) } ?? 0
            let maxSeq = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM events") ?? 0
            let seq = max(metaSeq, maxSeq)
            let firstSeq = try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM events") ?? (seq + 1)
            return (epoch, seq, firstSeq)
        }
    }

    // MARK: Reads

    func activeJobs() throws -> [JobRecord] {
        try database.read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT body, formerOwners, idempotencyKey, idempotencyHash FROM jobs WHERE status NOT IN ('complete', 'failed', 'canceled') ORDER BY createdAt, id"
            ).map(JobStore.record)
        }
    }

    func job(id: String) throws -> JobRecord? {
        try database.read { db in
            try Row.fetchOne(
                db, sql: "SELECT body, formerOwners, idempotencyKey, idempotencyHash FROM jobs WHERE id = ?",
                arguments: [id]
            ).map(JobStore.record)
        }
    }

    func job(idempotencyKey: String) throws -> JobRecord? {
        try database.read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT body, formerOwners, idempotencyKey, idempotencyHash FROM jobs WHERE idempotencyKey = ?",
                arguments: [idempotencyKey]
            ).map(JobStore.record)
        }
    }

    private static func record(_ row: Row) throws -> JobRecord {
        let body: [UInt8] = Array(row["body"] as Data? ?? Data())
        let job = try Job(json: try JSONCodec.parse(body))
        let owners: String? = row["formerOwners"]
        return JobRecord(
            job: job,
            formerOwners: owners.map { $0.split(separator: "\n").map(String.init) } ?? [],
            idempotencyKey: row["idempotencyKey"],
            idempotencyHash: row["idempotencyHash"],
            isStored: true)
    }

    func statusCounts() throws -> [JobStatus: Int] {
        try database.read { db in
            var counts: [JobStatus: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT status, COUNT(*) AS n FROM jobs GROUP BY status") {
                if let status = JobStatus(wire: row["status"]) { counts[status] = row["n"] }
            }
            return counts
        }
    }

    /// The counts of a parent's parts by status.
    func partStatuses(parentId: String) throws -> [JobStatus: Int] {
        try database.read { db in
            var counts: [JobStatus: Int] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT status, COUNT(*) AS n FROM jobs WHERE parentId = ? GROUP BY status",
                arguments: [parentId])
            {
                if let status = JobStatus(wire: row["status"]) { counts[status] = row["n"] }
            }
            return counts
        }
    }

    struct ListQuery {
        var statuses: [JobStatus] = []
        var type: String?
        var operation: String?
        var source: String?
        var parentId: String?
        var excludeChildJobs = false
        var pageSize = 20
        var pageNumber = 1
        var descending = false
    }

    /// A page of jobs as their stored JSON bodies, and how many match in all.
    func list(_ query: ListQuery) throws -> (jobs: [[UInt8]], total: Int) {
        var clauses: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        if !query.statuses.isEmpty {
            clauses.append("status IN (\(query.statuses.map { _ in "?" }.joined(separator: ",")))")
            arguments += query.statuses.map { $0.rawValue }
        }
        for (column, value) in [("type", query.type), ("operation", query.operation), ("source", query.source)] {
            if let value {
                clauses.append("\(column) = ?")
                arguments.append(value)
            }
        }
        if let parentId = query.parentId {
            clauses.append("parentId = ?")
            arguments.append(parentId)
        } else if query.excludeChildJobs {
            clauses.append("parentId IS NULL")
        }
        let whereClause = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let order = query.descending ? "DESC" : "ASC"
        return try database.read { db in
            let total =
                try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM jobs \(whereClause)", arguments: StatementArguments(arguments)) ?? 0
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT body FROM jobs \(whereClause) ORDER BY createdAt \(order), id \(order) LIMIT ? OFFSET ?",
                arguments: StatementArguments(arguments + [query.pageSize, (query.pageNumber - 1) * query.pageSize]))
            return (rows.map { Array($0["body"] as Data? ?? Data()) }, total)
        }
    }

    /// Events with seq above `since`, ascending, at most `limit`.
    func events(since: Int64, limit: Int) throws -> [StoredEvent] {
        try database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT seq, topic, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                arguments: [since, limit]
            ).map { row in
                StoredEvent(seq: row["seq"], topic: row["topic"], body: Array(row["body"] as Data? ?? Data()))
            }
        }
    }

    func actions() throws -> [Action] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT body FROM actions ORDER BY rowid").map { row in
                try Action(json: try JSONCodec.parse(Array(row["body"] as Data? ?? Data())), path: "")
            }
        }
    }

    // MARK: Writes

    /// Everything one group commit writes, in one transaction.
    struct Batch {
        var jobs: [JobRecord] = []
        var deletedJobs: [String] = []
        var events: [StoredEvent] = []
        var actions: [Action] = []
        var deletedActions: [String] = []
        var seq: Int64 = 0
        /// Delete events at or below this seq (retention).
        var pruneThrough: Int64?

        var isEmpty: Bool {
            jobs.isEmpty && deletedJobs.isEmpty && events.isEmpty && actions.isEmpty && deletedActions.isEmpty
                && pruneThrough == nil
        }
    }

    func commit(_ batch: Batch) throws {
        guard !batch.isEmpty else { return }
        try database.write { db in
            if !batch.deletedJobs.isEmpty {
                let delete = try db.cachedStatement(sql: "DELETE FROM jobs WHERE id = ?")
                for id in batch.deletedJobs { try delete.execute(arguments: [id]) }
            }
            if !batch.jobs.isEmpty {
                let insert = try db.cachedStatement(
                    sql: """
                        INSERT INTO jobs (id, status, type, operation, source, parentId, createdAt,
                            idempotencyKey, idempotencyHash, formerOwners, body)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """)
                let update = try db.cachedStatement(
                    sql: "UPDATE jobs SET status = ?, formerOwners = ?, body = ? WHERE id = ?")
                for record in batch.jobs {
                    let job = record.job
                    let body = Data(job.jsonBytes)
                    let owners = record.formerOwners.isEmpty ? nil : record.formerOwners.joined(separator: "\n")
                    if record.isStored {
                        try update.execute(arguments: [job.status.rawValue, owners, body, job.id])
                    } else {
                        try insert.execute(arguments: [
                            job.id, job.status.rawValue, job.type, job.operation, job.source, job.parentId,
                            job.createdAt.milliseconds, record.idempotencyKey, record.idempotencyHash, owners, body,
                        ])
                    }
                }
            }
            if !batch.events.isEmpty {
                let insert = try db.cachedStatement(sql: "INSERT INTO events (seq, topic, body) VALUES (?, ?, ?)")
                for event in batch.events {
                    try insert.execute(arguments: [event.seq, event.topic, Data(event.body)])
                }
            }
            for id in batch.deletedActions {
                try db.execute(sql: "DELETE FROM actions WHERE id = ?", arguments: [id])
            }
            for action in batch.actions {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO actions (id, domain, resourceId, body) VALUES (?, ?, ?, ?)",
                    arguments: [
                        action.id, action.domain, action.resourceId, Data(JSONCodec.encode(.object(action.json))),
                    ])
            }
            if let through = batch.pruneThrough {
                try db.execute(sql: "DELETE FROM events WHERE seq <= ?", arguments: [through])
            }
        }
    }
}

/// The store could not be opened or written.
struct StoreError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
