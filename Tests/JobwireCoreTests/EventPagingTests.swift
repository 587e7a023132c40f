import Foundation
import JobwireCore
import JobwireProtocol
import Testing

@testable import JobwireBroker

/// `events.list` pages are bounded in events examined and in bytes, and say where to go on (`nextSince`).
@Suite struct EventPagingTests {
    @Test(
        "a page stops at about 1 MiB of events and nextSince continues it without a gap",
        arguments: CoreHarness.StoreKind.allCases)
    func byteBudget(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let input: JSONValue = ["blob": .string(String(repeating: "x", count: 200_000))]
        // 8 jobs, each in job:created and job:ready with its 200 KB input: 16 events, 3.2 MB.
        for _ in 0..<8 { try harness.create(["input": input]) }
        let last = try harness.seq()
        let first = try harness.call("events.list", ["since": 0])
        let page = try #require(first["events"]?.arrayValue)
        let nextSince = try #require(first.int("nextSince"))
        #expect(first.int("lastSeq") == last, "lastSeq stays the broker's latest seq")
        #expect(page.count > 0 && page.count < 16, "the page was cut short: \(page.count) events")
        #expect(nextSince == page.last?["seq"]?.intValue, "nextSince is the last seq the page examined")
        #expect(JSONCodec.encode(.array(page)).count <= 1 << 20)
        // Paging on reaches every event once, in order.
        let all = try harness.events(since: 0)
        #expect(all.compactMap { $0.int("seq") } == Array(1...last))
        // A single event larger than the budget still comes, alone.
        try harness.create(["input": ["blob": .string(String(repeating: "y", count: 900_000))]])
        let big = try harness.call("events.list", ["since": .int(last)])
        #expect(big["events"]?.arrayValue?.count == 1)
        #expect(big.int("nextSince") == last + 1)
    }

    @Test(
        "a filter that matches nothing scans at most 10,000 events per call and says where to go on",
        arguments: CoreHarness.StoreKind.allCases)
    func scanBudget(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        // 5,001 creates, in rounds of 500 as the server batches a pipelining client's: 10,002 events.
        var sent = 0
        while sent < 5_001 {
            for _ in 0..<min(500, 5_001 - sent) {
                harness.send("jobs.create", ["type": "w", "operation": "x", "source": "s"])
                sent += 1
            }
            harness.commit()
        }
        let last = try harness.seq()
        #expect(last == 10_002)
        let first = try harness.call("events.list", ["since": 0, "topics": ["nothing:here"]])
        #expect(first["events"]?.arrayValue == [])
        #expect(first.int("nextSince") == 10_000)
        #expect(first.int("lastSeq") == last)
        let second = try harness.call("events.list", ["since": 10_000, "topics": ["nothing:here"]])
        #expect(second["events"]?.arrayValue == [])
        #expect(second.int("nextSince") == last)
        // A filter that matches: the events past the first 10,000 come on the second page.
        let ready = try harness.events(since: 0, topics: ["job:ready"])
        #expect(ready.count == 5_001)
    }
}

/// `jobs.list` filters by every context id a job carries.
@Suite struct ListFilterTests {
    @Test("jobs.list filters by each context id, alone or together", arguments: CoreHarness.StoreKind.allCases)
    func contextFilters(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let keys = ["environmentId", "spaceId", "workbookId", "sheetId", "fileId", "documentId", "actorId"]
        var ids: [String] = []
        for n in 0..<3 {
            var context = JSONObject()
            for key in keys { context[key] = .string("\(key)-\(n)") }
            // A context id in the input must not count.
            context["input"] = ["spaceId": "spaceId-2"]
            ids.append(try #require(try harness.create(context).string("id")))
        }
        try harness.create()
        for key in keys {
            let page = try harness.call("jobs.list", [key: .string("\(key)-1")])
            let found = (page["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
            #expect(found == [ids[1]], "\(key)")
            #expect(page["pagination"]?["totalCount"] == 1, "\(key)")
        }
        let both = try harness.call("jobs.list", ["spaceId": "spaceId-2", "sheetId": "sheetId-2"])
        #expect((both["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue } == [ids[2]])
        let none = try harness.call("jobs.list", ["spaceId": "spaceId-2", "sheetId": "sheetId-1"])
        #expect(none["data"]?.arrayValue == [])
        let quoted = try harness.call("jobs.list", ["spaceId": "a\"b"])
        #expect(quoted["data"]?.arrayValue == [])
    }
}
