import Foundation
import GRDB
import JobwireProtocol
import Testing

@testable import JobwireBroker

/// Long chains of dependent jobs and deep trees of parts end without recursion: these overflowed the
/// stack (and, through the lease-expiry path, crash-looped the broker at every start on the store).
@Suite(.serialized) struct DependencyChainTests {
    /// Five times what overflowed the stack when ends were followed by recursion (1,000 links did, on a
    /// test thread; below 2,000 on the broker's); `Benchmarks/graph/measure.py chain 100000` runs 100,000
    /// through a broker process.
    static let length = 5_000

    /// Checks that no link still waits, that every link failed, and that the links name the one before
    /// them (`head`'s dependent naming `head` as `how`), sampled every 997 links and at the end.
    func expectChainFailed(_ harness: CoreHarness, head: String, links: [String], how: String) throws {
        #expect(harness.core.statusCounts[.scheduled, default: 0] == 0)
        #expect(harness.core.statusCounts[.failed, default: 0] >= links.count)
        for index in Array(stride(from: 0, to: links.count, by: 997)) + [links.count - 1] {
            let job = try harness.job(links[index])
            #expect(job.status == .failed, "link \(index)")
            let previous = index == 0 ? head : links[index - 1]
            #expect(job.outcome?.message == "predecessor \(previous) \(index == 0 ? how : "failed")", "link \(index)")
        }
    }

    @Test("canceling the head of a 5,000-link chain fails every link, the broker stays up")
    func cancelHead() throws {
        let harness = try CoreHarness()
        defer { harness.close() }
        let head = try harness.chainHead()
        let links = try harness.chain(after: head, length: DependencyChainTests.length)
        // The cancel is answered after its own round, which follows a bounded part of the chain; the rest
        // ends over the next rounds, with other requests between them.
        let request = harness.send("jobs.cancel", ["jobId": .string(head)])
        harness.commit()
        #expect(try harness.response(to: request)?.result.get()["status"] == "canceled")
        #expect(harness.core.statusCounts[.scheduled, default: 0] > 0)
        #expect(harness.settle() >= DependencyChainTests.length / BrokerCore.endsPerRound)
        try expectChainFailed(harness, head: head, links: links, how: "canceled")
        #expect(try harness.call("broker.info")["jobs"]?["failed"] == .int(Int64(links.count)))
    }

    @Test("a chain's end cut off between two rounds (a crash) goes on at the next start")
    func cascadeResumesAfterRestart() throws {
        let harness = try CoreHarness()
        defer { harness.close() }
        let head = try harness.chainHead()
        let links = try harness.chain(after: head, length: 5 * BrokerCore.endsPerRound)
        harness.send("jobs.cancel", ["jobId": .string(head)])
        harness.commit()
        harness.core.tick()
        harness.commit()
        let waiting = harness.core.statusCounts[.scheduled, default: 0]
        #expect(waiting > 0 && waiting < links.count)
        try harness.restart()
        #expect(harness.core.hasPendingEnds)
        harness.settle()
        try expectChainFailed(harness, head: head, links: links, how: "canceled")
    }

    @Test("deleting the head of a 5,000-link chain fails every link: predecessor <id> deleted")
    func deleteHead() throws {
        let harness = try CoreHarness()
        defer { harness.close() }
        let head = try harness.chainHead()
        let links = try harness.chain(after: head, length: DependencyChainTests.length)
        try harness.call("jobs.delete", ["jobId": .string(head)])
        try expectChainFailed(harness, head: head, links: links, how: "deleted")
    }

    @Test(
        "a head whose last lease expires fails a 5,000-link chain, also when the expiry comes at the next start",
        arguments: [false, true])
    func leaseExpiry(restart: Bool) throws {
        let harness = try CoreHarness()
        defer { harness.close() }
        let head = try #require(
            try harness.call(
                "jobs.create",
                ["type": "chain", "operation": "head", "source": "s", "maxAttempts": 1, "leaseSeconds": 5])["id"]?
                .stringValue)
        let claimed = try harness.call("jobs.claim", ["listenerId": "w", "jobs": ["chain:head"]])
        #expect(claimed["job"]?["id"] == .string(head))
        let links = try harness.chain(after: head, length: DependencyChainTests.length)
        // The store as a broker killed before the lease ran out leaves it: the next start finds the lease
        // expired and fails the chain in its first tick.
        if restart { try harness.restart() }
        harness.advance(by: .seconds(60))
        harness.core.tick()
        harness.commit()
        harness.settle()
        #expect(try harness.job(head).outcome?.message == "lease expired")
        try expectChainFailed(harness, head: head, links: links, how: "failed")
        // And the store so left starts again.
        try harness.restart()
        #expect(harness.core.statusCounts[.failed] == links.count + 1)
    }

    @Test("canceling the root of parts nested 5,000 deep cancels every part")
    func nestedParts() throws {
        let harness = try CoreHarness()
        defer { harness.close() }
        var parent = try #require(
            try harness.call("jobs.create", ["type": "tree", "operation": "root", "source": "s"])["id"]?.stringValue)
        let root = parent
        try harness.call("jobs.claim", ["listenerId": "w", "jobs": ["tree:root"]])
        var parts: [String] = []
        for _ in 0..<DependencyChainTests.length {
            // Parts of a split take the parent's name; the ready part is acked and split in turn.
            let split = try harness.call(
                "jobs.split", ["jobId": .string(parent), "listenerId": "w", "parts": 1])
            let part = try #require(split["parts"]?.arrayValue?.first?["id"]?.stringValue)
            try harness.call("jobs.ack", ["jobId": .string(part), "listenerId": "w"])
            parts.append(part)
            parent = part
        }
        try harness.call("jobs.cancel", ["jobId": .string(root)])
        #expect(try harness.job(root).status == .canceled)
        for part in parts where try harness.job(part).status != .canceled {
            Issue.record("part \(part) is \(try harness.job(part).status.rawValue)")
            break
        }
        #expect(harness.core.statusCounts[.executing, default: 0] == 0)
    }

    @Test("canceling a parent of sequential parts cancels them all; none starts on the way")
    func sequentialPartsCancel() throws {
        let harness = try CoreHarness()
        defer { harness.close() }
        let parent = try #require(
            try harness.call("jobs.create", ["type": "seq", "operation": "root", "source": "s"])["id"]?.stringValue)
        try harness.call("jobs.claim", ["listenerId": "w", "jobs": ["seq:root"]])
        let split = try harness.call(
            "jobs.split", ["jobId": .string(parent), "listenerId": "w", "parts": 1000, "runInParallel": false])
        let parts = (split["parts"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        #expect(parts.count == 1000)
        let before = harness.published.count
        try harness.call("jobs.cancel", ["jobId": .string(parent)])
        for part in parts { #expect(try harness.job(part).status == .canceled) }
        let topics = harness.published[before...].map { String(decoding: $0[0], as: UTF8.self) }
        #expect(!topics.contains { $0.hasPrefix("job:ready/") })
        #expect(topics.filter { $0.hasPrefix("job:parts-completed/") }.count == 1)
    }
}

/// Rounds are bounded by the bytes of their events too: events carry the job's input.
@Suite struct LargeEventRoundTests {
    @Test("a chain of jobs with large inputs ends over rounds of at most 16 MiB of events, in rows of 4 MiB")
    func largeInputs() throws {
        let harness = try CoreHarness()
        defer { harness.close() }
        let head = try harness.chainHead()
        let input: JSONValue = ["blob": .string(String(repeating: "x", count: 700_000))]
        var previous = head
        for _ in 0..<60 {
            let link = try harness.call(
                "jobs.create",
                [
                    "type": "chain", "operation": "link", "source": "s", "input": input,
                    "predecessorIds": [.string(previous)],
                ])
            previous = try #require(link["id"]?.stringValue)
        }
        try harness.call("jobs.cancel", ["jobId": .string(head)])
        #expect(harness.core.statusCounts[.failed, default: 0] == 60)
        let rows = try harness.core.store.database.read { db in
            try Row.fetchAll(db, sql: "SELECT firstSeq, lastSeq, length(body) AS bytes FROM event_batches")
        }
        let largest: Int = rows.map { $0["bytes"] as Int }.max() ?? 0
        #expect(largest < SQLiteJobStore.eventRowBytes + 800_000, "an event row of \(largest) bytes")
        #expect(rows.count > 60 * 700_000 / SQLiteJobStore.eventRowBytes)
    }
}

/// A job whose end still waits for a later round cannot be retried until that end has been followed.
@Suite struct PendingEndRetryTests {
    @Test("retrying a job whose end is still being followed is -32007, and works once it has been")
    func retryWaitsForItsEnd() throws {
        let harness = try CoreHarness()
        defer { harness.close() }
        let head = try harness.chainHead()
        let links = try harness.chain(after: head, length: 3 * BrokerCore.endsPerRound)
        let request = harness.send("jobs.cancel", ["jobId": .string(head)])
        harness.commit()
        #expect(try harness.response(to: request)?.result.get()["status"] == "canceled")
        // The first round failed the links up to here; the end of the last of them is not followed yet.
        let waiting = try #require(links.last { (try? harness.job($0).status) == .failed })
        #expect(harness.core.pendingEndIds.contains(waiting))
        let refused = try harness.failure("jobs.retry", ["jobId": .string(waiting)])
        #expect(refused.code == .overloaded)
        harness.settle()
        // Accepted now; its own predecessor failed, so the same rules fail it again, for the new attempt.
        let retried = try harness.call("jobs.retry", ["jobId": .string(waiting)])
        #expect(retried["attempt"] == 2)
        #expect(try harness.job(waiting).status == .failed)
    }
}
