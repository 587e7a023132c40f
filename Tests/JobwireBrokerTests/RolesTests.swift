import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

/// Roles of authorized keys under CURVE: each key may call only its roles' methods.
@Suite struct RolesTests {
    struct Scene {
        let broker: BrokerProcess
        let serverKey: String
        let context: Context
        let folder: String

        func client(_ pair: CurveKeyPair) throws -> RawClient {
            try RawClient(context: context, endpoint: broker.commands, curve: (serverKey, pair))
        }

        func subscriber(_ pair: CurveKeyPair) throws -> AsyncSocket {
            try AsyncSocket(context: context, type: .sub) { socket in
                try socket.set(.linger, .zero)
                try socket.set(.curveServerKey, serverKey)
                try socket.set(.curvePublicKey, pair.publicKey)
                try socket.set(.curveSecretKey, pair.secretKey)
                try socket.subscribe("")
                try socket.connect(broker.events)
            }
        }
    }

    /// Runs `jobwire keys generate --name NAME --output FOLDER [--roles ROLES]`; returns its exit status.
    static func generate(_ name: String, roles: String?, in folder: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TestPaths.executable("jobwire"))
        process.arguments =
            ["keys", "generate", "--name", name, "--output", folder] + (roles.map { ["--roles", $0] } ?? [])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// A CURVE broker admitting keys made with `jobwire keys generate`, one per roles value.
    static func start(_ keys: [(name: String, roles: String?)]) async throws -> (Scene, [String: CurveKeyPair]) {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-roles")
        let server = try CurveKeyPair.generate()
        try (server.secretKey + "\n").write(toFile: folder + "/broker.key", atomically: true, encoding: .utf8)
        var pairs: [String: CurveKeyPair] = [:]
        try FileManager.default.createDirectory(atPath: folder + "/clients", withIntermediateDirectories: true)
        for key in keys {
            let pair = try CurveKeyPair.generate()
            let text = pair.publicKey + "\n" + (key.roles.map { "roles: \($0)\n" } ?? "")
            try text.write(toFile: "\(folder)/clients/\(key.name).pub", atomically: true, encoding: .utf8)
            pairs[key.name] = pair
        }
        let broker = try await BrokerProcess.start(arguments: [
            "--curve-secret-key", folder + "/broker.key", "--authorized-keys", folder + "/clients",
        ])
        return (Scene(broker: broker, serverKey: server.publicKey, context: try Context(), folder: folder), pairs)
    }

    static func error(_ response: RPCResponse) -> ProtocolError? {
        if case .failure(let error) = response.result { return error }
        return nil
    }

    @Test(
        "a call outside the key's roles is -32006 naming the method and role, and changes nothing",
        .timeLimit(.minutes(2)))
    func outsideRoles() async throws {
        let (scene, keys) = try await Self.start([
            ("producer", "produce,read"), ("worker", "work,read"), ("reader", "read"), ("owner", nil),
        ])
        let producer = try scene.client(keys["producer"]!)
        let worker = try scene.client(keys["worker"]!)
        let reader = try scene.client(keys["reader"]!)
        let owner = try scene.client(keys["owner"]!)

        let job = try await producer.result("jobs.create", ["type": "workbook", "operation": "export", "source": "s"])
        let id = try #require(job["id"])
        let info = try await reader.result("broker.info")

        let denied: [(RawClient, String, JSONObject, String)] = [
            (reader, "jobs.create", ["type": "workbook", "operation": "export", "source": "s"], "produce"),
            (worker, "jobs.cancel", ["jobId": id], "produce"),
            (producer, "jobs.ack", ["jobId": id], "work"),
            (reader, "jobs.claim", ["jobs": ["workbook:export"]], "work"),
            (producer, "jobs.delete", ["jobId": id], "admin"),
            (worker, "actions.mount", ["action": ["operation": "go"], "domain": "workbook"], "admin"),
            (reader, "actions.unmount", ["actionId": "us_ac_x"], "admin"),
        ]
        for (client, method, params, role) in denied {
            let response = try await client.call(method, params)
            let error = try #require(Self.error(response), "\(method) was allowed")
            #expect(error.code == .unauthorized, "\(method): \(error)")
            #expect(error.data["type"] == "unauthorized")
            #expect(error.message.contains(method) && error.message.contains(role), "\(error.message)")
        }
        // Nothing changed: the job is still ready and the log has no new event.
        #expect(try await reader.result("jobs.get", ["jobId": id])["status"] == "ready")
        #expect(try await reader.result("broker.info")["seq"] == info["seq"])

        // What the roles allow works, and a key without a roles line may do everything.
        let acked = try await worker.result("jobs.ack", ["jobId": id])
        #expect(acked["status"] == "executing")
        #expect(try await producer.result("jobs.cancel", ["jobId": id])["status"] == "canceled")
        _ = try await owner.result("jobs.delete", ["jobId": id])
        for client in [producer, worker, reader, owner] { await client.close() }
        await scene.broker.stop()
    }

    @Test("a key without the read role cannot subscribe to events; a reader can", .timeLimit(.minutes(2)))
    func subscribeNeedsRead() async throws {
        let (scene, keys) = try await Self.start([("producer", "produce"), ("reader", "read")])
        let denied = try scene.subscriber(keys["producer"]!)
        let allowed = try scene.subscriber(keys["reader"]!)
        let producer = try scene.client(keys["producer"]!)
        let seen = Locked(0)
        let deniedSeen = Locked(0)
        let readers = [
            Task { for try await _ in allowed.messages { seen.withLock { $0 += 1 } } },
            Task { for try await _ in denied.messages { deniedSeen.withLock { $0 += 1 } } },
        ]
        // Heartbeats and job events keep coming; the reader sees several, the other none.
        try await eventually("a reader sees events", timeout: .seconds(60)) {
            _ = try await producer.result("jobs.create", ["type": "workbook", "operation": "export", "source": "s"])
            return seen.withLock { $0 } >= 10
        }
        #expect(deniedSeen.withLock { $0 } == 0)
        for task in readers { task.cancel() }
        await denied.close()
        await allowed.close()
        await producer.close()
        await scene.broker.stop()
    }

    @Test("jobwire keys generate --roles writes the roles line, and refuses an unknown role")
    func generateRoles() throws {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-roles")
        #expect(try Self.generate("w", roles: "read, work", in: folder) == 0)
        let text = try String(contentsOfFile: folder + "/w.pub", encoding: .utf8)
        let lines = text.split(whereSeparator: \.isNewline)
        #expect(lines.count == 2 && lines[0].count == 40)
        #expect(lines.last == "roles: work,read")
        #expect(try Self.generate("x", roles: "work,root", in: folder) != 0)
        #expect(!FileManager.default.fileExists(atPath: folder + "/x.pub"))
        #expect(!FileManager.default.fileExists(atPath: folder + "/x.key"))
    }
}
