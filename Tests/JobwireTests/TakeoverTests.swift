import Foundation
import Jobwire
import JobwireTestSupport
import Testing

/// Clients given a list of brokers (issue 19): they talk to the one that is bound, follow the one that takes
/// over, send again what the former never answered, and replay the events they missed meanwhile.
///
/// A takeover is simulated without PostgreSQL: the active broker is killed and a second one starts on the
/// same data folder at the other endpoint of the list (so the epoch is the same and the seq continues).
@Suite struct TakeoverTests {
    @Test(
        "a listener given two brokers follows the one that takes over: calls sent again, events replayed, jobs end once",
        .timeLimit(.minutes(2)), arguments: ["workbook-export", "job-handler"])
    func takeover(example: String) async throws {
        let data = TestPaths.temporaryDirectory(prefix: "jobwire-takeover")
        let standbyEvents = try SilentBroker.freeEndpoint()
        let standbyCommands = try SilentBroker.freeEndpoint()
        // The first broker is killed below; its scope only makes sure it is gone however the test ends.
        try await withBroker(dataDirectory: data) { first in
            let commands = "\(first.commands),\(standbyCommands)"
            let events = "\(first.events),\(standbyEvents)"
            // Requests wait far longer than the test may run: only a resend brings back one the first broker
            // took with it, never a timeout and a retry.
            let listener = try ListenerProcess(
                example, commands: commands, events: events,
                environment: ["JOBWIRE_WORK_MS": "1500", "JOBWIRE_REQUEST_TIMEOUT_MS": "600000"])
            try await withListeners([listener]) { _ in
                try await listener.waitUntilLive()
                try await withClient(try JobsClient(commands: commands)) { client in
                    // Nothing listens at the second endpoints yet: the first broker serves.
                    let before = try await client.create(type: "workbook", operation: "export", source: "us_wb_1")
                    _ = try await client.waitFor(before.id, .complete)

                    // A job whose handler is at work when the broker freezes: its calls wait on the frozen one.
                    let inFlight = try await client.create(type: "workbook", operation: "export", source: "us_wb_2")
                    _ = try await client.waitFor(inFlight.id, "executing") { $0 == .executing }
                    first.signal(SIGSTOP)
                    try await eventually("the listener to miss the heartbeats") {
                        listener.log.contains("no heartbeat from the broker")
                    }
                    // Frozen, the listener cannot connect to the second broker before the next job's event.
                    listener.signal(SIGSTOP)
                    await first.kill(SIGKILL)
                    let second = try await BrokerProcess.start(
                        dataDirectory: data, events: standbyEvents, commands: standbyCommands)
                    try await withBroker(second) { _ in
                        let missed = try await client.create(type: "workbook", operation: "export", source: "us_wb_3")
                        listener.signal(SIGCONT)
                        for job in [inFlight, missed] {
                            _ = try await client.waitFor(job.id, .complete, timeout: .seconds(60))
                        }
                        let ids = [before.id, inFlight.id, missed.id]
                        let endings = try await client.endings().filter { ids.contains($0.key) }
                        #expect(endings == Dictionary(uniqueKeysWithValues: ids.map { ($0, 1) }))
                        // Its calls lost with the first broker were sent again: the job did not wait out its lease
                        // to run a second attempt.
                        #expect(try await client.get(jobId: inFlight.id).attempt == 1)
                        #expect(listener.log.contains("broker heartbeats resumed"))
                        if example == "workbook-export" {
                            // Its jobs come by their job:ready events: the missed one's came by the replay.
                            #expect(listener.log.contains("replayed events missed live"), "\(listener.log)")
                        }
                    }
                }
            }
        }
    }

    @Test(
        "a complete sent again after the broker changed, whose first copy had landed, answers with the ended job",
        .timeLimit(.minutes(1)))
    func resentCompleteThatLanded() async throws {
        try await withBroker { broker in
            var configuration = JobsClient.Configuration(listenerId: "resend", instanceId: "resend-1")
            configuration.requestTimeout = .seconds(600)
            try await withClient(try JobsClient(commands: broker.commands, configuration: configuration)) { direct in
                let job = try await direct.create(type: "workbook", operation: "export", source: "us_wb_1")
                let acked = try await direct.ack(jobId: job.id)
                let silent = try SilentBroker()
                // Frozen, the broker cannot finish a handshake: with ZMQ_IMMEDIATE the request goes to the silent
                // broker only, never into the queue of a connection that is not complete.
                broker.signal(SIGSTOP)
                // The signal is asynchronous: until the kernel has stopped the broker, its I/O thread may still
                // complete the new client's handshake and take the complete.
                try await eventually("the broker to be stopped") { processState(broker.pid) == "T" }
                let client = try JobsClient(
                    commands: "\(silent.endpoint),\(broker.commands)", configuration: configuration)
                try await withClient(client) { client in
                    let outcome = Outcome(message: "Exported once")
                    let completing = Task {
                        try await client.complete(jobId: job.id, outcome: outcome, attempt: acked.attempt)
                    }
                    try await eventually("the complete to reach the silent broker") {
                        silent.methods == ["jobs.complete"]
                    }
                    broker.signal(SIGCONT)
                    // What the broker that went silent had written before it died.
                    _ = try await direct.complete(jobId: job.id, outcome: outcome, attempt: acked.attempt)
                    await silent.close()
                    // As a listener does when heartbeats come from a new broker process. Again until the client has
                    // seen the silent broker's connection go: until then a copy may still be dealt to it.
                    let answered = Locked(false)
                    let waiter = Task {
                        _ = try? await completing.value
                        answered.withLock { $0 = true }
                    }
                    try await eventually("the resent complete to be answered", every: .milliseconds(200)) {
                        if answered.withLock({ $0 }) { return true }
                        client.resendPending()
                        return false
                    }
                    _ = await waiter.value
                    let ended = try await completing.value
                    #expect(ended.id == job.id)
                    #expect(ended.status == .complete)
                    #expect(ended.outcome?.message == "Exported once")
                    #expect(silent.methods == ["jobs.complete"])
                    // Sent once, a complete of an ended job is still refused.
                    await #expect(throws: ProtocolError.self) {
                        try await client.complete(jobId: job.id, outcome: outcome, attempt: acked.attempt)
                    }
                }
            }
        }
    }

    @Test("a client refuses a malformed endpoint of its list, naming it", .timeLimit(.minutes(1)))
    func malformedList() throws {
        let error = try #require(throws: EndpointError.self) {
            try JobsClient(commands: "tcp://127.0.0.1:7401,tcp//127.0.0.1:7402")
        }
        #expect(error.endpoint == "tcp//127.0.0.1:7402")
    }
}

/// A process's state letter from `/proc/PID/stat` (`T` when stopped by a signal), nil when it cannot be read.
private func processState(_ pid: Int32) -> Character? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    return stat[stat.index(after: close)...].first { $0 != " " }
}
