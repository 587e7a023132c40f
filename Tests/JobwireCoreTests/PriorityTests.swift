import Foundation
import JobwireCore
import JobwireProtocol
import Testing

@testable import JobwireBroker

/// `priority`: claims hand out the highest first, then the oldest; `jobs.list` filters and sorts by it.
@Suite struct PriorityTests {
    /// Creates a ready job of `name` with `priority` (none when nil); returns its id.
    private func ready(_ harness: CoreHarness, _ operation: String, priority: Int64?) throws -> String {
        var params: JSONObject = [:]
        if let priority { params["priority"] = .int(priority) }
        return try #require(try harness.create(params, operation: operation).string("id"))
    }

    private func claim(_ harness: CoreHarness, _ jobs: [String]) throws -> String? {
        let reply = try harness.call("jobs.claim", ["listenerId": "w", "jobs": .array(jobs.map(JSONValue.string))])
        return reply["job"]?.string("id")
    }

    @Test(
        "jobs.claim hands out the highest priority first, then the oldest, across names and after a restart",
        arguments: CoreHarness.StoreKind.allCases)
    func claimOrder(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let low = try ready(harness, "export", priority: -5)
        let plain1 = try ready(harness, "export", priority: nil)
        let high1 = try ready(harness, "export", priority: 50)
        let otherHigh = try ready(harness, "import", priority: 50)
        let plain2 = try ready(harness, "export", priority: 0)
        let top = try ready(harness, "import", priority: 100)
        #expect(try harness.get(plain1).int("priority") == 0)
        #expect(try harness.get(top).int("priority") == 100)
        // The highest of both names first; between equal priorities of two names, the older.
        #expect(try claim(harness, ["workbook:*"]) == top)
        #expect(try claim(harness, ["workbook:export", "workbook:import"]) == high1)
        if harness.keepsAcrossRestart { try harness.restart() }
        var got: [String] = []
        while let id = try claim(harness, ["workbook:*"]) { got.append(id) }
        #expect(got == [otherHigh, plain1, plain2, low])
    }

    @Test("a waiting claim is served the highest priority job of a round", arguments: CoreHarness.StoreKind.allCases)
    func waitingClaimTakesHighest(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let waiting = harness.send("jobs.claim", ["listenerId": "w", "jobs": ["workbook:export"], "wait": 10])
        // Both become ready in one round, the low one first.
        let runAt = JSONValue(harness.now + .seconds(5))
        let lowId = try #require(try harness.create(["priority": -1, "runAt": runAt]).string("id"))
        let highId = try #require(try harness.create(["priority": 1, "runAt": runAt]).string("id"))
        #expect(harness.response(to: waiting) == nil)
        harness.pass(.seconds(5))
        let claimed = try #require(harness.response(to: waiting)).result.get()
        #expect(claimed["job"]?.string("id") == highId)
        #expect(try harness.get(lowId).string("status") == "ready")
    }

    @Test("priority is checked on create and carried by events", arguments: CoreHarness.StoreKind.allCases)
    func validationAndEvents(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        for bad: JSONValue in [101, -101, "high", 1.5] {
            let error = try harness.failure(
                "jobs.create", ["type": "workbook", "operation": "export", "source": "s", "priority": bad])
            #expect(error.code == .invalidParams)
            #expect(error.field == "priority", "\(bad): \(error)")
        }
        let before = try harness.seq()
        let id = try ready(harness, "export", priority: 7)
        let events = harness.publishedEvents(since: before).filter { $0.jobId == id }
        #expect(events.map(\.topic) == ["job:created", "job:ready"])
        #expect(events.allSatisfy { $0.envelope["payload"]?["priority"] == 7 })
    }

    @Test("jobs.list filters by priority and sorts by it", arguments: CoreHarness.StoreKind.allCases)
    func list(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let a = try ready(harness, "export", priority: 3)
        let b = try ready(harness, "export", priority: -2)
        let c = try ready(harness, "export", priority: 3)
        let d = try ready(harness, "export", priority: nil)
        func ids(_ params: JSONObject) throws -> [String] {
            try harness.call("jobs.list", params)["data"]?.arrayValue?.compactMap { $0.string("id") } ?? []
        }
        #expect(try ids(["priority": 3]) == [a, c])
        #expect(try ids(["priority": 0]) == [d])
        #expect(try ids(["sortField": "priority"]) == [b, d, a, c])
        #expect(try ids(["sortField": "priority", "sortDirection": "desc"]) == [c, a, d, b])
        #expect(try ids(["sortField": "createdAt"]) == [a, b, c, d])
        #expect(try ids([:]) == [a, b, c, d])
        #expect(try harness.failure("jobs.list", ["sortField": "status"]).field == "sortField")
        #expect(try harness.failure("jobs.list", ["priority": 200]).field == "priority")
    }
}

/// The priority column of a store written before it existed.
@Suite struct PriorityMigrationTests {
    @Test("a store from before the priority column gets it at the next start, every old job at priority 0")
    func upgrade() throws {
        let harness = try CoreHarness()
        defer { harness.close() }
        let old = try (0..<2).map { _ in try #require(try harness.create().string("id")) }
        try harness.core.store.database.write { db in
            try db.execute(
                sql: """
                    DROP INDEX jobs_by_priority; ALTER TABLE jobs DROP COLUMN priority;
                    DELETE FROM grdb_migrations WHERE identifier = 'v7: priority';
                    """)
        }
        try harness.restart()
        let new = try #require(try harness.create(["priority": 3]).string("id"))
        func ids(_ params: JSONObject) throws -> [String] {
            try harness.call("jobs.list", params)["data"]?.arrayValue?.compactMap { $0.string("id") } ?? []
        }
        #expect(try ids(["priority": 0]) == old)
        #expect(try ids(["sortField": "priority", "sortDirection": "desc"]) == [new, old[1], old[0]])
        let claimed = try harness.call("jobs.claim", ["listenerId": "w", "jobs": ["workbook:export"]])
        #expect(claimed["job"]?.string("id") == new)
    }
}
