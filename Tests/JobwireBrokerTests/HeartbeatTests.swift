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
        let harness = try await Harness()
        let subscriber = try await harness.subscribe("broker:heartbeat/")
        let info = try await harness.info()
        try await eventually("three heartbeats", timeout: .seconds(6)) { subscriber.heartbeats.count >= 3 }
        let beats = subscriber.heartbeats
        for beat in beats {
            #expect(beat.topicFrame == "broker:heartbeat//")
            #expect(beat.envelope["seq"] == nil)
            #expect(beat.envelope["domain"] == "broker")
            #expect(beat.envelope.string("id")?.hasPrefix("us_evt_") == true)
            #expect(beat.envelope["payload"]?["epoch"] == info["epoch"])
            #expect(beat.envelope["payload"]?["startedAt"] == info["startedAt"])
            #expect(beat.envelope["payload"]?["seq"] == .int(0))
        }
        // Their spacing is not checked here: the times a test thread reads them at say more about the
        // machine's load than about the broker (two arrived 18 µs apart on a loaded machine).
        try await harness.create()
        let count = subscriber.heartbeats.count
        try await eventually("a heartbeat after the create", timeout: .seconds(3)) {
            subscriber.heartbeats.count > count
        }
        #expect(subscriber.heartbeats.last?.envelope["payload"]?["seq"] == .int(2))
        #expect(subscriber.events.isEmpty, "a heartbeat-only subscription got job events")
        #expect(try await harness.events(since: 0).allSatisfy { $0.string("topic") != "broker:heartbeat" })
        await subscriber.close()
        await harness.close()
    }
}
