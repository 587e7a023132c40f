import Foundation
import Jobwire
import JobwireTestSupport
import Testing

@Suite struct ListenerEndToEndTests {
    @Test("workbook-export acks, reports progress with an ETA and completes with a download", .timeLimit(.minutes(1)))
    func explicitAck() async throws {
        try await withBroker { broker in
            try await withListener("workbook-export", broker: broker) { listener in
                let client = try JobsClient(commands: broker.commands)
                let job = try await client.create(
                    JobCreateRequest(
                        type: "workbook", operation: "export", source: "us_wb_1", context: ["workbookId": "us_wb_1"]))
                let done = try await client.waitFor(job.id, .complete)
                #expect(
                    done.outcome?.next
                        == .download(
                            url: "https://files.example.com/us_wb_1.xlsx", label: "Download", fileName: "us_wb_1.xlsx")
                )
                let updates = try await client.events(since: 0, topics: ["job:updated"]).events
                #expect(updates.contains { $0.payload["estimatedCompletionAt"].map { !$0.isNull } ?? false })
                #expect(updates.contains { $0.payload["progress"]?.doubleValue == 50 })
                #expect(try await client.endings() == [job.id: 1])
                #expect(await listener.stop() == 0)
            }
        }
    }

    @Test("a listener started after a job became ready still runs it", .timeLimit(.minutes(1)))
    func lateListener() async throws {
        try await withBroker { broker in
            let client = try JobsClient(commands: broker.commands)
            let job = try await client.create(type: "workbook", operation: "export", source: "us_wb_1")
            try await withListener("workbook-export", broker: broker) { listener in
                _ = try await client.waitFor(job.id, .complete)
                let claimer = try ListenerProcess("job-handler", broker: broker)
                let second = try await client.create(type: "workbook", operation: "export", source: "us_wb_2")
                _ = try await client.waitFor(second.id, .complete)
                await claimer.stop()
                #expect(try await client.endings() == [job.id: 1, second.id: 1])
            }
        }
    }

    @Test("jobHandler completes with its return value and fails with its error", .timeLimit(.minutes(1)))
    func jobHandlerOutcomes() async throws {
        try await withBroker { broker in
            try await withListener("job-handler", broker: broker, name: "worker-1") { listener in
                let client = try JobsClient(commands: broker.commands)
                let good = try await client.create(type: "workbook", operation: "export", source: "us_wb_1")
                let bad = try await client.create(
                    type: "workbook", operation: "export", source: "us_wb_2", input: ["fail": "disk full"])
                let done = try await client.waitFor(good.id, .complete)
                #expect(done.outcome?.message == "Exported workbook by worker-1")
                let failed = try await client.waitFor(bad.id, .failed)
                #expect(failed.outcome == Outcome(message: "disk full", acknowledge: true))
            }
        }
    }

    @Test(
        "jobHandler renews the lease of a job longer than the lease, and stops a canceled job", .timeLimit(.minutes(1)))
    func leaseAndCancel() async throws {
        try await withBroker { broker in
            try await withListener("job-handler", broker: broker) { listener in
                let client = try JobsClient(commands: broker.commands)
                // A job far longer than its lease: it outlives its first lease only if the handler renews it.
                let long = try await client.create(
                    JobCreateRequest(
                        type: "workbook", operation: "export", source: "us_wb_1", input: ["workMs": 60000],
                        leaseSeconds: 6))
                let started = try await client.waitFor(long.id, .executing)
                let firstExpiry = try #require(started.lease?.expiresAt)
                try await eventually("the lease renewed after its first expiry", timeout: .seconds(40)) {
                    let job = try await client.get(jobId: long.id)
                    guard job.status == .executing, job.attempt == 1 else {
                        throw TestSupportError("the lease ran out: \(job.status), attempt \(job.attempt)")
                    }
                    return try #require(job.lease?.expiresAt) >= firstExpiry + .seconds(6)
                }
                #expect(try await client.get(jobId: long.id).attempt == 1)

                _ = try await client.cancel(jobId: long.id)
                try await eventually("the handler to stop") {
                    listener.log.contains("job canceled: its handler stopped")
                }
                #expect(try await client.get(jobId: long.id).status == .canceled)
                // The listener goes on taking jobs.
                let next = try await client.create(type: "workbook", operation: "export", source: "us_wb_3")
                _ = try await client.waitFor(next.id, .complete)
                #expect(try await client.endings() == [next.id: 1])
            }
        }
    }

    @Test("two listeners and one job: exactly one runs it", .timeLimit(.minutes(1)))
    func competing() async throws {
        try await withBroker { broker in
            let claimers = try (1...2).map { try ListenerProcess("job-handler", broker: broker, name: "claimer-\($0)") }
            let ackers = try (1...2).map { try ListenerProcess("workbook-export", broker: broker, name: "acker-\($0)") }
            try await withListeners(claimers + ackers) { _ in
                let client = try JobsClient(commands: broker.commands)
                var ids: [String] = []
                for index in 0..<6 {
                    ids.append(
                        try await client.create(type: "workbook", operation: "export", source: "us_wb_\(index)").id)
                }
                for id in ids {
                    let job = try await client.waitFor(id, .complete)
                    #expect(job.attempt == 1)
                }
                #expect(try await client.endings() == Dictionary(uniqueKeysWithValues: ids.map { ($0, 1) }))
            }
        }
    }

    @Test(
        "after a broker restart mid-stream the listener reconnects and every job completes once",
        .timeLimit(.minutes(1)))
    func brokerRestart() async throws {
        let first = try await BrokerProcess.start()
        // The first broker is killed below (stopping it then only reaps it); its restart has a withBroker of its own.
        try await withBroker(first) { first in
            let listeners = [
                try ListenerProcess("job-handler", broker: first, environment: ["JOBWIRE_WORK_MS": "1500"]),
                try ListenerProcess("workbook-export", broker: first, environment: ["JOBWIRE_WORK_MS": "1500"]),
            ]
            try await withListeners(listeners) { listeners in
                let (claimer, acker) = (listeners[0], listeners[1])
                try await claimer.waitUntilLive()
                try await acker.waitUntilLive()
                var ids: [String] = []
                try await withClient(try JobsClient(commands: first.commands)) { client in
                    for index in 0..<4 {
                        let request = JobCreateRequest(
                            type: "workbook", operation: "export", source: "us_wb_\(index)", leaseSeconds: 3)
                        ids.append(try await client.create(request).id)
                    }
                    _ = try await client.waitFor(ids[0], "taken") { $0 != .ready }
                }
                // Killed while jobs run: replies are lost, and events published meanwhile are never sent live.
                await first.kill(SIGKILL)
                try await withBroker(try await first.restart()) { broker in
                    try await withClient(try JobsClient(commands: broker.commands)) { client in
                        for index in 4..<8 {
                            ids.append(
                                try await client.create(type: "workbook", operation: "export", source: "us_wb_\(index)")
                                    .id)
                        }
                        for id in ids {
                            do {
                                _ = try await client.waitFor(id, .complete, timeout: .seconds(40))
                            } catch {
                                let job = try? await client.get(jobId: id)
                                print(
                                    "job \(id): \(String(describing: job.map { JSONCodec.string(.object($0.json)) }))")
                                print(
                                    "claimer log:\n\(claimer.log.suffix(6000))\nacker log:\n\(acker.log.suffix(6000))")
                                print("broker log:\n\(broker.log.suffix(4000))")
                                throw error
                            }
                        }
                        #expect(try await client.endings() == Dictionary(uniqueKeysWithValues: ids.map { ($0, 1) }))
                    }
                    #expect(await claimer.stop() == 0)
                    #expect(await acker.stop() == 0)
                }
            }
        }
    }

    @Test(
        "on SIGTERM a listener takes no new jobs and releases the ones still running at the deadline",
        .timeLimit(.minutes(1)),
        // A claiming jobHandler, and an on("job:ready") handler that took the job with event.ack.
        arguments: ["job-handler", "workbook-export"])
    func gracefulShutdown(example: String) async throws {
        try await withBroker { broker in
            try await withListener(
                example, broker: broker, environment: ["JOBWIRE_GRACE_MS": "300", "JOBWIRE_WORK_MS": "60000"]
            ) { listener in
                try await withClient(try JobsClient(commands: broker.commands)) { client in
                    let job = try await client.create(
                        type: "workbook", operation: "export", source: "us_wb_1", input: ["workMs": 60000])
                    _ = try await client.waitFor(job.id, .executing)
                    #expect(await listener.stop() == 0)
                    let released = try await client.get(jobId: job.id)
                    #expect(released.status == .ready)
                    #expect(released.attempt == 2)
                }
            }
        }
    }

    @Test("custom-job creates an immediate job when an export completes, and runs it", .timeLimit(.minutes(1)))
    func customJob() async throws {
        try await withBroker { broker in
            try await withListener("custom-job", broker: broker) { listener in
                // Events published before a listener first connects are not replayed to it (only ready jobs are).
                try await listener.waitUntilLive()
                let client = try JobsClient(commands: broker.commands, configuration: .init(listenerId: "exporter"))
                let export = try await client.create(type: "workbook", operation: "export", source: "us_wb_1")
                _ = try await client.ack(jobId: export.id)
                _ = try await client.complete(jobId: export.id)
                var notify: Job?
                try await eventually("the notification job to complete") {
                    notify = try await client.list(JobQuery(status: .complete, operation: "notify")).data.first
                    return notify != nil
                }
                #expect(notify?.outcome?.message == "Notified about \(export.id)")
                #expect(notify?.source == export.id)
            }
        }
    }
}
