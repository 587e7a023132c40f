#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension JobsClient {
    /// A new `instanceId`: `<host>-<pid>-<6 random characters>`, at most 64 characters of `[A-Za-z0-9._:-]`
    /// as the broker requires; the host and pid tell people which process holds a lease.
    public static func makeInstanceId() -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let named = buffer.withUnsafeMutableBytes {
            gethostname($0.baseAddress!.assumingMemoryBound(to: CChar.self), 255)
        }
        var host = named == 0 ? String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self) : "host"
        host = String(host.prefix(40).map { Self.isInstanceCharacter($0) ? $0 : "-" })
        if host.isEmpty { host = "host" }
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        var random = SystemRandomNumberGenerator()
        let suffix = String((0..<6).map { _ in alphabet[Int(random.next(upperBound: UInt(alphabet.count)))] })
        return "\(host)-\(getpid())-\(suffix)"
    }

    private static func isInstanceCharacter(_ c: Character) -> Bool {
        guard c.isASCII, let ascii = c.asciiValue else { return false }
        return (ascii >= 0x30 && ascii <= 0x39) || (ascii >= 0x41 && ascii <= 0x5A) || (ascii >= 0x61 && ascii <= 0x7A)
            || c == "." || c == "_" || c == ":" || c == "-"
    }
}
