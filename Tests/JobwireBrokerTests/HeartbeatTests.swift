import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

/// What only a broker process shows: the heartbeats of its events socket. The log's rules are tested on
/// the core (JobwireCoreTests).
@Suite struct HeartbeatTests {
    @Test(
        "heartbeats come with no seq of their own and carry the broker's epoch, start and latest seq",
        .timeLimit(.minutes(1)))
    func heartbeats() async throws {
        try await withHarness { harness in
            let subscriber = try await harness.subscribe("broker:heartbeat/")
            let info = try await harness.info()
            // Bounds that only fail: a heartbeat goes out every second.
            try await eventually("three heartbeats", timeout: .seconds(30)) { subscriber.heartbeats.count >= 3 }
            for beat in subscriber.heartbeats {
                #expect(beat.topicFrame == "broker:heartbeat//")
                #expect(beat.envelope["seq"] == nil)
                #expect(beat.envelope["domain"] == "broker")
                #expect(beat.envelope.string("id")?.hasPrefix("us_evt_") == true)
                #expect(beat.envelope["payload"]?["epoch"] == info["epoch"])
                #expect(beat.envelope["payload"]?["startedAt"] == info["startedAt"])
                #expect(beat.envelope["payload"]?["seq"] == .int(0))
            }
            // Their spacing is not checked here: the times a test thread reads them at say more about the
            // machine's load than about the broker (two arrived 18 µs apart on a loaded machine). A heartbeat
            // sent before the create was handled may arrive after its reply: the wait is for one that carries
            // the create's seq, and the seq a heartbeat carries never goes back.
            try await harness.create()
            try await eventually("a heartbeat carrying the create's seq", timeout: .seconds(30)) {
                subscriber.heartbeats.contains { $0.envelope["payload"]?["seq"] == .int(2) }
            }
            let seqs = subscriber.heartbeats.compactMap { $0.envelope["payload"]?["seq"]?.intValue }
            #expect(seqs == seqs.sorted())
            #expect(Set(seqs).isSubset(of: [0, 2]))
            #expect(subscriber.events.isEmpty, "a heartbeat-only subscription got job events")
            #expect(try await harness.events(since: 0).allSatisfy { $0.string("topic") != "broker:heartbeat" })
            await subscriber.close()
        }
    }
}
