import Foundation
import JobwireChildProcess
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

@Suite struct BrokerCurveTests {
    /// A broker with CURVE on, admitting only `allowed`.
    static func start(allowed: [CurveKeyPair]) async throws -> (BrokerProcess, String) {
        let server = try CurveKeyPair.generate()
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-keys")
        try (server.secretKey + "\n").write(toFile: folder + "/broker.key", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: folder + "/clients", withIntermediateDirectories: true)
        for (index, pair) in allowed.enumerated() {
            try (pair.publicKey + "\n").write(
                toFile: folder + "/clients/c\(index).pub", atomically: true, encoding: .utf8)
        }
        let broker = try await BrokerProcess.start(arguments: [
            "--curve-secret-key", folder + "/broker.key", "--authorized-keys", folder + "/clients",
        ])
        return (broker, server.publicKey)
    }

    @Test("a listed client is served and an unlisted or plain client gets nothing", .timeLimit(.minutes(1)))
    func onlyListedKeys() async throws {
        let alice = try CurveKeyPair.generate()
        let mallory = try CurveKeyPair.generate()
        let (broker, serverKey) = try await Self.start(allowed: [alice])
        let context = try Context()
        let good = try RawClient(context: context, endpoint: broker.commands, curve: (serverKey, alice))
        let info = try await good.result("broker.info")
        #expect(info["epoch"]?.stringValue != nil)
        let bad = try RawClient(context: context, endpoint: broker.commands, curve: (serverKey, mallory))
        await #expect(throws: TestSupportError.self) {
            _ = try await bad.call("broker.info", timeout: .milliseconds(1500))
        }
        let plain = try RawClient(context: context, endpoint: broker.commands)
        await #expect(throws: TestSupportError.self) {
            _ = try await plain.call("broker.info", timeout: .milliseconds(1500))
        }
        for client in [good, bad, plain] { await client.close() }
        await broker.stop()
    }

    @Test("under CURVE, two instances sharing one key are two lease holders", .timeLimit(.minutes(1)))
    func instancesOfOneKey() async throws {
        let alice = try CurveKeyPair.generate()
        let (broker, serverKey) = try await Self.start(allowed: [alice])
        let context = try Context()
        let one = try RawClient(context: context, endpoint: broker.commands, curve: (serverKey, alice))
        let two = try RawClient(context: context, endpoint: broker.commands, curve: (serverKey, alice))
        let job = try await one.result("jobs.create", ["type": "workbook", "operation": "export", "source": "s"])
        let id = try #require(job["id"])
        let acked = try await one.result("jobs.ack", ["jobId": id, "instanceId": "a-1"])
        #expect(acked["lease"]?["owner"]?.stringValue == alice.publicKey)
        #expect(acked["lease"]?["instanceId"] == "a-1")
        for params: JSONObject in [["jobId": id, "instanceId": "a-2"], ["jobId": id]] {
            guard case .failure(let error) = try await two.call("jobs.ack", params).result else {
                Issue.record("another instance of the key renewed the lease: \(params)")
                return
            }
            #expect(error.code == .conflict)
        }
        let done = try await one.result("jobs.complete", ["jobId": id, "instanceId": "a-1"])
        #expect(done["status"] == "complete")
        await one.close()
        await two.close()
        await broker.stop()
    }

    @Test(
        "under CURVE the lease owner is the authenticated key, whatever listenerId a client names",
        .timeLimit(.minutes(1)))
    func ownerIsTheKey() async throws {
        let alice = try CurveKeyPair.generate()
        let bob = try CurveKeyPair.generate()
        let (broker, serverKey) = try await Self.start(allowed: [alice, bob])
        let context = try Context()
        let a = try RawClient(context: context, endpoint: broker.commands, curve: (serverKey, alice))
        let b = try RawClient(context: context, endpoint: broker.commands, curve: (serverKey, bob))
        let job = try await a.result("jobs.create", ["type": "workbook", "operation": "export", "source": "s"])
        let id = try #require(job["id"])
        let acked = try await a.result("jobs.ack", ["jobId": id, "listenerId": "worker-1"])
        #expect(acked["lease"]?["owner"]?.stringValue == alice.publicKey)
        // Bob names Alice's listenerId and even her key: the broker knows he is Bob.
        for name in ["worker-1", alice.publicKey] {
            let reply = try await b.call("jobs.complete", ["jobId": id, "listenerId": .string(name)])
            guard case .failure(let error) = reply.result else {
                Issue.record("bob completed alice's job as \(name)")
                return
            }
            #expect(error.code == .conflict)
        }
        let done = try await a.result("jobs.complete", ["jobId": id])
        #expect(done["status"] == "complete")
        await a.close()
        await b.close()
        await broker.stop()
    }

    @Test("without CURVE the broker refuses a non-loopback address", .timeLimit(.minutes(1)))
    func loopbackOnly() async throws {
        do {
            _ = try await BrokerProcess.start(arguments: ["--in-memory"])  // loopback: fine
        }
        let output = Locked("")
        let child = try ChildProcess(
            executable: try TestPaths.executable("jobwire"),
            arguments: ["broker", "--in-memory", "--commands", "tcp://0.0.0.0:*", "--events", "tcp://127.0.0.1:*"],
            environment: ProcessInfo.processInfo.environment,
            output: { line in output.withLock { $0 += line + "\n" } })
        let status = await child.wait()
        #expect(status.code != 0)
        #expect(output.withLock { $0 }.contains("refusing to listen on tcp://0.0.0.0:*"))
    }
}
