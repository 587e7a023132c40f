import Foundation
import Jobwire
import JobwireTestSupport
import Testing
import ZeroMQ

@Suite struct CurveListenerTests {
    @Test(
        "with CURVE on, a listener with an authorized key runs jobs and the lease owner is its key",
        .timeLimit(.minutes(1)))
    func curveListener() async throws {
        let server = try CurveKeyPair.generate()
        let worker = try CurveKeyPair.generate()
        let producer = try CurveKeyPair.generate()
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-curve")
        try (server.secretKey + "\n").write(toFile: folder + "/broker.key", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: folder + "/clients", withIntermediateDirectories: true)
        for (name, pair) in [("worker", worker), ("producer", producer)] {
            try (pair.publicKey + "\n").write(
                toFile: folder + "/clients/\(name).pub", atomically: true, encoding: .utf8)
        }
        try await withBroker(arguments: [
            "--curve-secret-key", folder + "/broker.key", "--authorized-keys", folder + "/clients",
        ]) { broker in

            func curve(_ pair: CurveKeyPair) -> JobsClient.CurveConfiguration {
                .init(serverPublicKey: server.publicKey, publicKey: pair.publicKey, secretKey: pair.secretKey)
            }
            let owners = Locked<[String]>([])
            let listener = Listener(
                name: "curved", commands: broker.commands, events: broker.events,
                configuration: .init(curve: curve(worker))
            ) {
                on("job:ready", job: "secure:export") { event in
                    let job = try await event.ack(progress: 0)
                    owners.withLock { $0.append(job.lease?.owner ?? "") }
                    try await event.complete(outcome: Outcome(message: "done under CURVE"))
                }
            }
            try await withRunning(listener) {
                let client = try JobsClient(
                    commands: broker.commands, configuration: .init(requestTimeout: .seconds(5), curve: curve(producer))
                )
                let job = try await client.create(type: "secure", operation: "export", source: "s")
                let done = try await client.waitUntilEnded(jobId: job.id, timeout: .seconds(20))
                #expect(done.status == .complete)
                #expect(done.outcome?.message == "done under CURVE")
                #expect(owners.withLock { $0 } == [worker.publicKey])
            }
        }
    }
}
