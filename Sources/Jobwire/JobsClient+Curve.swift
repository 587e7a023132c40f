import Foundation
internal import ZeroMQ

extension JobsClient.CurveConfiguration {
    /// The environment variable a secret key may come from (the key itself, or the path of a file holding
    /// it): a key given on a command line shows in `ps` to every local user.
    public static let secretKeyEnvironmentVariable = "JOBWIRE_CURVE_SECRET_KEY"

    /// A configuration with this client's secret key read from a file, as `jobwire keys generate` writes it
    /// (its first line of 40 characters), and the public key derived from it.
    /// - Parameters:
    ///   - serverPublicKey: the broker's public key.
    ///   - secretKeyFile: the path of the file holding this client's secret key.
    /// - Throws: ``CurveKeyError`` when the file cannot be read or holds no valid secret key.
    public init(serverPublicKey: String, secretKeyFile path: String) throws(CurveKeyError) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CurveKeyError(description: "cannot read the secret key file \(path)")
        }
        guard let key = Self.firstKey(in: text) else {
            throw CurveKeyError(description: "\(path) holds no 40-character Z85 key")
        }
        try self.init(serverPublicKey: serverPublicKey, secretKey: key)
    }

    /// A configuration with this client's secret key from ``secretKeyEnvironmentVariable`` (a key, or the
    /// path of a file holding one), or nil when it is not set.
    /// - Parameters:
    ///   - serverPublicKey: the broker's public key.
    ///   - environment: where to look; the process's environment when nil.
    /// - Throws: ``CurveKeyError`` when the variable holds neither a valid key nor a readable key file.
    public init?(serverPublicKey: String, environment: [String: String]? = nil) throws(CurveKeyError) {
        let variables = environment ?? ProcessInfo.processInfo.environment
        guard let value = variables[Self.secretKeyEnvironmentVariable], !value.isEmpty else { return nil }
        if value.utf8.count == 40 && !FileManager.default.fileExists(atPath: value) {
            try self.init(serverPublicKey: serverPublicKey, secretKey: value)
        } else {
            try self.init(serverPublicKey: serverPublicKey, secretKeyFile: value)
        }
    }

    /// A configuration with this client's secret key, and its public key derived from it.
    /// - Throws: ``CurveKeyError`` for a key that is not 40 characters of Z85.
    public init(serverPublicKey: String, secretKey: String) throws(CurveKeyError) {
        let publicKey: String
        do {
            publicKey = try CurveKeyPair.publicKey(forSecret: secretKey)
        } catch {
            throw CurveKeyError(description: "the CURVE secret key is not a 40-character Z85 key")
        }
        self.init(serverPublicKey: serverPublicKey, publicKey: publicKey, secretKey: secretKey)
    }

    private static func firstKey(in text: String) -> String? {
        text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.count == 40 && !$0.hasPrefix("#") }
    }
}

/// A CURVE key that could not be read or is not valid.
public struct CurveKeyError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, naming the file or the variable.
    public var description: String
}
