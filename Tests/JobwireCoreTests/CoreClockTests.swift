import JobwireCore
import JobwireProtocol
import Testing

@testable import JobwireBroker

@Suite struct CoreClockTests {
    @Test(
        "the core's time is its clock's: it stands still until the clock moves, and a lease runs out exactly then",
        arguments: CoreHarness.StoreKind.allCases)
    func leaseOnTheManualClock(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let created = try harness.call(
            "jobs.create", ["type": "t", "operation": "o", "source": "s", "leaseSeconds": 10, "maxAttempts": 1])
        let id = try #require(created["id"]?.stringValue)
        let acked = try harness.call("jobs.ack", ["jobId": .string(id), "listenerId": "l"])
        let expiresAt = try #require(Timestamp(iso8601: acked["lease"]?["expiresAt"]?.stringValue ?? ""))
        #expect(expiresAt == harness.now + .seconds(10))
        #expect(harness.core.nextDeadline == expiresAt)

        // Rounds without a move of the clock change nothing, however long they take in real time.
        let start = harness.now
        for _ in 0..<3 { harness.round() }
        #expect(harness.now == start)
        #expect(try harness.job(id).status == .executing)

        harness.pass(.milliseconds(9_999))
        #expect(try harness.job(id).status == .executing)

        harness.pass(.milliseconds(1))
        let failed = try harness.job(id)
        #expect(failed.status == .failed)
        #expect(failed.outcome?.message == "lease expired")
        #expect(failed.finishedAt == expiresAt)
    }
}
