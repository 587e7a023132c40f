import Testing
import ZeroMQ

@Suite(.enabled(if: ZMQ.has("curve"))) struct CurveTests {
    let context: Context

    init() throws {
        context = try Context()
    }

    @Test("generated keys are 40 characters of Z85 and the public key derives from the secret")
    func keyShapes() throws {
        let pair = try CurveKeyPair.generate()
        let z85 = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")
        #expect(pair.publicKey.count == 40)
        #expect(pair.secretKey.count == 40)
        #expect(pair.publicKey.allSatisfy(z85.contains))
        #expect(pair.secretKey.allSatisfy(z85.contains))
        #expect(try CurveKeyPair.publicKey(forSecret: pair.secretKey) == pair.publicKey)
        #expect(try CurveKeyPair.generate() != pair)
        #expect(throws: ZMQError.invalidArgument) { try CurveKeyPair.publicKey(forSecret: "short") }
    }

    @Test("an allowed client gets in with its key as User-Id; an unknown key is refused", .timeLimit(.minutes(1)))
    func allowList() throws {
        let server = try CurveKeyPair.generate()
        let allowed = try CurveKeyPair.generate()
        let stranger = try CurveKeyPair.generate()
        let auth = try ZAPAuthenticator(context: context, allowedClientKeys: [allowed.publicKey])
        defer { auth.stop() }
        #expect(auth.allowedClientKeys == [allowed.publicKey])

        let pull = try Socket(context, type: .pull)
        try pull.set(.curveServer, true)
        try pull.set(.curveSecretKey, server.secretKey)
        try pull.set(.zapDomain, "jobwire")
        try pull.bind("tcp://127.0.0.1:*")
        let endpoint = try pull.lastEndpoint
        #expect(try pull.get(.curveServer))

        func client(_ keys: CurveKeyPair) throws -> Socket {
            let push = try Socket(context, type: .push)
            try push.set(.curveServerKey, server.publicKey)
            try push.set(.curvePublicKey, keys.publicKey)
            try push.set(.curveSecretKey, keys.secretKey)
            try push.connect(endpoint)
            return push
        }
        // The stranger speaks first, so its message would be first in line if it got through.
        let bad = try client(stranger)
        try bad.send(["from stranger".bytes])
        let good = try client(allowed)
        #expect(try good.get(.curvePublicKey) == allowed.publicKey)
        try good.send(["from allowed".bytes])

        var poller = Poller()
        poller.add(pull)
        #expect(try poller.poll(timeout: .seconds(5)) == 1)
        let message = try #require(try pull.receiveMultipart(dontWait: true, metadata: "User-Id"))
        #expect(message.frames == ["from allowed".bytes])
        #expect(message.property == allowed.publicKey)
        // The stranger's message never arrives.
        #expect(try poller.poll(timeout: .milliseconds(300)) == 0)

        // Allowing it at runtime lets its next handshake (after a reconnect) through.
        auth.allow(stranger.publicKey)
        #expect(auth.allowedClientKeys == [allowed.publicKey, stranger.publicKey])
        auth.revoke(stranger.publicKey)
        #expect(auth.allowedClientKeys == [allowed.publicKey])
    }

    @Test("a CURVE client of a server with the wrong key never gets a message through", .timeLimit(.minutes(1)))
    func wrongServerKey() throws {
        let server = try CurveKeyPair.generate()
        let impostor = try CurveKeyPair.generate()
        let client = try CurveKeyPair.generate()
        let pull = try Socket(context, type: .pull)
        try pull.set(.curveServer, true)
        try pull.set(.curveSecretKey, server.secretKey)
        try pull.bind("tcp://127.0.0.1:*")
        let push = try Socket(context, type: .push)
        try push.set(.curveServerKey, impostor.publicKey)
        try push.set(.curvePublicKey, client.publicKey)
        try push.set(.curveSecretKey, client.secretKey)
        try push.connect(try pull.lastEndpoint)
        try push.send(["hello".bytes])
        var poller = Poller()
        poller.add(pull)
        #expect(try poller.poll(timeout: .milliseconds(300)) == 0)
    }
}
