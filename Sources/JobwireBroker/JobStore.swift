import CJobwireSupport
import Foundation
import GRDB
import GRDBSQLite
import JobwireCore
import JobwireProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// The embedded SQLite store: jobs, the event log, actions and the broker's identity.
///
/// Only the broker's own thread uses it, synchronously: GRDB's `DatabaseQueue` serializes access on its
/// own dispatch queue, never on Swift's cooperative pool.
final class SQLiteJobStore: JobStore, @unchecked Sendable {
    // @unchecked Sendable: DatabaseQueue is Sendable; the mark's file descriptor is written only by the
    // broker's thread, the store's one user.
    let database: DatabaseQueue
    /// The database file, for messages; nil in memory.
    let path: String?
    /// `jobwire.seq`: the last seq committed, kept beside the database so that a write-ahead log torn or
    /// damaged after a commit (SQLite then silently drops the commits past the damage) is noticed.
    private var mark: CommitMark?

    /// What the store lost against `jobwire.seq`, when it was opened with `acceptLostChanges` and had lost
    /// committed changes: for the broker to log before it marks the store as it is.
    private(set) var lostChanges: String?

    /// Opens (and creates or migrates) the store.
    /// - Parameters:
    ///   - directory: the folder of `jobwire.sqlite`; `nil` for an in-memory store.
    ///   - fsync: `synchronous=FULL` when true, `NORMAL` otherwise (WAL keeps both crash-safe).
    ///   - acceptLostChanges: open a store that holds less than `jobwire.seq` says was committed (or
    ///     nothing), setting ``lostChanges``, instead of refusing it.
    init(directory: String?, fsync: Bool, acceptLostChanges: Bool = false) throws {
        jobwire_sqlite_skip_memory_statistics()
        var storePath: String?
        var configuration = Configuration()
        configuration.label = "jobwire"
        configuration.prepareDatabase { db in
            if db.configuration.readonly == false {
                try db.execute(sql: "PRAGMA synchronous = \(fsync ? "FULL" : "NORMAL")")
            }
        }
        if let directory {
            try SQLiteJobStore.makeDirectory(directory)
            let folder = directory.hasSuffix("/") ? directory : directory + "/"
            let path = folder + "jobwire.sqlite"
            storePath = path
            try SQLiteJobStore.makeFilesPrivate(in: folder)
            do {
                database = try DatabaseQueue(path: path, configuration: configuration)
            } catch {
                throw StoreError(message: "cannot open the store \(path): \(error)")
            }
            try database.writeWithoutTransaction { db in
                // The broker is the store's only user: exclusive locking keeps the WAL index in memory and
                // spares every transaction its fcntl locks, which cost more than the writes of a small batch.
                // It also keeps a second broker from opening the same store.
                try db.execute(sql: "PRAGMA locking_mode = EXCLUSIVE")
                try db.execute(sql: "PRAGMA journal_mode = WAL")
                // SQLite's own checkpoint interval (1,000 pages) stays: a longer log (64 MB) saved a little CPU
                // under load, but every commit that grows the log file pays for its new blocks in the fsync,
                // and a fresh store's single creates took 3.9 ms instead of 0.3.
            }
        } else {
            database = try DatabaseQueue(configuration: configuration)
        }
        path = storePath
        do {
            if let storePath {
                mark = try CommitMark(path: storePath.dropLast("sqlite".count) + "seq")
                try checkIntegrity()
                // Before the migrations, which would write a fresh store's tables over a lost one.
                try checkCommitMark(acceptLoss: acceptLostChanges)
            }
            try migrate()
            if storePath != nil { try checkRows() }
        } catch let error as StoreError {
            // A store refused stays as it was found: no checkpoint of its log into it on close.
            database.writeWithoutTransaction { db in
                jobwire_sqlite_keep_wal_on_close(UnsafeMutableRawPointer(db.sqliteConnection))
            }
            throw error
        } catch {
            throw StoreError(message: "the store \(storePath ?? "in memory") cannot be read: \(error)")
        }
    }

    /// SQLite's integrity check (pages, and indexes against their tables): a damaged store is refused at start, with
    /// what SQLite found, instead of failing (or worse) later.
    private func checkIntegrity() throws {
        let problems = try database.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check(5)") }
        guard problems != ["ok"] else { return }
        throw StoreError(
            message:
                "the store \(path ?? "") is damaged (SQLite's integrity_check: \(problems.joined(separator: "; "))); "
                + "restore it from a backup")
    }

    /// Refuses a store that holds less than `jobwire.seq` says the broker committed: fewer seqs, another
    /// epoch, or nothing at all (its write-ahead log deleted or truncated before a checkpoint). With
    /// `acceptLoss`, records what is lost in ``lostChanges`` instead.
    private func checkCommitMark(acceptLoss: Bool) throws {
        guard let recorded = mark?.read(), recorded.seq > 0 else { return }
        let stored = try storedIdentity()
        let found: String
        if let epoch = stored.epoch, epoch != recorded.epoch {
            found = "the store is another one (epoch \(epoch), seq \(stored.seq))"
        } else if stored.epoch == nil {
            found = "the store is empty"
        } else if stored.seq < recorded.seq {
            found = "the store ends at seq \(stored.seq)"
        } else {
            return
        }
        let summary = "jobwire.seq says seq \(recorded.seq) of epoch \(recorded.epoch) was committed, but \(found)"
        guard acceptLoss else {
            throw StoreError(
                message: "the store \(path ?? "") lost committed changes: \(summary) (its write-ahead log "
                    + "jobwire.sqlite-wal is missing, torn or damaged). Put back jobwire.sqlite-wal or restore the "
                    + "folder from a backup, or start with --accept-lost-changes to go on with what is left")
        }
        let first = stored.epoch == recorded.epoch ? stored.seq + 1 : 1
        lostChanges = "\(summary): dropped seqs \(first)...\(recorded.seq) of epoch \(recorded.epoch)"
    }

    /// The epoch and last seq of the store as it is on disk, before any migration: no epoch when it holds
    /// none (a new store, or one whose every change was in a lost write-ahead log).
    private func storedIdentity() throws -> (epoch: String?, seq: Int64) {
        try database.read { db in
            guard try db.tableExists("meta") else { return (nil, 0) }
            let epoch = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'epoch'")
            var seq =
                try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'seq'").flatMap { Int64($0) } ?? 0
            if try db.tableExists("event_batches") {
                seq = max(seq, try Int64.fetchOne(db, sql: "SELECT MAX(lastSeq) FROM event_batches") ?? 0)
            }
            if try db.tableExists("events") {
                seq = max(seq, try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM events") ?? 0)
            }
            return (epoch, seq)
        }
    }

    /// Checks the checksum of every row of jobs, of the log and of actions at start, so that a changed byte
    /// stops the broker with the row's name instead of failing a read later. One statement per table, stepped
    /// in C (``jobwire_sqlite_check_row_checksums``): 1,000,000 job rows take about 0.3 s of CPU.
    private func checkRows() throws {
        try database.read { db in
            try checkRows(db, table: "jobs", sql: "SELECT id, status, crc, body FROM jobs") { first, _ in
                "the row of job \(first)"
            }
            try checkRows(
                db, table: "event_batches",
                sql: "SELECT CAST(firstSeq AS TEXT), CAST(lastSeq AS TEXT), crc, body FROM event_batches"
            ) { first, last in "the row of events \(first)...\(last)" }
            try checkRows(
                db, table: "actions", sql: "SELECT id, domain || ' ' || resourceId, crc, body FROM actions"
            ) { id, _ in "the row of action \(id)" }
        }
    }

    private func checkRows(
        _ db: Database, table: String, sql: String, name: (String, String) -> String
    ) throws {
        let statement = try db.makeStatement(sql: sql)
        let s = statement.sqliteStatement
        while true {
            let code = jobwire_sqlite_check_row_checksums(UnsafeMutableRawPointer(s))
            if code == SQLITE_DONE { return }
            guard code == SQLITE_ROW else {
                throw StoreError(
                    message: "the store \(path ?? "") is damaged: SQLite could not read its \(table) table "
                        + "(\(String(cString: sqlite3_errstr(code))): \(db.lastErrorMessage ?? "")); restore it "
                        + "from a backup")
            }
            let first = sqlite3_column_text(s, 0).map { String(cString: $0) } ?? ""
            let second = sqlite3_column_text(s, 1).map { String(cString: $0) } ?? ""
            throw StoreError(
                message: "the store \(path ?? "") is damaged: \(name(first, second)) does not match its checksum; "
                    + "restore it from a backup")
        }
    }

    /// Creates the data folder, and the folders above it that are missing, readable by this user only (0700). A
    /// folder that exists keeps its permissions: the store's files in it are 0600 (``makeFilesPrivate(in:)``),
    /// so others can at most see their names, and the folder may be one the operator shares on purpose.
    private static func makeDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw StoreError(message: "the data folder \(path) is a file") }
            return
        }
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw StoreError(message: "cannot create the data folder \(path): \(error.localizedDescription)")
        }
    }

    /// Makes the store's files readable and writable by this user only (0600), as every job's input is in
    /// them: creates the database file so (SQLite gives its write-ahead log and shared-memory files the
    /// database file's permissions) and tightens the files of a store made before with wider ones.
    private static func makeFilesPrivate(in folder: String) throws {
        let database = folder + "jobwire.sqlite"
        let fd = open(database, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError(message: "cannot open the store \(database): \(String(cString: strerror(errno)))")
        }
        closeDescriptor(fd)
        for name in ["jobwire.sqlite", "jobwire.sqlite-wal", "jobwire.sqlite-shm", "jobwire.seq"] {
            var info = stat()
            if stat(folder + name, &info) == 0, info.st_mode & 0o077 != 0 { _ = chmod(folder + name, 0o600) }
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
        // v3: a checksum of every row, so that a byte changed on disk is never served as data.
        migrator.registerMigration("v3: checksums") { db in
            try db.execute(
                sql: """
                    ALTER TABLE jobs ADD COLUMN crc INTEGER;
                    ALTER TABLE events ADD COLUMN crc INTEGER;
                    """)
        }
        // v4: the log is kept a commit to a row (`event_batches`): one insert per commit instead of one
        // per event, which took a tenth of the broker's time under load. Earlier events move over, a row
        // each, their checksums checked on the way (a damaged one stays damaged, under the new checksum).
        migrator.registerMigration("v4: event batches") { db in
            try db.execute(
                sql: """
                    CREATE TABLE event_batches (
                        lastSeq INTEGER PRIMARY KEY NOT NULL,
                        firstSeq INTEGER NOT NULL,
                        crc INTEGER NOT NULL,
                        body BLOB NOT NULL
                    );
                    """)
            let insert = try db.makeStatement(
                sql: "INSERT INTO event_batches (lastSeq, firstSeq, crc, body) VALUES (?, ?, ?, ?)")
            let rows = try Row.fetchCursor(db, sql: "SELECT seq, topic, crc, body FROM events ORDER BY seq")
            while let row = try rows.next() {
                let event = StoredEvent(
                    seq: row["seq"], topic: row["topic"], body: Array(row["body"] as Data? ?? Data()))
                let body = EventBatch.encode([event])
                var crc = EventBatch.checksum(firstSeq: event.seq, lastSeq: event.seq, body: body)
                if let stored: Int64 = row["crc"],
                    !Checksum.eventMatches(stored, seq: event.seq, topic: event.topic, body: event.body)
                {
                    crc ^= 1
                }
                try insert.execute(arguments: [event.seq, event.seq, crc, Data(body)])
            }
            try db.execute(sql: "DROP TABLE events")
        }
        // v5: actions carry a checksum too (of their id, domain and resource, and body).
        migrator.registerMigration("v5: action checksums") { db in
            try db.execute(sql: "ALTER TABLE actions ADD COLUMN crc INTEGER")
            let rows = try Row.fetchAll(db, sql: "SELECT id, domain, resourceId, body FROM actions")
            for row in rows {
                let id: String = row["id"]
                let crc = Checksum.action(
                    id: id, domain: row["domain"], resourceId: row["resourceId"],
                    body: Array(row["body"] as Data? ?? Data()))
                try db.execute(sql: "UPDATE actions SET crc = ? WHERE id = ?", arguments: [crc, id])
            }
        }
        // v6: every jobs.list filter reads an index, so that no list scans the whole table while every
        // other client waits: the name and the source get indexes, and the context ids (inside the job's
        // JSON) a table of their own, written when a job is inserted.
        migrator.registerMigration("v6: list filters indexed") { db in
            try db.execute(
                sql: """
                    CREATE INDEX jobs_by_name ON jobs (type, operation, createdAt, id);
                    CREATE INDEX jobs_by_source ON jobs (source, createdAt, id);
                    CREATE TABLE job_contexts (
                        name TEXT NOT NULL, value TEXT NOT NULL, createdAt INTEGER NOT NULL, jobId TEXT NOT NULL,
                        PRIMARY KEY (name, value, createdAt, jobId)) WITHOUT ROWID;
                    CREATE INDEX job_contexts_by_job ON job_contexts (jobId);
                    """)
            for name in JobContext.keys {
                try db.execute(
                    sql: """
                        INSERT INTO job_contexts (name, value, createdAt, jobId)
                        SELECT ?, json_extract(CAST(body AS TEXT), '$.' || ?), createdAt, id FROM jobs
                        WHERE json_extract(CAST(body AS TEXT), '$.' || ?) IS NOT NULL
                        """, arguments: [name, name, name])
            }
        }
        // v7: jobs.list filters and sorts by priority. Every job stored before has priority 0, and the
        // column's default gives it that without rewriting a row.
        migrator.registerMigration("v7: priority") { db in
            try db.execute(
                sql: """
                    ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
                    CREATE INDEX jobs_by_priority ON jobs (priority, createdAt, id);
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
            let maxSeq = try Int64.fetchOne(db, sql: "SELECT MAX(lastSeq) FROM event_batches") ?? 0
            let seq = max(metaSeq, maxSeq)
            let firstSeq = try Int64.fetchOne(db, sql: "SELECT MIN(firstSeq) FROM event_batches") ?? (seq + 1)
            return (epoch, seq, firstSeq)
        }
    }

    /// Closes the database: SQLite checkpoints the write-ahead log into the database file and removes it.
    func close() {
        try? database.close()
    }

    /// Records the last committed seq beside the store (not synced: it may lag, never lead).
    func markCommitted(epoch: String, seq: Int64) {
        mark?.write(epoch: epoch, seq: seq)
    }

    // MARK: Reads

    private static let recordColumns = "id, status, crc, body, formerOwners, idempotencyKey, idempotencyHash"

    func activeJobs() throws -> [JobRecord] {
        try database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(SQLiteJobStore.recordColumns) FROM jobs
                    WHERE status NOT IN ('complete', 'failed', 'canceled') ORDER BY createdAt, id
                    """
            ).map(record)
        }
    }

    func job(id: String) throws -> JobRecord? { try job(where: "id", is: id) }

    func job(idempotencyKey: String) throws -> JobRecord? { try job(where: "idempotencyKey", is: idempotencyKey) }

    private func job(where column: String, is value: String) throws -> JobRecord? {
        try database.read { db in
            try Row.fetchOne(
                db, sql: "SELECT \(SQLiteJobStore.recordColumns) FROM jobs WHERE \(column) = ?", arguments: [value]
            ).map(record)
        }
    }

    /// A job row's body, after checking it against the row's checksum.
    private func checkedBody(_ row: Row) throws -> [UInt8] {
        let id: String = row["id"]
        let body: [UInt8] = Array(row["body"] as Data? ?? Data())
        // Rows written before checksums (v3) have none.
        if let crc: Int64 = row["crc"], !Checksum.jobMatches(crc, id: id, status: row["status"], body: body) {
            throw StoreDamage(
                description: "job \(id) in the store \(path ?? "") is damaged: its checksum does not match")
        }
        return body
    }

    private func record(_ row: Row) throws -> JobRecord {
        try JobRecord(
            storedBody: try checkedBody(row), id: row["id"], formerOwners: row["formerOwners"],
            idempotencyKey: row["idempotencyKey"], idempotencyHash: row["idempotencyHash"], store: path ?? "in memory")
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
        for (key, value) in query.context where JobContext.keys.contains(key) {
            clauses.append("id IN (SELECT jobId FROM job_contexts WHERE name = ? AND value = ?)")
            arguments += [key, value]
        }
        if let priority = query.priority {
            clauses.append("priority = ?")
            arguments.append(priority)
        }
        let whereClause = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let direction = query.descending ? "DESC" : "ASC"
        let order =
            (query.sortByPriority ? "priority \(direction), " : "") + "createdAt \(direction), id \(direction)"
        return try database.read { db in
            let total =
                try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM jobs \(whereClause)", arguments: StatementArguments(arguments)) ?? 0
            let rows = try Row.fetchAll(
                db,
                sql:
                    "SELECT id, status, crc, body FROM jobs \(whereClause) ORDER BY \(order) LIMIT ? OFFSET ?",
                arguments: StatementArguments(arguments + [query.pageSize, (query.pageNumber - 1) * query.pageSize]))
            return (try rows.map(checkedBody), total)
        }
    }

    /// Events with seq above `since`, ascending, at most `limit`.
    func events(since: Int64, limit: Int) throws -> [StoredEvent] {
        try database.read { db in
            var events: [StoredEvent] = []
            let rows = try Row.fetchCursor(
                db, sql: "SELECT firstSeq, lastSeq, crc, body FROM event_batches WHERE lastSeq > ? ORDER BY lastSeq",
                arguments: [since])
            while events.count < limit, let row = try rows.next() {
                let firstSeq: Int64 = row["firstSeq"]
                let lastSeq: Int64 = row["lastSeq"]
                let body = Array(row["body"] as Data? ?? Data())
                let damaged = StoreDamage(
                    description: "events \(firstSeq)...\(lastSeq) in the store \(path ?? "") are damaged: "
                        + "their checksum does not match")
                guard row["crc"] == EventBatch.checksum(firstSeq: firstSeq, lastSeq: lastSeq, body: body),
                    let batch = EventBatch.decode(body, firstSeq: firstSeq),
                    batch.count == Int(lastSeq - firstSeq + 1)
                else { throw damaged }
                for event in batch where event.seq > since {
                    events.append(event)
                    if events.count == limit { break }
                }
            }
            return events
        }
    }

    func actions() throws -> [Action] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT id, domain, resourceId, crc, body FROM actions ORDER BY rowid").map {
                row in
                let id: String = row["id"]
                let body = Array(row["body"] as Data? ?? Data())
                guard
                    row["crc"]
                        == Checksum.action(id: id, domain: row["domain"], resourceId: row["resourceId"], body: body)
                else {
                    throw StoreDamage(
                        description: "action \(id) in the store \(path ?? "") is damaged: its checksum does not match")
                }
                return try Action(json: try JSONCodec.parse(body), path: "")
            }
        }
    }

    // MARK: Writes

    /// The event bytes after which a row of `event_batches` takes no more events.
    static let eventRowBytes = 4 << 20

    func commit(_ batch: StoreBatch) throws {
        guard !batch.isEmpty else { return }
        try database.write { db in
            if !batch.deletedJobs.isEmpty {
                let delete = try db.cachedStatement(sql: "DELETE FROM jobs WHERE id = ?")
                let deleteContext = try db.cachedStatement(sql: "DELETE FROM job_contexts WHERE jobId = ?")
                for id in batch.deletedJobs {
                    try delete.execute(arguments: [id])
                    try deleteContext.execute(arguments: [id])
                }
            }
            // The rows of every batch go through SQLite's own binding calls: GRDB's argument arrays boxed
            // each value and copied each body into a Data, a tenth of the broker's time under load.
            if !batch.jobs.isEmpty {
                let insert = try db.cachedStatement(
                    sql: """
                        INSERT INTO jobs (id, status, type, operation, source, parentId, createdAt,
                            idempotencyKey, idempotencyHash, formerOwners, crc, body, priority)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """)
                let update = try db.cachedStatement(
                    sql: "UPDATE jobs SET status = ?, formerOwners = ?, crc = ?, body = ? WHERE id = ?")
                // Without status in SET, SQLite leaves the status index alone.
                let updateBody = try db.cachedStatement(
                    sql: "UPDATE jobs SET formerOwners = ?, crc = ?, body = ? WHERE id = ?")
                for job in batch.jobs {
                    let body = job.body
                    let status = job.status.rawValue
                    let crc = Checksum.job(id: job.id, status: status, body: body)
                    let owners = job.formerOwners
                    if job.storedStatus == job.status {
                        let s = updateBody.sqliteStatement
                        bindText(s, 1, owners)
                        sqlite3_bind_int64(s, 2, crc)
                        bindText(s, 4, job.id)
                        try step(s, db, blob: body, at: 3)
                    } else if job.storedStatus != nil {
                        let s = update.sqliteStatement
                        bindText(s, 1, status)
                        bindText(s, 2, owners)
                        sqlite3_bind_int64(s, 3, crc)
                        bindText(s, 5, job.id)
                        try step(s, db, blob: body, at: 4)
                    } else {
                        let s = insert.sqliteStatement
                        bindText(s, 1, job.id)
                        bindText(s, 2, status)
                        bindText(s, 3, job.type)
                        bindText(s, 4, job.operation)
                        bindText(s, 5, job.source)
                        bindText(s, 6, job.parentId)
                        sqlite3_bind_int64(s, 7, job.createdAt.milliseconds)
                        bindText(s, 8, job.idempotencyKey)
                        bindText(s, 9, job.idempotencyHash)
                        bindText(s, 10, owners)
                        sqlite3_bind_int64(s, 11, crc)
                        sqlite3_bind_int64(s, 13, Int64(job.priority))
                        try step(s, db, blob: body, at: 12)
                        if !job.context.isEmpty {
                            let insertContext = try db.cachedStatement(
                                sql: "INSERT INTO job_contexts (name, value, createdAt, jobId) VALUES (?, ?, ?, ?)")
                            for (name, value) in job.context {
                                try insertContext.execute(
                                    arguments: [name, value, job.createdAt.milliseconds, job.id])
                            }
                        }
                    }
                }
            }
            // The batch's events, one row: their seqs run without a gap (the broker numbers them as it
            // makes them), and a gap starts a new row all the same.
            if !batch.events.isEmpty {
                var start = 0
                let insertEvents = try db.cachedStatement(
                    sql: "INSERT INTO event_batches (lastSeq, firstSeq, crc, body) VALUES (?, ?, ?, ?)")
                while start < batch.events.count {
                    let s = insertEvents.sqliteStatement
                    // A row ends at a gap in the seqs, or once it holds 4 MiB of events: SQLite refuses a
                    // value over 1 GB, and a round of big events must not come near it.
                    var end = start + 1
                    var bytes = batch.events[start].body.count
                    while end < batch.events.count && batch.events[end].seq == batch.events[end - 1].seq + 1
                        && bytes < SQLiteJobStore.eventRowBytes
                    {
                        bytes += batch.events[end].body.count
                        end += 1
                    }
                    let firstSeq = batch.events[start].seq
                    let lastSeq = batch.events[end - 1].seq
                    let body = EventBatch.encode(batch.events[start..<end])
                    sqlite3_bind_int64(s, 1, lastSeq)
                    sqlite3_bind_int64(s, 2, firstSeq)
                    sqlite3_bind_int64(s, 3, EventBatch.checksum(firstSeq: firstSeq, lastSeq: lastSeq, body: body))
                    try step(s, db, blob: body, at: 4)
                    start = end
                }
            }
            for id in batch.deletedActions {
                try db.execute(sql: "DELETE FROM actions WHERE id = ?", arguments: [id])
            }
            for action in batch.actions {
                let body = JSONCodec.encode(.object(action.json))
                let crc = Checksum.action(
                    id: action.id, domain: action.domain, resourceId: action.resourceId, body: body)
                try db.execute(
                    sql: "INSERT OR REPLACE INTO actions (id, domain, resourceId, crc, body) VALUES (?, ?, ?, ?, ?)",
                    arguments: [action.id, action.domain, action.resourceId, crc, Data(body)])
            }
            if let through = batch.pruneThrough {
                // Whole rows only: a row reaching past `through` stays until a later prune.
                try db.execute(sql: "DELETE FROM event_batches WHERE lastSeq <= ?", arguments: [through])
            }
        }
    }
}

/// The stored form of consecutive events: for each, its topic and envelope, each after its length
/// (4 bytes, little-endian). Their seqs are the row's `firstSeq` onwards.
enum EventBatch {
    static func encode(_ events: some Collection<StoredEvent>) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(events.reduce(0) { $0 + 8 + $1.topic.utf8.count + $1.body.count })
        func length(_ count: Int) {
            withUnsafeBytes(of: UInt32(count).littleEndian) { bytes.append(contentsOf: $0) }
        }
        for event in events {
            length(event.topic.utf8.count)
            bytes.append(contentsOf: event.topic.utf8)
            length(event.body.count)
            bytes.append(contentsOf: event.body)
        }
        return bytes
    }

    /// The events of a row, or nil when its bytes are not a whole batch.
    static func decode(_ bytes: [UInt8], firstSeq: Int64) -> [StoredEvent]? {
        var events: [StoredEvent] = []
        var index = 0
        func length() -> Int? {
            guard bytes.count - index >= 4 else { return nil }
            let value = bytes.withUnsafeBytes {
                UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: index, as: UInt32.self))
            }
            index += 4
            guard bytes.count - index >= Int(value) else { return nil }
            return Int(value)
        }
        while index < bytes.count {
            guard let topicLength = length() else { return nil }
            let topic = String(decoding: bytes[index..<(index + topicLength)], as: UTF8.self)
            index += topicLength
            guard let bodyLength = length() else { return nil }
            let body = Array(bytes[index..<(index + bodyLength)])
            index += bodyLength
            events.append(StoredEvent(seq: firstSeq + Int64(events.count), topic: topic, body: body))
        }
        return events
    }

    /// The row's checksum: CRC-32C of its seqs and bytes, tagged as ``Checksum`` tags it.
    static func checksum(firstSeq: Int64, lastSeq: Int64, body: [UInt8]) -> Int64 {
        Checksum.castagnoli(String(firstSeq), String(lastSeq), body)
    }
}

/// `jobwire.seq`: "<epoch> <seq>" of the last commit, rewritten in place after each one.
private final class CommitMark {
    private let fd: Int32

    init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError(message: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(fd) }

    func read() -> (epoch: String, seq: Int64)? {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 64, 0) }
        guard count > 0 else { return nil }
        let parts = String(decoding: buffer[0..<count], as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }
        )
        guard parts.count >= 2, let seq = Int64(parts[1]) else { return nil }
        return (String(parts[0]), seq)
    }

    func write(epoch: String, seq: Int64) {
        // Fixed width, so that a shorter number never leaves digits of a longer one behind.
        let text = epoch + " " + String(seq).leftPadded(to: 20) + "\n"
        _ = text.utf8CString.withUnsafeBytes { pwrite(fd, $0.baseAddress, text.utf8.count, 0) }
    }
}

/// `close(2)`, by a name no method of the store hides.
private func closeDescriptor(_ fd: Int32) { close(fd) }

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

// MARK: SQLite's binding calls, for the rows of a commit

/// SQLITE_TRANSIENT: SQLite copies the bytes before the call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

private func bindText(_ statement: OpaquePointer, _ index: Int32, _ value: String?) {
    guard var value else {
        sqlite3_bind_null(statement, index)
        return
    }
    value.withUTF8 { bytes in
        _ = sqlite3_bind_text(
            statement, index, UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(to: CChar.self),
            Int32(bytes.count), transient)
    }
}

/// Binds `blob` without a copy (SQLITE_STATIC) and runs the statement while the bytes are pinned; every
/// use of these statements binds all of their parameters again first.
private func step(_ statement: OpaquePointer, _ db: Database, blob: [UInt8], at index: Int32) throws {
    try blob.withUnsafeBytes { bytes in
        // A non-null pointer also for an empty body: SQLite binds NULL for a null one.
        let empty: UInt8 = 0
        try withUnsafePointer(to: empty) { fallback in
            _ = sqlite3_bind_blob64(
                statement, index, bytes.baseAddress ?? UnsafeRawPointer(fallback), sqlite3_uint64(bytes.count), nil)
            try step(statement, db)
        }
    }
}

/// Runs a bound statement to its end and resets it for the next row.
private func step(_ statement: OpaquePointer, _ db: Database) throws {
    let code = sqlite3_step(statement)
    sqlite3_reset(statement)
    guard code == SQLITE_DONE else {
        throw DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage)
    }
}
