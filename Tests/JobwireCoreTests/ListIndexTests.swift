import Foundation
import GRDB
import JobwireProtocol
import Testing

@testable import JobwireBroker

/// `jobs.list` reads an index for every filter: context ids have a table of their own, kept with the jobs.
@Suite struct ListIndexTests {
    private func ids(_ page: JSONValue) -> [String] {
        (page["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
    }

    @Test("context ids are found through their table, which a delete empties and an upgraded store fills")
    func contextTable() throws {
        let harness = try CoreHarness()
        defer { harness.close() }
        var created: [String] = []
        for n in 0..<4 {
            let job = try harness.call(
                "jobs.create",
                [
                    "type": "workbook", "operation": "export", "source": "s", "spaceId": .string("sp_\(n % 2)"),
                    "workbookId": .string("wb_\(n)"),
                ])
            created.append(try #require(job["id"]?.stringValue))
        }
        #expect(ids(try harness.call("jobs.list", ["spaceId": "sp_1"])) == [created[1], created[3]])
        #expect(ids(try harness.call("jobs.list", ["spaceId": "sp_1", "workbookId": "wb_3"])) == [created[3]])

        try harness.call("jobs.delete", ["jobId": .string(created[3])])
        #expect(ids(try harness.call("jobs.list", ["spaceId": "sp_1"])) == [created[1]])
        let left = try harness.core.store.database.read { db in
            try String.fetchAll(db, sql: "SELECT jobId FROM job_contexts ORDER BY jobId")
        }
        #expect(Set(left) == Set(created.prefix(3)), "a deleted job's context rows stay")

        // A store from before the table: it is filled from the jobs' own JSON at the next start.
        try harness.core.store.database.write { db in
            try db.execute(
                sql: """
                    DROP TABLE job_contexts; DROP INDEX jobs_by_name; DROP INDEX jobs_by_source;
                    DELETE FROM grdb_migrations WHERE identifier = 'v6: list filters indexed';
                    """)
        }
        try harness.restart()
        #expect(ids(try harness.call("jobs.list", ["spaceId": "sp_0"])) == [created[0], created[2]])
        #expect(ids(try harness.call("jobs.list", ["workbookId": "wb_1"])) == [created[1]])
        let rows = try harness.core.store.database.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job_contexts") ?? 0
        }
        #expect(rows == 6)
    }
}

/// A claim reply that could not be delivered gives its job back only while that same attempt is held.
@Suite struct UndeliveredClaimTests {
    @Test("a claim reply returned late does not take the job from a later attempt of the same holder")
    func lateReturnKeepsLaterAttempt() throws {
        let harness = try CoreHarness()
        defer { harness.close() }
        let id = try #require(
            try harness.call(
                "jobs.create", ["type": "late", "operation": "claim", "source": "s", "leaseSeconds": 5])["id"]?
                .stringValue)
        // Two copies of one listener without an instanceId: to the broker they are one holder.
        let first = try harness.call("jobs.claim", ["listenerId": "w", "jobs": ["late:*"]])
        #expect(first["job"]?["attempt"] == 1)
        harness.advance(by: .seconds(5))
        harness.core.tick()
        harness.commit()
        let second = try harness.call("jobs.claim", ["listenerId": "w", "jobs": ["late:*"]])
        #expect(second["job"]?["attempt"] == 2)
        // The first claim's reply comes back undelivered (its client went away with it unread).
        harness.core.returnUndeliveredClaim(jobId: id, owner: "w", attempt: 1)
        harness.commit()
        #expect(try harness.job(id).status == .executing)
        #expect(try harness.job(id).attempt == 2)
        // The reply of the attempt that is still held does give it back.
        harness.core.returnUndeliveredClaim(jobId: id, owner: "w", attempt: 2)
        harness.commit()
        #expect(try harness.job(id).status == .ready)
    }
}
