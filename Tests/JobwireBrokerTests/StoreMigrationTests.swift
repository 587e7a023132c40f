import Foundation
import GRDB
import Testing

@testable import JobwireBroker

@Suite struct StoreMigrationTests {
    /// A store as the broker wrote it before v4: the jobs and events tables of v1 to v3, an event a row.
    private func makeV3Store(events: [(seq: Int64, topic: String, body: String)], damaged: Int64? = nil) throws
        -> String
    {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jobwire-v3-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let queue = try DatabaseQueue(path: directory + "/jobwire.sqlite")
        try queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                    INSERT INTO grdb_migrations VALUES ('v1'), ('v2: fewer pages per change'), ('v3: checksums');
                    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                    CREATE TABLE jobs (
                        id TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL, type TEXT NOT NULL, operation TEXT NOT NULL,
                        source TEXT NOT NULL, parentId TEXT, createdAt INTEGER NOT NULL, idempotencyKey TEXT,
                        idempotencyHash TEXT, formerOwners TEXT, body BLOB NOT NULL, crc INTEGER
                    ) WITHOUT ROWID;
                    CREATE INDEX jobs_by_created ON jobs (createdAt, id);
                    CREATE INDEX jobs_by_status ON jobs (status, createdAt, id);
                    CREATE INDEX jobs_by_parent ON jobs (parentId, createdAt, id) WHERE parentId IS NOT NULL;
                    CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs (idempotencyKey) WHERE idempotencyKey IS NOT NULL;
                    CREATE TABLE events (
                        seq INTEGER PRIMARY KEY NOT NULL, topic TEXT NOT NULL, body BLOB NOT NULL, crc INTEGER);
                    CREATE TABLE actions (id TEXT PRIMARY KEY NOT NULL, domain TEXT NOT NULL,
                                          resourceId TEXT NOT NULL, body BLOB NOT NULL);
                    CREATE INDEX actions_by_resource ON actions (domain, resourceId);
                    INSERT INTO meta VALUES ('epoch', '0badcafe');
                    """)
            for event in events {
                let body = Array(event.body.utf8)
                var crc = Checksum.castagnoli(String(event.seq), event.topic, body)
                if event.seq == damaged { crc ^= 0x10 }
                try db.execute(
                    sql: "INSERT INTO events (seq, topic, body, crc) VALUES (?, ?, ?, ?)",
                    arguments: [event.seq, event.topic, Data(body), crc])
            }
        }
        try queue.close()
        return directory
    }

    @Test("a store written before event batches keeps its log: every event, its seq, topic and bytes")
    func migratesEvents() throws {
        let events: [(seq: Int64, topic: String, body: String)] = [
            (1, "job:created", #"{"seq":1}"#), (2, "job:ready", #"{"seq":2}"#), (5, "job:completed", #"{"seq":5}"#),
        ]
        let directory = try makeV3Store(events: events)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SQLiteJobStore(directory: directory, fsync: false)
        defer { store.close() }
        let identity = try store.identity(newEpoch: { "unused" })
        #expect(identity.epoch == "0badcafe")
        #expect(identity.seq == 5)
        #expect(identity.firstSeq == 1)
        let read = try store.events(since: 0, limit: 10)
        #expect(read.map(\.seq) == [1, 2, 5])
        #expect(read.map(\.topic) == ["job:created", "job:ready", "job:completed"])
        #expect(read.map { String(decoding: $0.body, as: UTF8.self) } == events.map(\.body))
        #expect(try store.events(since: 2, limit: 10).map(\.seq) == [5])
    }

    @Test("an event damaged before the migration is still damaged after it: the store is refused, naming it")
    func keepsDamage() throws {
        let directory = try makeV3Store(
            events: [(1, "job:created", #"{"seq":1}"#), (2, "job:ready", #"{"seq":2}"#)], damaged: 2)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect {
            _ = try SQLiteJobStore(directory: directory, fsync: false)
        } throws: { error in
            "\(error)".contains("the row of events 2...2 does not match its checksum")
        }
    }

    @Test("a commit's events are one row; reads split them by seq, and a changed byte in a row is found")
    func batches() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jobwire-batch-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SQLiteJobStore(directory: directory, fsync: false)
        var batch = StoreBatch()
        batch.events = (1...300).map {
            StoredEvent(seq: $0, topic: "job:t\($0 % 3)", body: Array(#"{"n":\#($0)}"#.utf8))
        }
        batch.seq = 300
        try store.commit(batch)
        var second = StoreBatch()
        second.events = [StoredEvent(seq: 301, topic: "job:last", body: Array("{}".utf8))]
        second.seq = 301
        try store.commit(second)
        #expect(try store.events(since: 0, limit: 1000).map(\.seq) == Array(1...301))
        let middle = try store.events(since: 149, limit: 3)
        #expect(middle.map(\.seq) == [150, 151, 152])
        #expect(middle.map(\.topic) == ["job:t0", "job:t1", "job:t2"])
        #expect(
            middle.map { String(decoding: $0.body, as: UTF8.self) } == [#"{"n":150}"#, #"{"n":151}"#, #"{"n":152}"#])
        let rows = try store.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event_batches") }
        #expect(rows == 2)
        try store.database.write { db in
            try db.execute(
                sql:
                    "UPDATE event_batches SET body = CAST(REPLACE(CAST(body AS TEXT), '150', '159') AS BLOB) WHERE lastSeq = 300"
            )
        }
        #expect(throws: StoreDamage.self) { try store.events(since: 0, limit: 10) }
        #expect(try store.events(since: 300, limit: 10).map(\.seq) == [301])
        store.close()
    }
}
