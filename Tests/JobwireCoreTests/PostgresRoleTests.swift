import Foundation
import JobwireCore
import JobwirePostgres
import JobwireProtocol
import Logging
import Synchronization
import Testing

@testable import JobwireBroker

/// The active role on a PostgreSQL store: one broker serves, a standby waits and takes over when the
/// active one's session ends, and the one that lost the role can never commit again.
@Suite(.enabled(if: CoreHarness.postgresServer != nil, "JOBWIRE_TEST_POSTGRES names no PostgreSQL server"))
struct PostgresRoleTests {
    /// What a store reported through its callbacks.
    final class Reports: Sendable {
        let standby = Mutex<[String]>([])
        let lost = Mutex<[String]>([])
    }

    static func open(_ location: PostgresLocation, _ reports: Reports, holder: String) throws -> PostgresJobStore {
        try PostgresJobStore(
            location: location, holder: holder, failoverTimeout: .seconds(30), logger: Logger(label: "test"),
            standby: { who in reports.standby.withLock { $0.append(who) } },
            lost: { reason in reports.lost.withLock { $0.append(reason) } })
    }

    /// Opens a store on a thread of its own (a standby blocks in its init); the result comes through a stream.
    static func openInBackground(_ location: PostgresLocation, _ reports: Reports, holder: String)
        -> AsyncStream<Result<PostgresJobStore, any Error>>
    {
        let (stream, continuation) = AsyncStream.makeStream(of: Result<PostgresJobStore, any Error>.self)
        Thread {
            continuation.yield(Result { try open(location, reports, holder: holder) })
            continuation.finish()
        }.start()
        return stream
    }

    @Test(
        "a second broker waits as a standby, takes over when the active one's session ends, and the old one is fenced")
    func takeoverAndFencing() async throws {
        let location = try CoreHarness.postgresLocation(schema: "t_role_\(UInt32.random(in: 0...UInt32.max))")
        defer { try? PostgresJobStore.dropSchema(location) }
        let first = Reports()
        let a = try Self.open(location, first, holder: "a")
        #expect(a.term == 1)
        let core = try BrokerCore(
            configuration: BrokerConfiguration().core, store: a, clock: ManualClock(.now()),
            logger: Logger(label: "test"))
        core.handle(
            RPCRequest(
                id: .int(1), method: "jobs.create", params: ["type": "workbook", "operation": "export", "source": "s"]),
            from: CoreHarness.caller)
        #expect(core.commit())
        let epoch = core.epoch
        let seq = core.seq

        let second = Reports()
        var opened = Self.openInBackground(location, second, holder: "b").makeAsyncIterator()
        // The standby says who is active before anything else happens.
        while second.standby.withLock({ $0.isEmpty }) { await Task.yield() }
        #expect(second.standby.withLock { $0 } == ["broker a is active (term 1)"])

        a.abandonForTesting()
        let b = try #require(await opened.next()).get()
        defer { b.close() }
        #expect(b.term == 2)
        let identity = try b.identity(newEpoch: { "new" })
        #expect(identity.epoch == epoch)
        #expect(identity.seq == seq)
        #expect(try b.statusCounts()[.ready] == 1)

        // The old active broker's next commit meets the newer term: nothing written, the role reported lost.
        core.handle(
            RPCRequest(
                id: .int(2), method: "jobs.create", params: ["type": "workbook", "operation": "export", "source": "s"]),
            from: CoreHarness.caller)
        #expect(!core.commit())
        #expect(first.lost.withLock { $0.count } == 1)
        #expect(try b.statusCounts()[.ready] == 1)
        #expect(try b.identity(newEpoch: { "new" }).seq == seq)
        #expect(second.lost.withLock { $0 }.isEmpty)
    }

    @Test("a broker that stops cleanly lets a standby in at once, long before its lease would run out")
    func cleanHandover() async throws {
        let location = try CoreHarness.postgresLocation(schema: "t_role_\(UInt32.random(in: 0...UInt32.max))")
        defer { try? PostgresJobStore.dropSchema(location) }
        let first = Reports()
        let a = try Self.open(location, first, holder: "a")
        let second = Reports()
        var opened = Self.openInBackground(location, second, holder: "b").makeAsyncIterator()
        while second.standby.withLock({ $0.isEmpty }) { await Task.yield() }
        // The lease is 30 s: only the hand-back lets the standby in before then.
        a.close()
        let b = try #require(await opened.next()).get()
        defer { b.close() }
        #expect(b.term == 2)
        #expect(first.lost.withLock { $0 }.isEmpty)
    }
}
