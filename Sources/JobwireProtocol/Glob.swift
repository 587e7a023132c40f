// Temporary stand-in; the glob branch replaces this file with the full wildcard-match implementation.
public struct Glob: Sendable, Hashable {
    public let pattern: String
    public init(_ pattern: String, separator: UInt8 = UInt8(ascii: ":")) { self.pattern = pattern }
    public func matches(_ sample: String) -> Bool {
        if pattern == "**" { return true }
        let p = pattern.split(separator: ":", omittingEmptySubsequences: false)
        let s = sample.split(separator: ":", omittingEmptySubsequences: false)
        if p.last == "**" { return s.count >= p.count - 1 && zip(p.dropLast(), s).allSatisfy { $0 == "*" || $0 == $1 } }
        return p.count == s.count && zip(p, s).allSatisfy { $0 == "*" || $0 == $1 }
    }
}
