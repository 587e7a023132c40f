import Testing

@testable import jobwire

/// Z85, the alphabet of CURVE keys, has `-`: about one key in 85 starts with it.
@Suite("CURVE key options")
struct KeyOptionTests {
    static let dashedKey = "-Kz1gVv!mQ&R[]7@0C#8eD{qsz5y2o^XwLtJp$aB"

    @Test("a key that starts with - is the option's value, not an option")
    func dashedKeys() throws {
        let client = try ClientOptions.parse([
            "--curve-server-key", Self.dashedKey, "--curve-secret-key", Self.dashedKey,
        ])
        #expect(client.curveServerKey == Self.dashedKey)
        #expect(client.curveSecretKey == Self.dashedKey)
        let broker = try BrokerCommand.parse(["--curve-secret-key", Self.dashedKey])
        #expect(broker.curveSecretKey == Self.dashedKey)
    }
}
