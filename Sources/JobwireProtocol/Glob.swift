/// A Flatfile topic glob: the pattern language of `wildcard-match` v5, which `@flatfile/listener` uses for
/// topics (separator `:`), filter keys (separator `.`) and filter values (separator `:`).
///
/// - `*` matches any run of characters within one segment, also an empty one.
/// - `?` matches one character (one Unicode scalar) within a segment.
/// - `**` as a whole segment matches any number of segments, none included; inside a segment (`a**`) it is
///   just two `*`.
/// - `\` makes the next character literal. The pattern is split at separators first, so `\:` does not
///   escape a separator, and a `\` at the end of a segment is dropped.
/// - Matching is case-sensitive and covers the whole sample.
/// - A separator in the pattern matches one or more separators in the sample (`a:b` matches `a::b`); a
///   pattern without a trailing separator also matches samples that have trailing separators (`a:b`
///   matches `a:b:`); a pattern with one requires at least one (`a:b:` does not match `a:b`).
///
/// These follow `wildcard-match`'s `transform()` to the letter, including one surprise: the separator
/// before a trailing `**` is optional there, so `job:**` matches `job`, `job:ready` and also `jobs:ready`.
///
/// The pattern is compiled once, runs of `*` folded into one step; ``matches(_:)`` walks the sample's UTF-8
/// bytes once per step (a simulation of the pattern's automaton, no backtracking), so it takes time
/// proportional to the pattern's length times the sample's, never exponential. Callers that take patterns
/// from clients cap them with ``checkPatterns(_:field:)``: ``maxPatternBytes`` each, ``maxPatterns`` in all.
public struct Glob: Sendable, Hashable, CustomStringConvertible {
    /// The longest pattern a client may send, in UTF-8 bytes.
    public static let maxPatternBytes = 256
    /// The most patterns a client may send in one call.
    public static let maxPatterns = 32

    /// The pattern as written.
    public let pattern: String
    /// The segment separator, an ASCII byte.
    public let separator: UInt8
    let steps: [Step]
    /// For each byte value, 1 + the index of its mask in a match, or 0 when no `.byte` step uses it.
    let byteSlots: [UInt8]
    /// How many distinct bytes the `.byte` steps use.
    let slotCount: Int
    /// Whether any step is `.one`, which needs the masks of where characters start.
    let hasOne: Bool

    /// One step of the compiled pattern; each mirrors a piece of the regular expression `transform()` builds.
    enum Step: Hashable {
        /// The byte itself.
        case byte(UInt8)
        /// `?`: one character that is not a separator.
        case one
        /// `*`: any run of characters that are not separators.
        case star
        /// A separator: one or more (`required`) or any number (`!required`) of them.
        case separators(required: Bool)
        /// `**` as a segment: any run of segments, each followed by one or more separators (`required`), or
        /// simply anything at all (`!required`).
        case segments(required: Bool)
    }

    /// Compiles a pattern.
    /// - Parameters:
    ///   - pattern: The glob.
    ///   - separator: The ASCII byte that separates segments: `:` for topics and values, `.` for key paths.
    public init(_ pattern: String, separator: UInt8 = UInt8(ascii: ":")) {
        precondition(separator < 0x80, "the separator must be an ASCII byte")
        self.pattern = pattern
        self.separator = separator
        let steps = Glob.compile(Array(pattern.utf8), separator: separator)
        self.steps = steps
        var slots = [UInt8](repeating: 0, count: 256)
        var slotCount = 0
        var hasOne = false
        for step in steps {
            switch step {
            case .byte(let byte) where slots[Int(byte)] == 0:
                slotCount += 1
                slots[Int(byte)] = UInt8(slotCount)
            case .one: hasOne = true
            default: break
            }
        }
        self.byteSlots = slots
        self.slotCount = slotCount
        self.hasOne = hasOne
    }

    public var description: String { pattern }

    /// Whether the whole sample matches the pattern.
    public func matches(_ sample: String) -> Bool {
        var sample = sample
        return sample.withUTF8 { matches(bytes: $0) }
    }

    /// Whether the whole sample, as UTF-8 bytes, matches the pattern.
    ///
    /// A bit-parallel simulation of the pattern's automaton: bit `i` of a row says "the pattern so far can
    /// end at byte offset `i`", and each step computes the next row from the last with word operations (a
    /// shift and a mask for a byte, a carry-propagating addition for a run of `*` or separators), so a step
    /// costs one operation per 64 bytes of the sample.
    public func matches(bytes sample: UnsafeBufferPointer<UInt8>) -> Bool {
        let count = sample.count
        if steps.isEmpty { return count == 0 }
        let words = (count + 64) / 64
        let rows = 6 + (hasOne ? 4 : 0) + slotCount
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: rows * words) { buffer in
            buffer.initialize(repeating: 0)
            let base = buffer.baseAddress!
            var current = base
            var next = base + words
            let scratch = base + 2 * words
            let isSeparator = base + 3 * words
            let notSeparator = base + 4 * words
            let valid = base + 5 * words
            // Where a character of 1...4 bytes that is not a separator starts, by its length.
            let starts = base + 6 * words
            let slots = base + (6 + (hasOne ? 4 : 0)) * words
            current[0] = 1
            valid[0] = 1
            for i in stride(from: 1, through: count, by: 1) {
                let byte = sample[i - 1]
                let word = i >> 6
                let bit = UInt64(1) << UInt64(i & 63)
                valid[word] |= bit
                if byte == separator { isSeparator[word] |= bit } else { notSeparator[word] |= bit }
                let slot = Int(byteSlots[Int(byte)])
                if slot > 0 { slots[(slot - 1) * words + word] |= bit }
            }
            if hasOne {
                var i = 0
                while i < count {
                    let lead = sample[i]
                    var end = i + 1
                    while end < count, sample[end] & 0xC0 == 0x80 { end += 1 }
                    if lead != separator, lead & 0xC0 != 0x80, end - i <= 4 {
                        starts[(end - i - 1) * words + (i >> 6)] |= UInt64(1) << UInt64(i & 63)
                    }
                    i += 1
                }
            }
            for step in steps {
                switch step {
                case .byte(let byte):
                    let mask = slots + (Int(byteSlots[Int(byte)]) - 1) * words
                    Glob.shift(current, by: 1, into: next, words: words)
                    for w in 0..<words { next[w] &= mask[w] }
                case .one:
                    for w in 0..<words { next[w] = 0 }
                    for length in 1...4 {
                        let mask = starts + (length - 1) * words
                        for w in 0..<words { scratch[w] = current[w] & mask[w] }
                        Glob.shift(scratch, by: length, into: scratch, words: words)
                        for w in 0..<words { next[w] |= scratch[w] }
                    }
                case .star:
                    Glob.fill(from: current, through: notSeparator, into: next, scratch: scratch, words: words)
                    for w in 0..<words { next[w] |= current[w] }
                case .separators(let required):
                    Glob.fill(from: current, through: isSeparator, into: next, scratch: scratch, words: words)
                    if !required { for w in 0..<words { next[w] |= current[w] } }
                case .segments(let required):
                    // Anything (or anything that ends in a separator) after the first offset reached.
                    var seen = false
                    for w in 0..<words {
                        let word = current[w]
                        var above: UInt64
                        if seen {
                            above = ~0
                        } else if word != 0 {
                            // The bits above the lowest set one.
                            above = ~((word & (~word &+ 1)) << 1 &- 1)
                            seen = true
                        } else {
                            above = 0
                        }
                        above &= required ? isSeparator[w] : valid[w]
                        next[w] = word | above
                    }
                }
                swap(&current, &next)
                var any: UInt64 = 0
                for w in 0..<words { any |= current[w] }
                if any == 0 { return false }
            }
            return current[count >> 6] & (UInt64(1) << UInt64(count & 63)) != 0
        }
    }

    /// `output = input << distance` over `words` words (`distance` from 1 to 63); `output` may be `input`.
    private static func shift(
        _ input: UnsafeMutablePointer<UInt64>, by distance: Int, into output: UnsafeMutablePointer<UInt64>, words: Int
    ) {
        var carry: UInt64 = 0
        let back = UInt64(64 - distance)
        for w in 0..<words {
            let value = input[w]
            output[w] = value << UInt64(distance) | carry
            carry = value >> back
        }
    }

    /// The offsets reached from `seeds` by one or more bytes of `allowed` (bit `i` of `allowed`: the byte
    /// before offset `i` may be crossed): each seed's bit moves right through its run of allowed bits.
    ///
    /// With `x = (seeds << 1) & allowed`, adding `x` to `allowed` carries through each run from its first
    /// bit in `x`, clearing the run; the bits that changed, with `x`, masked by `allowed`, are the run.
    private static func fill(
        from seeds: UnsafeMutablePointer<UInt64>, through allowed: UnsafeMutablePointer<UInt64>,
        into output: UnsafeMutablePointer<UInt64>, scratch: UnsafeMutablePointer<UInt64>, words: Int
    ) {
        shift(seeds, by: 1, into: scratch, words: words)
        var carry: UInt64 = 0
        for w in 0..<words {
            let a = allowed[w]
            let x = scratch[w] & a
            let (partial, overflow1) = a.addingReportingOverflow(x)
            let (sum, overflow2) = partial.addingReportingOverflow(carry)
            carry = overflow1 || overflow2 ? 1 : 0
            output[w] = ((sum ^ a) | x) & a
        }
    }

    /// The same answer as ``matches(bytes:)`` by a plain row-by-row simulation, one flag per offset: the
    /// reference the bit-parallel matcher is tested against.
    func matchesByRows(bytes sample: UnsafeBufferPointer<UInt8>) -> Bool {
        let count = sample.count
        if steps.isEmpty { return count == 0 }
        return withUnsafeTemporaryAllocation(of: Bool.self, capacity: 2 * (count + 1)) { buffer in
            var current = UnsafeMutableBufferPointer(rebasing: buffer[0...count])
            var next = UnsafeMutableBufferPointer(rebasing: buffer[(count + 1)...])
            current.initialize(repeating: false)
            next.initialize(repeating: false)
            current[0] = true
            for step in steps {
                advance(step, sample: sample, from: current, to: next)
                swap(&current, &next)
                if !current.contains(true) { return false }
            }
            return current[count]
        }
    }

    private func advance(
        _ step: Step, sample: UnsafeBufferPointer<UInt8>, from current: UnsafeMutableBufferPointer<Bool>,
        to next: UnsafeMutableBufferPointer<Bool>
    ) {
        let count = sample.count
        let separator = self.separator
        switch step {
        case .byte(let byte):
            next[0] = false
            for i in stride(from: 1, through: count, by: 1) {
                next[i] = current[i - 1] && sample[i - 1] == byte
            }
        case .one:
            next.update(repeating: false)
            var i = 0
            while i < count {
                let lead = sample[i]
                var end = i + 1
                // A character is a whole scalar: the lead byte and its continuation bytes.
                while end < count, sample[end] & 0xC0 == 0x80 { end += 1 }
                if current[i], lead != separator, lead & 0xC0 != 0x80 { next[end] = true }
                i += 1
            }
        case .star:
            next[0] = current[0]
            for i in stride(from: 1, through: count, by: 1) {
                next[i] = current[i] || (next[i - 1] && sample[i - 1] != separator)
            }
        case .separators(let required):
            next[0] = required ? false : current[0]
            for i in stride(from: 1, through: count, by: 1) {
                let isSeparator = sample[i - 1] == separator
                next[i] =
                    required
                    ? isSeparator && (current[i - 1] || next[i - 1])
                    : current[i] || (isSeparator && next[i - 1])
            }
        case .segments(let required):
            var reached = false
            for i in 0...count {
                // Without separators a run of segments is anything; with them, anything that ends in one.
                next[i] = current[i] || (reached && (!required || sample[i - 1] == separator))
                reached = reached || current[i]
            }
        }
    }

    static func compile(_ pattern: [UInt8], separator: UInt8) -> [Step] {
        let segments = pattern.split(separator: separator, omittingEmptySubsequences: false)
        let globstar: ArraySlice<UInt8> = [UInt8(ascii: "*"), UInt8(ascii: "*")]
        var steps: [Step] = []
        for (s, segment) in segments.enumerated() {
            if segment.isEmpty && s > 0 { continue }
            // nil: no separator step (the next segment is `**`, which brings its own).
            let separatorRequired: Bool?
            if s == segments.count - 1 {
                separatorRequired = false
            } else if segments[s + 1] != globstar {
                separatorRequired = true
            } else {
                separatorRequired = nil
            }
            if segment == globstar {
                if let separatorRequired {
                    if s != 0 { steps.append(.separators(required: separatorRequired)) }
                    steps.append(.segments(required: separatorRequired))
                }
                continue
            }
            var index = segment.startIndex
            while index < segment.endIndex {
                let byte = segment[index]
                switch byte {
                case UInt8(ascii: "\\"):
                    if index + 1 < segment.endIndex {
                        steps.append(.byte(segment[index + 1]))
                        index += 1
                    }
                case UInt8(ascii: "?"): steps.append(.one)
                // `**` within a segment matches what `*` does: one step for the whole run.
                case UInt8(ascii: "*") where steps.last != .star: steps.append(.star)
                case UInt8(ascii: "*"): break
                default: steps.append(.byte(byte))
                }
                index += 1
            }
            if let separatorRequired { steps.append(.separators(required: separatorRequired)) }
        }
        return steps
    }
}

extension Glob {
    /// Checks patterns a client sent: at most ``maxPatterns`` of them, each at most ``maxPatternBytes``.
    /// - Parameters:
    ///   - patterns: The patterns, in the order sent.
    ///   - field: The dotted path of the list (`topics`, `jobs`); an entry is named `field.index`.
    /// - Throws: ``FieldError`` naming the list, or the entry that is too long.
    public static func checkPatterns(_ patterns: [String], field: String) throws(FieldError) {
        guard patterns.count <= maxPatterns else {
            throw FieldError(
                field: field, message: "\(field) may have at most \(maxPatterns) patterns, not \(patterns.count)")
        }
        for (index, pattern) in patterns.enumerated() where pattern.utf8.count > maxPatternBytes {
            throw FieldError(
                field: "\(field).\(index)",
                message:
                    "\(field).\(index) is \(pattern.utf8.count) bytes; a pattern may have at most \(maxPatternBytes)")
        }
    }

    /// The text every match starts with, assuming samples never repeat a separator (`job:*` → `job:`,
    /// `*:ready` → empty, `job:**` → `job`, since `**` may match no segment at all).
    public var literalPrefix: String {
        var bytes: [UInt8] = []
        for step in steps {
            switch step {
            case .byte(let byte): bytes.append(byte)
            case .separators(required: true): bytes.append(separator)
            case .separators(required: false), .one, .star, .segments:
                return String(decoding: bytes, as: UTF8.self)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether the pattern has no wildcard, so it matches one name only (up to repeated or trailing
    /// separators, which names do not have). ``literalPrefix`` is then that name.
    public var isLiteral: Bool {
        steps.allSatisfy { step in
            switch step {
            case .byte, .separators: true
            case .one, .star, .segments: false
            }
        }
    }
}

/// Several globs that match a sample when any of them does, as `on(["job:ready", "job:failed"], …)`.
///
/// An empty set matches nothing, as `wildcard-match` with an empty array matches no non-empty sample.
/// (Flatfile's listener turns a *missing* query into `**`; a caller that wants that passes `["**"]`.)
public struct GlobSet: Sendable, Hashable, CustomStringConvertible {
    public let globs: [Glob]

    /// Compiles each pattern.
    /// - Parameters:
    ///   - patterns: The globs, any of which may match.
    ///   - separator: The ASCII byte that separates segments.
    public init(_ patterns: [String], separator: UInt8 = UInt8(ascii: ":")) {
        globs = patterns.map { Glob($0, separator: separator) }
    }

    public var isEmpty: Bool { globs.isEmpty }

    /// Whether any of the globs matches the whole sample.
    public func matches(_ sample: String) -> Bool {
        var sample = sample
        return sample.withUTF8 { bytes in globs.contains { $0.matches(bytes: bytes) } }
    }

    public var description: String { globs.map(\.pattern).description }
}
