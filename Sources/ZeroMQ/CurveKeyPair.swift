internal import CZeroMQ

/// A CURVE (Curve25519) key pair, both keys as 40 characters of Z85 text.
public struct CurveKeyPair: Sendable, Hashable {
    /// The public key, 40 characters of Z85; safe to share.
    public let publicKey: String
    /// The secret key, 40 characters of Z85; keep it private.
    public let secretKey: String

    /// Pairs two Z85 keys, e.g. read from configuration. Nothing is checked here.
    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// Makes a new random key pair.
    ///
    /// The corresponding libzmq call is `zmq_curve_keypair`.
    /// - Throws: ``ZMQError/notSupported`` if libzmq was built without CURVE.
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        try check(zmq_curve_keypair(&publicKey, &secretKey))
        return CurveKeyPair(publicKey: z85String(publicKey), secretKey: z85String(secretKey))
    }

    /// Derives the public key that belongs to a secret key.
    ///
    /// The corresponding libzmq call is `zmq_curve_public`.
    /// - Parameter secretKey: 40 characters of Z85.
    /// - Returns: the public key, 40 characters of Z85.
    /// - Throws: ``ZMQError/invalidArgument`` for a malformed key, ``ZMQError/notSupported`` without CURVE.
    public static func publicKey(forSecret secretKey: String) throws(ZMQError) -> String {
        guard secretKey.utf8.count == 40 else { throw .invalidArgument }
        var publicKey = [CChar](repeating: 0, count: 41)
        try check(zmq_curve_public(&publicKey, secretKey))
        return z85String(publicKey)
    }
}

/// Z85 text of 32 key bytes (as in a ZAP request's CURVE credentials), or `nil` for another size.
///
/// The corresponding libzmq call is `zmq_z85_encode`.
func z85Encode(_ key: [UInt8]) -> String? {
    guard key.count == 32 else { return nil }
    var text = [CChar](repeating: 0, count: 41)
    guard zmq_z85_encode(&text, key, 32) != nil else { return nil }
    return z85String(text)
}

private func z85String(_ characters: [CChar]) -> String {
    String(decoding: characters.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Facts about the libzmq this process runs with.
public enum ZMQ {
    /// libzmq's version, e.g. `(4, 3, 4)`.
    ///
    /// The corresponding libzmq call is `zmq_version`.
    public static var version: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }

    /// Whether libzmq was built with a capability: `"curve"`, `"ipc"`, `"draft"`, ….
    ///
    /// The corresponding libzmq call is `zmq_has`.
    public static func has(_ capability: String) -> Bool {
        zmq_has(capability) != 0
    }
}
