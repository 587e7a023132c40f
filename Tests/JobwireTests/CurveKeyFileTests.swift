import Foundation
import Jobwire
import JobwireTestSupport
import Testing
import ZeroMQ

@Suite struct CurveKeyFileTests {
    @Test(
        "the SDK reads its CURVE secret key from a file or JOBWIRE_CURVE_SECRET_KEY and is served by a CURVE broker",
        .timeLimit(.minutes(1)))
    func secretKeyFromFileOrEnvironment() async throws {
        let server = try CurveKeyPair.generate()
        let pair = try CurveKeyPair.generate()
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-curve")
        try (server.secretKey + "\n").write(toFile: folder + "/broker.key", atomically: true, encoding: .utf8)
        try ("# a comment\n" + pair.secretKey + "\n").write(
            toFile: folder + "/client.key", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: folder + "/clients", withIntermediateDirectories: true)
        try (pair.publicKey + "\n").write(toFile: folder + "/clients/c.pub", atomically: true, encoding: .utf8)
        try await withBroker(arguments: [
            "--in-memory", "--curve-secret-key-file", folder + "/broker.key", "--authorized-keys", folder + "/clients",
        ]) { broker in

            let fromFile = try JobsClient.CurveConfiguration(
                serverPublicKey: server.publicKey, secretKeyFile: folder + "/client.key")
            #expect(fromFile.publicKey == pair.publicKey)
            let fromKey = try #require(
                try JobsClient.CurveConfiguration(
                    serverPublicKey: server.publicKey, environment: ["JOBWIRE_CURVE_SECRET_KEY": pair.secretKey]))
            let fromPath = try #require(
                try JobsClient.CurveConfiguration(
                    serverPublicKey: server.publicKey, environment: ["JOBWIRE_CURVE_SECRET_KEY": folder + "/client.key"]
                ))
            #expect(try JobsClient.CurveConfiguration(serverPublicKey: server.publicKey, environment: [:]) == nil)
            for curve in [fromFile, fromKey, fromPath] {
                #expect(curve.secretKey == pair.secretKey)
                let client = try JobsClient(
                    commands: broker.commands, configuration: .init(requestTimeout: .seconds(5), curve: curve))
                let job = try await client.create(type: "secure", operation: "export", source: "s")
                #expect(job.status == .ready)
                await client.close()
            }
            #expect(throws: CurveKeyError.self) {
                try JobsClient.CurveConfiguration(serverPublicKey: server.publicKey, secretKeyFile: folder + "/none")
            }
            #expect(throws: CurveKeyError.self) {
                try JobsClient.CurveConfiguration(serverPublicKey: server.publicKey, secretKey: "short")
            }
        }
    }
}
