import Foundation
package import JobwireCore
package import JobwireProtocol
package import Logging
import NIOCore
import PostgresNIO

/// The broker's state in PostgreSQL: the same tables as the embedded store, in a schema of their own,
/// and the active role (``ActiveRole``) that decides which of the brokers started on it serves.
///
/// Only the broker's thread calls it, synchronously (``JobStore``). A connection that fails is made again:
/// a read is repeated, and a commit whose outcome is unknown is looked up by the commit counter of the
/// `leader` row before it is repeated, so a PostgreSQL restart shorter than the failover timeout only
/// delays the broker. Every commit is fenced by the broker's term.
package final class PostgresJobStore: JobStore, @unchecked Sendable {
    // @unchecked Sendable: the broker's thread is its only user; the role keeps its own thread.
    let location: PostgresLocation
    let logger: Logger
    private let session: PostgresSession
    private let role: ActiveRole
    /// The `commits` counter of the leader row after this broker's last commit.
    private var commits: Int64 = 0
    private var schema: String { "\"\(location.schema)\"" }

    package var lostChanges: String? { nil }

    /// Connects, creates or migrates the schema, and waits until this broker is the active one.
    /// - Parameters:
    ///   - holder: this broker's name in the leader row (host, pid, endpoint).
    ///   - failoverTimeout: the lease of the active role; a standby takes over at most this long after
    ///     the active broker stops renewing it.
    ///   - standby: called once when another broker is active and this one waits.
    ///   - cancelled: asked while this broker waits as a standby; true stops the wait with an error.
    ///   - lost: called when this broker loses the role; it must stop serving at once (the broker exits).
    package init(
        location: PostgresLocation, holder: String, failoverTimeout: Duration, logger: Logger,
        standby: (String) -> Void, cancelled: @escaping @Sendable () -> Bool = { false },
        lost: @escaping @Sendable (String) -> Void
    ) throws {
        self.location = location
        self.logger = logger
        session = PostgresSession(location: location, name: "jobwire-broker \(holder)", logger: logger)
        role = ActiveRole(location: location, holder: holder, timeout: failoverTimeout, logger: logger, lost: lost)
        do {
            try session.connect()
            try migrate()
            try role.acquire(standby: standby, cancelled: cancelled)
            let row = try session.query("SELECT commits FROM \(unescaped: schema).leader WHERE id = 1")
            commits = try row.first?.decode(Int64.self) ?? 0
        } catch let error as PostgresStoreError {
            session.disconnect()
            throw StoreError(message: "PostgreSQL store \(location): \(error)")
        }
        role.startKeeping()
        logger.info("active on the PostgreSQL store", metadata: ["store": "\(location)", "term": "\(role.term)"])
    }

    /// The term this broker serves under.
    package var term: Int64 { role.term }

    // MARK: Schema

    /// The versioned migrations, each run once in its own transaction under an advisory lock, so that
    /// brokers starting together migrate once.
    static let migrations: [(version: Int, name: String, sql: String)] = [
        (
            1, "tables",
            """
            CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
            CREATE TABLE leader (
                id int PRIMARY KEY CHECK (id = 1), term bigint NOT NULL, holder text NOT NULL,
                expires_at timestamptz NOT NULL, seq bigint NOT NULL, commits bigint NOT NULL);
            INSERT INTO leader VALUES (1, 0, '', '-infinity', 0, 0);
            CREATE TABLE jobs (
                id text PRIMARY KEY, status text NOT NULL, type text NOT NULL, operation text NOT NULL,
                source text NOT NULL, parent_id text, created_at bigint NOT NULL, idempotency_key text,
                idempotency_hash text, former_owners text, body bytea NOT NULL);
            CREATE INDEX jobs_by_created ON jobs (created_at, id);
            CREATE INDEX jobs_by_status ON jobs (status, created_at, id);
            CREATE INDEX jobs_by_parent ON jobs (parent_id, created_at, id) WHERE parent_id IS NOT NULL;
            CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
            CREATE INDEX jobs_by_name ON jobs (type, operation, created_at, id);
            CREATE INDEX jobs_by_source ON jobs (source, created_at, id);
            CREATE TABLE job_contexts (
                name text NOT NULL, value text NOT NULL, created_at bigint NOT NULL, job_id text NOT NULL,
                PRIMARY KEY (name, value, created_at, job_id));
            CREATE INDEX job_contexts_by_job ON job_contexts (job_id);
            CREATE TABLE events (seq bigint PRIMARY KEY, topic text NOT NULL, body bytea NOT NULL);
            CREATE TABLE actions (
                id text PRIMARY KEY, position bigserial NOT NULL, domain text NOT NULL, resource_id text NOT NULL,
                body bytea NOT NULL);
            CREATE INDEX actions_by_position ON actions (position);
            """
        ),
        (
            // jobs.list filters and sorts by priority; every job stored before has priority 0.
            2, "priority",
            """
            ALTER TABLE jobs ADD COLUMN priority integer NOT NULL DEFAULT 0;
            CREATE INDEX jobs_by_priority ON jobs (priority, created_at, id);
            """
        ),
    ]

    private func migrate() throws {
        try session.execute(
            """
            BEGIN;
            SELECT pg_advisory_xact_lock(\(role.lockKey), -1);
            CREATE SCHEMA IF NOT EXISTS \(schema);
            CREATE TABLE IF NOT EXISTS \(schema).migrations (
                version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
            COMMIT;
            """)
        for migration in Self.migrations {
            try session.execute("BEGIN; SELECT pg_advisory_xact_lock(\(role.lockKey), -1)")
            do {
                let done = try session.query(
                    "SELECT 1 FROM \(unescaped: schema).migrations WHERE version = \(migration.version)")
                if done.rows.isEmpty {
                    try session.execute("SET LOCAL search_path TO \(schema); " + migration.sql)
                    try session.query(
                        "INSERT INTO \(unescaped: schema).migrations (version, name) VALUES (\(migration.version), \(migration.name))"
                    )
                    logger.info("migrated the PostgreSQL store", metadata: ["version": "\(migration.version)"])
                }
                try session.execute("COMMIT")
            } catch {
                try? session.execute("ROLLBACK")
                throw error
            }
        }
        let newest = try session.query("SELECT max(version) FROM \(unescaped: schema).migrations")
        if let version = try newest.first?.decode(Int?.self), version > Self.migrations.last!.version {
            throw PostgresStoreError.server(
                "the schema is at version \(version), newer than this broker knows (\(Self.migrations.last!.version)): "
                    + "run a newer jobwire")
        }
    }

    // MARK: Retries

    /// Runs a read, connecting again and repeating it while the connection fails. The role's keeper stops
    /// the broker when PostgreSQL stays out of reach longer than the failover timeout.
    private func read<T>(_ body: () throws -> T) throws -> T {
        var delay = Duration.milliseconds(50)
        while true {
            do {
                return try body()
            } catch PostgresStoreError.connection(let message) {
                guard !role.isLost else { throw StoreError(message: "this broker lost the active role") }
                logger.warning("PostgreSQL read failed; retrying", metadata: ["error": "\(message)"])
                Thread.sleep(forTimeInterval: delay.seconds)
                delay = min(delay * 2, .seconds(1))
            } catch let error as PostgresStoreError {
                throw StoreError(message: "PostgreSQL store \(location): \(error)")
            }
        }
    }

    // MARK: Identity

    package func identity(newEpoch: () -> String) throws -> (epoch: String, seq: Int64, firstSeq: Int64) {
        let candidate = newEpoch()
        return try read {
            try session.query(
                "INSERT INTO \(unescaped: schema).meta (key, value) VALUES ('epoch', \(candidate)) ON CONFLICT DO NOTHING"
            )
            let rows = try session.query(
                """
                SELECT (SELECT value FROM \(unescaped: schema).meta WHERE key = 'epoch'),
                    greatest((SELECT seq FROM \(unescaped: schema).leader WHERE id = 1),
                        (SELECT max(seq) FROM \(unescaped: schema).events)),
                    (SELECT min(seq) FROM \(unescaped: schema).events)
                """)
            guard let (epoch, seq, first) = try rows.first?.decode((String, Int64?, Int64?).self) else {
                throw PostgresStoreError.server("the store has no epoch")
            }
            let last = seq ?? 0
            return (epoch, last, first ?? last + 1)
        }
    }

    package func markCommitted(epoch: String, seq: Int64) {}

    /// Drops both connections without handing the role back, as a killed broker's end (for tests): a
    /// standby takes over, and a later call of this store meets the newer term.
    package func abandonForTesting() {
        role.abandon()
        session.disconnect()
    }

    /// Drops a store's schema with everything in it (for tests that make a schema each).
    package static func dropSchema(_ location: PostgresLocation) throws {
        let session = PostgresSession(location: location, name: "jobwire-drop", logger: Logger(label: "jobwire"))
        defer { session.disconnect() }
        try session.execute("DROP SCHEMA IF EXISTS \"\(location.schema)\" CASCADE")
    }

    package func close() {
        role.stop()
        session.disconnect()
    }

    // MARK: Reads

    private var recordColumns: String { "id, status, body, former_owners, idempotency_key, idempotency_hash" }

    private func records(_ result: PostgresQueryResult) throws -> [JobRecord] {
        try result.map { row in
            let (id, _, body, owners, key, hash) = try row.decode(
                (String, String, ByteBuffer, String?, String?, String?).self)
            return try JobRecord(
                storedBody: Array(body.readableBytesView), id: id, formerOwners: owners, idempotencyKey: key,
                idempotencyHash: hash, store: "\(location)")
        }
    }

    package func activeJobs() throws -> [JobRecord] {
        try records(
            read {
                try session.query(
                    """
                    SELECT \(unescaped: recordColumns) FROM \(unescaped: schema).jobs
                    WHERE status NOT IN ('complete', 'failed', 'canceled') ORDER BY created_at, id
                    """)
            })
    }

    package func job(id: String) throws -> JobRecord? {
        try records(
            read {
                try session.query("SELECT \(unescaped: recordColumns) FROM \(unescaped: schema).jobs WHERE id = \(id)")
            }
        ).first
    }

    package func job(idempotencyKey: String) throws -> JobRecord? {
        try records(
            read {
                try session.query(
                    """
                    SELECT \(unescaped: recordColumns) FROM \(unescaped: schema).jobs
                    WHERE idempotency_key = \(idempotencyKey)
                    """)
            }
        ).first
    }

    private func counts(_ result: PostgresQueryResult) throws -> [JobStatus: Int] {
        var counts: [JobStatus: Int] = [:]
        for row in result {
            let (status, count) = try row.decode((String, Int64).self)
            if let status = JobStatus(wire: status) { counts[status] = Int(count) }
        }
        return counts
    }

    package func statusCounts() throws -> [JobStatus: Int] {
        try counts(read { try session.query("SELECT status, count(*) FROM \(unescaped: schema).jobs GROUP BY status") })
    }

    package func partStatuses(parentId: String) throws -> [JobStatus: Int] {
        try counts(
            read {
                try session.query(
                    "SELECT status, count(*) FROM \(unescaped: schema).jobs WHERE parent_id = \(parentId) GROUP BY status"
                )
            })
    }

    package func list(_ query: ListQuery) throws -> (jobs: [[UInt8]], total: Int) {
        var clauses: [String] = []
        var bindings = PostgresBindings()
        func parameter(_ value: String) -> String {
            bindings.append(value)
            return "$\(bindings.count)"
        }
        if !query.statuses.isEmpty {
            clauses.append("status IN (\(query.statuses.map { parameter($0.rawValue) }.joined(separator: ",")))")
        }
        for (column, value) in [("type", query.type), ("operation", query.operation), ("source", query.source)] {
            if let value { clauses.append("\(column) = \(parameter(value))") }
        }
        if let parentId = query.parentId {
            clauses.append("parent_id = \(parameter(parentId))")
        } else if query.excludeChildJobs {
            clauses.append("parent_id IS NULL")
        }
        for (key, value) in query.context where JobContext.keys.contains(key) {
            clauses.append(
                "id IN (SELECT job_id FROM \(schema).job_contexts WHERE name = \(parameter(key)) AND value = \(parameter(value)))"
            )
        }
        if let priority = query.priority {
            bindings.append(Int64(priority))
            clauses.append("priority = $\(bindings.count)")
        }
        let whereClause = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let direction = query.descending ? "DESC" : "ASC"
        let order =
            (query.sortByPriority ? "priority \(direction), " : "") + "created_at \(direction), id \(direction)"
        let countBindings = bindings
        bindings.append(Int64(query.pageSize))
        bindings.append(Int64((query.pageNumber - 1) * query.pageSize))
        let count = bindings.count
        return try read {
            let total = try session.query(
                PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(schema).jobs \(whereClause)", binds: countBindings))
            let rows = try session.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT body FROM \(schema).jobs \(whereClause)
                        ORDER BY \(order) LIMIT $\(count - 1) OFFSET $\(count)
                        """, binds: bindings))
            return (
                try rows.map { Array(try $0.decode(ByteBuffer.self).readableBytesView) },
                Int(try total.first?.decode(Int64.self) ?? 0)
            )
        }
    }

    package func events(since: Int64, limit: Int) throws -> [StoredEvent] {
        try read {
            try session.query(
                """
                SELECT seq, topic, body FROM \(unescaped: schema).events WHERE seq > \(since) ORDER BY seq
                LIMIT \(Int64(limit))
                """
            ).map { row in
                let (seq, topic, body) = try row.decode((Int64, String, ByteBuffer).self)
                return StoredEvent(seq: seq, topic: topic, body: Array(body.readableBytesView))
            }
        }
    }

    package func actions() throws -> [Action] {
        try read {
            try session.query("SELECT body FROM \(unescaped: schema).actions ORDER BY position").map { row in
                try Action(
                    json: try JSONCodec.parse(Array(try row.decode(ByteBuffer.self).readableBytesView)), path: "")
            }
        }
    }

    // MARK: Commit

    /// Writes the batch in one transaction, fenced by this broker's term. When the connection fails, the
    /// commit counter tells whether the transaction landed; if it did not, it is written again.
    package func commit(_ batch: StoreBatch) throws {
        guard !batch.isEmpty else { return }
        var delay = Duration.milliseconds(50)
        while true {
            do {
                try write(batch)
                commits += 1
                return
            } catch PostgresStoreError.connection(let message) {
                logger.warning("PostgreSQL commit interrupted; checking it", metadata: ["error": "\(message)"])
            } catch let error as PostgresStoreError {
                try? session.execute("ROLLBACK")
                throw StoreError(message: "PostgreSQL store \(location): \(error)")
            }
            // The outcome is unknown: look it up on a new connection.
            while true {
                guard !role.isLost else { throw StoreError(message: "this broker lost the active role") }
                Thread.sleep(forTimeInterval: delay.seconds)
                delay = min(delay * 2, .seconds(1))
                do {
                    let row = try session.query(
                        "SELECT term, commits FROM \(unescaped: schema).leader WHERE id = 1", timeout: .seconds(5))
                    guard let (term, stored) = try row.first?.decode((Int64, Int64).self) else { continue }
                    if term != role.term {
                        role.lose("another broker took over (term \(term))")
                        throw StoreError(message: "this broker lost the active role")
                    }
                    if stored == commits + 1 {
                        commits = stored
                        return
                    }
                    break
                } catch PostgresStoreError.connection {
                    continue
                }
            }
        }
    }

    /// Writes a batch. Its job rows, contexts, events, deletions and the term fence go in one statement (one
    /// round trip, its own transaction): each part runs only when the fence's row was updated, and a fence that
    /// found a newer term returns no row. Actions, rarely in a batch, add statements around it in a transaction.
    private func write(_ batch: StoreBatch) throws {
        let withActions = !batch.actions.isEmpty || !batch.deletedActions.isEmpty
        if withActions { try session.execute("BEGIN") }
        let fenced = try session.query(mainStatement(batch))
        guard let stored = try fenced.first?.decode(Int64.self) else {
            if withActions { try? session.execute("ROLLBACK") }
            role.lose("another broker took over: a commit found a newer term")
            throw StoreError(message: "this broker lost the active role")
        }
        if stored != commits + 1 {
            logger.warning("commit counter moved", metadata: ["expected": "\(commits + 1)", "found": "\(stored)"])
            commits = stored - 1
        }
        guard withActions else { return }
        if !batch.deletedActions.isEmpty {
            try session.query("DELETE FROM \(unescaped: schema).actions WHERE id = ANY(\(batch.deletedActions))")
        }
        for action in batch.actions {
            let body = ByteBuffer(bytes: JSONCodec.encode(.object(action.json)))
            // A mounted action that replaces one goes to the end of the order, as a new one.
            try session.query(
                """
                INSERT INTO \(unescaped: schema).actions (id, domain, resource_id, body)
                VALUES (\(action.id), \(action.domain), \(action.resourceId), \(body))
                ON CONFLICT (id) DO UPDATE SET domain = EXCLUDED.domain, resource_id = EXCLUDED.resource_id,
                    body = EXCLUDED.body, position = EXCLUDED.position
                """)
        }
        try session.execute("COMMIT")
    }

    /// The fence, the job rows (new ones inserted, stored ones updated), their context ids, the events, the
    /// deleted jobs and the pruned events of a batch, as one statement.
    private func mainStatement(_ batch: StoreBatch) -> PostgresQuery {
        // Nullable text goes as "" for NULL and "=" + value otherwise: postgres-nio binds no optionals in arrays.
        func nullable(_ value: String?) -> String { value.map { "=" + $0 } ?? "" }
        let rows = batch.jobs
        var ids: [String] = []
        var statuses: [String] = []
        var types: [String] = []
        var operations: [String] = []
        var sources: [String] = []
        var parents: [String] = []
        var created: [Int64] = []
        var priorities: [Int64] = []
        var keys: [String] = []
        var hashes: [String] = []
        var owners: [String] = []
        var bodies: [ByteBuffer] = []
        var contextNames: [String] = []
        var contextValues: [String] = []
        var contextCreated: [Int64] = []
        var contextJobs: [String] = []
        for row in rows {
            ids.append(row.id)
            statuses.append(row.status.rawValue)
            types.append(row.type)
            operations.append(row.operation)
            sources.append(row.source)
            parents.append(nullable(row.parentId))
            created.append(row.createdAt.milliseconds)
            priorities.append(Int64(row.priority))
            keys.append(nullable(row.idempotencyKey))
            hashes.append(nullable(row.idempotencyHash))
            owners.append(nullable(row.formerOwners))
            bodies.append(ByteBuffer(bytes: row.body))
            if row.storedStatus == nil {
                for (name, value) in row.context {
                    contextNames.append(name)
                    contextValues.append(value)
                    contextCreated.append(row.createdAt.milliseconds)
                    contextJobs.append(row.id)
                }
            }
        }
        let seqs = batch.events.map(\.seq)
        let topics = batch.events.map(\.topic)
        let eventBodies = batch.events.map { ByteBuffer(bytes: $0.body) }
        // -1: no seq is pruned.
        let pruneThrough = batch.pruneThrough ?? -1
        return """
            WITH fence AS (
                UPDATE \(unescaped: schema).leader SET seq = greatest(seq, \(batch.seq)), commits = commits + 1
                WHERE id = 1 AND term = \(role.term) RETURNING commits),
            deleted_jobs AS (
                DELETE FROM \(unescaped: schema).jobs
                WHERE id = ANY(\(batch.deletedJobs)::text[]) AND EXISTS (SELECT 1 FROM fence)),
            deleted_contexts AS (
                DELETE FROM \(unescaped: schema).job_contexts
                WHERE job_id = ANY(\(batch.deletedJobs)::text[]) AND EXISTS (SELECT 1 FROM fence)),
            written_jobs AS (
                INSERT INTO \(unescaped: schema).jobs (id, status, type, operation, source, parent_id, created_at,
                    idempotency_key, idempotency_hash, former_owners, body, priority)
                SELECT id, status, type, operation, source,
                    CASE WHEN parent = '' THEN NULL ELSE substr(parent, 2) END, created,
                    CASE WHEN key = '' THEN NULL ELSE substr(key, 2) END,
                    CASE WHEN hash = '' THEN NULL ELSE substr(hash, 2) END,
                    CASE WHEN owners = '' THEN NULL ELSE substr(owners, 2) END, body, priority
                FROM unnest(\(ids)::text[], \(statuses)::text[], \(types)::text[], \(operations)::text[],
                    \(sources)::text[], \(parents)::text[], \(created)::int8[], \(keys)::text[], \(hashes)::text[],
                    \(owners)::text[], \(bodies)::bytea[], \(priorities)::int8[])
                    AS r(id, status, type, operation, source, parent, created, key, hash, owners, body, priority)
                WHERE EXISTS (SELECT 1 FROM fence)
                ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, former_owners = EXCLUDED.former_owners,
                    body = EXCLUDED.body),
            written_contexts AS (
                INSERT INTO \(unescaped: schema).job_contexts (name, value, created_at, job_id)
                SELECT * FROM unnest(\(contextNames)::text[], \(contextValues)::text[], \(contextCreated)::int8[],
                    \(contextJobs)::text[])
                WHERE EXISTS (SELECT 1 FROM fence)
                ON CONFLICT DO NOTHING),
            written_events AS (
                INSERT INTO \(unescaped: schema).events (seq, topic, body)
                SELECT * FROM unnest(\(seqs)::int8[], \(topics)::text[], \(eventBodies)::bytea[])
                WHERE EXISTS (SELECT 1 FROM fence)),
            pruned_events AS (
                DELETE FROM \(unescaped: schema).events WHERE seq <= \(pruneThrough) AND EXISTS (SELECT 1 FROM fence))
            SELECT commits FROM fence
            """
    }
}
