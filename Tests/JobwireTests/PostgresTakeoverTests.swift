import Foundation
import Jobwire
import JobwireProtocol
import JobwireTestSupport
import Testing

/// The PostgreSQL server the tests may use: `JOBWIRE_TEST_POSTGRES` (`scripts/test.sh` starts one).
private let postgresServer = ProcessInfo.processInfo.environment["JOBWIRE_TEST_POSTGRES"].flatMap {
    $0.isEmpty ? nil : $0
}

/// Issue 19's "done when", through real processes: two `jobwire broker --store postgresql://...`, two copies
/// of a Swift listener given both brokers, the active broker SIGKILLed in the middle of the work.
@Suite(.enabled(if: postgresServer != nil, "JOBWIRE_TEST_POSTGRES names no PostgreSQL server"))
struct PostgresTakeoverTests {

    /// `--store` on the test server, in a schema of its own.
    static func storeArguments() throws -> [String] {
        let server = try #require(postgresServer)
        let schema = "t_takeover_\(UInt32.random(in: 0...UInt32.max))"
        return ["--store", server + (server.contains("?") ? "&" : "?") + "schema=\(schema)"]
    }

    @Test(
        "SIGKILL of the active broker under load: the standby takes over, every job ends exactly once, seq continues",
        .timeLimit(.minutes(3)))
    func killActiveUnderLoad() async throws {
        let store = try Self.storeArguments()
        try await withBroker(arguments: store) { active in
            let standbyEvents = try SilentBroker.freeEndpoint()
            let standbyCommands = try SilentBroker.freeEndpoint()
            let standby = try await BrokerProcess.startStandby(
                arguments: store, events: standbyEvents, commands: standbyCommands)
            try await withBroker(standby) { standby in
                let commands = "\(active.commands),\(standbyCommands)"
                let events = "\(active.events),\(standbyEvents)"
                let listeners = try (1...2).map { _ in
                    try ListenerProcess(
                        "job-handler", commands: commands, events: events, environment: ["JOBWIRE_WORK_MS": "100"])
                }
                try await withListeners(listeners) { listeners in
                    for listener in listeners { try await listener.waitUntilLive() }
                    try await withClient(try JobsClient(commands: commands)) { client in
                        var ids: [String] = []
                        for n in 1...40 {
                            ids.append(
                                try await client.create(type: "workbook", operation: "export", source: "us_wb_\(n)").id)
                        }
                        let before = try await client.brokerInfo()
                        // Some done, some at work, some waiting: then the active broker dies.
                        _ = try await client.waitFor(ids[4], .complete, timeout: .seconds(60))
                        await active.kill(SIGKILL)
                        try await eventually("the standby to take over", timeout: .seconds(30)) {
                            standby.printed.contains("jobwire broker listening")
                        }
                        for n in 41...60 {
                            ids.append(
                                try await client.create(type: "workbook", operation: "export", source: "us_wb_\(n)").id)
                        }
                        for id in ids { _ = try await client.waitFor(id, .complete, timeout: .seconds(90)) }
                        let endings = try await client.endings().filter { ids.contains($0.key) }
                        #expect(endings == Dictionary(uniqueKeysWithValues: ids.map { ($0, 1) }))
                        // The same log: the epoch stays, the seq goes on from where the first broker left it.
                        let after = try await client.brokerInfo()
                        #expect(after.epoch == before.epoch)
                        #expect(after.seq > before.seq)
                        var since: Int64 = 0
                        var seqs: [Int64] = []
                        while true {
                            let page = try await client.events(since: since)
                            seqs += page.events.compactMap(\.seq)
                            guard !page.isComplete, page.nextSince > since else { break }
                            since = page.nextSince
                        }
                        #expect(seqs == Array(1...(seqs.last ?? 0)), "the log has a gap or a repeat")
                    }
                }
            }
        }
    }
}
