import CJobwireSupport
import Foundation
import Testing

@testable import JobwireBroker

@Suite struct WALGatheringTests {
    @Test(
        "with fsync the log's writes are gathered: commits of any size, a checkpoint and a reopen keep every row"
    )
    func gatheredCommitsRoundTrip() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jobwire-wal-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var seq: Int64 = 0
        var written: [StoredEvent] = []
        do {
            let store = try SQLiteJobStore(directory: directory, fsync: true)
            // From one small event to a commit of about 1.2 MB (more than SQLite's 128 KiB per write, and
            // than the 64 KiB chunks the gathered bytes go out in), then enough commits to pass a checkpoint.
            for size in [1, 40, 300, 600] + Array(repeating: 50, count: 100) {
                var batch = StoreBatch()
                batch.events = (0..<size).map { _ in
                    seq += 1
                    return StoredEvent(
                        seq: seq, topic: "job:t",
                        body: Array(#"{"seq":\#(seq),"pad":"\#(String(repeating: "x", count: 2000))"}"#.utf8))
                }
                batch.seq = seq
                try store.commit(batch)
                written += batch.events
            }
            #expect(try store.events(since: 0, limit: 100_000).map(\.seq) == written.map(\.seq))
            store.close()
        }
        let reopened = try SQLiteJobStore(directory: directory, fsync: true)
        defer { reopened.close() }
        let read = try reopened.events(since: 0, limit: 100_000)
        #expect(read.map(\.seq) == written.map(\.seq))
        #expect(read.last?.body == written.last?.body)
        #expect(try reopened.identity(newEpoch: { "e" }).seq == seq)
    }

    @Test("only a store with fsync gathers, only while it is open: the same folder opened without fsync writes through")
    func gatheringFollowsTheOpenStore() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jobwire-wal-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = directory + "/jobwire.sqlite-wal"
        let durable = try SQLiteJobStore(directory: directory, fsync: true)
        #expect(jobwire_sqlite_gathers(log) == 1)
        durable.close()
        #expect(jobwire_sqlite_gathers(log) == 0)
        let relaxed = try SQLiteJobStore(directory: directory, fsync: false)
        #expect(jobwire_sqlite_gathers(log) == 0)
        relaxed.close()
    }
}
