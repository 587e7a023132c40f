/// A Flatfile filter object (`listener.filter({...})`, `on(topic, {...}, cb)`): `objectMatches` of
/// `@flatfile/listener`, research spec §4.3.
///
/// The event is flattened into dotted paths (`topic`, `domain`, `id`, `createdAt`, `context.jobId`,
/// `payload.job`, `context.slugs.sheet`, …); arrays and empty objects are leaves. The filter is flattened the
/// same way, so `{payload: {job: "x"}}` is `{"payload.job": "x"}`. Then every key must match (AND):
///
/// - A key with neither `.` nor `*` matches at any depth, as a path suffix: `job` matches `payload.job`,
///   `sheet` matches `context.slugs.sheet`. Any other key is a ``Glob`` over the paths with separator `.`,
///   so `payload.status` matches only the top-level `payload.status`.
/// - The key matches when some path it selects holds a value that matches some filter value; an array of
///   filter values means OR.
/// - A string filter value is a ``Glob`` (separator `:`) against the value's JavaScript string form, so
///   `"1"` matches the number 1 and `"*"` does not match `space:configure` (use `"*:*"` or `"**"`). An
///   empty string value never matches a string filter, and an empty string filter is `**`.
/// - Any other filter value compares strictly (`false` does not match a missing `isPart`); numbers compare
///   by value, whether written as integers or not.
/// - An array in the event matches when any of its elements does.
/// - A `null` filter value matches a `null` value and, unlike Flatfile, also a key that no path selects;
///   Flatfile only matches properties that exist with the value `undefined`, which JSON cannot express.
/// - An empty filter matches every event.
///
/// Key and value globs are compiled once, here; matching flattens the event once per call, or not at all
/// by passing a ``FlatJSONObject`` to `matches(_:)`.
public struct EventFilter: Sendable, Hashable {
    /// One key of the filter and the values any of which may match.
    struct Clause: Sendable, Hashable {
        var key: String
        var keyGlob: Glob
        var values: [ValueMatcher]
    }

    enum ValueMatcher: Sendable, Hashable {
        /// Matches `null` and absent values.
        case null
        case glob(Glob)
        /// Strict equality with a boolean or a number.
        case equal(JSONValue)
        /// An object or array in the filter, which JavaScript's `===` never finds equal.
        case never
    }

    private(set) var clauses: [Clause]

    /// The filter that matches every event.
    public static let all = EventFilter(JSONObject())

    /// Compiles a filter object.
    /// - Parameter filter: Keys to match (globs or path suffixes) and their value patterns.
    public init(_ filter: JSONObject) {
        clauses = FlatJSONObject(filter).entries.map { entry in
            let pattern = entry.path.contains("*") || entry.path.contains(".") ? entry.path : "**.\(entry.path)"
            let values: [JSONValue] = if case .array(let list) = entry.value { list } else { [entry.value] }
            return Clause(
                key: entry.path, keyGlob: Glob(pattern, separator: UInt8(ascii: ".")),
                values: values.map(EventFilter.matcher))
        }
    }

    /// Compiles any filter value, as `objectMatches` takes it: an object is a filter object; an array is
    /// an object keyed by index (as JavaScript sees it); any other value `v` is `{"**": v}`, "this value
    /// anywhere".
    // Disfavored so that a dictionary literal picks the filter-object initializer.
    @_disfavoredOverload
    public init(_ filter: JSONValue) {
        switch filter {
        case .object(let object):
            self.init(object)
        case .array(let array):
            var object = JSONObject()
            for (index, element) in array.enumerated() { object[String(index)] = element }
            self.init(object)
        default:
            self.init(JSONObject(dictionaryLiteral: ("**", filter)))
        }
    }

    /// Whether the filter has no keys, and so matches every event.
    public var isEmpty: Bool { clauses.isEmpty }

    /// A filter that matches what both this one and `other` match, as a `filter()` or `namespace()` group
    /// nested in another does.
    public func combined(with other: EventFilter) -> EventFilter {
        var result = self
        result.clauses.append(contentsOf: other.clauses)
        return result
    }

    /// Whether the event matches every key of the filter.
    public func matches(_ event: Event) -> Bool {
        if clauses.isEmpty { return true }
        return matches(FlatJSONObject(event))
    }

    /// Whether an arbitrary object matches every key of the filter.
    public func matches(_ object: JSONObject) -> Bool {
        if clauses.isEmpty { return true }
        return matches(FlatJSONObject(object))
    }

    /// Whether an already flattened object matches every key of the filter; flatten once to test many.
    public func matches(_ flat: FlatJSONObject) -> Bool {
        // Plain loops: Swift 6.3's optimizer crashes (CopyPropagation) on the nested-closure form.
        for clause in clauses where !EventFilter.clause(clause, matches: flat) { return false }
        return true
    }

    private static func clause(_ clause: Clause, matches flat: FlatJSONObject) -> Bool {
        var selectedAny = false
        for entry in flat.entries where clause.keyGlob.matches(entry.path) {
            selectedAny = true
            for matcher in clause.values where value(entry.value, matches: matcher) { return true }
        }
        return !selectedAny && clause.values.contains(.null)
    }

    static func matcher(_ value: JSONValue) -> ValueMatcher {
        switch value {
        case .null: .null
        case .string(let pattern): .glob(Glob(pattern.isEmpty ? "**" : pattern))
        case .bool, .int, .double: .equal(value)
        case .array, .object: .never
        }
    }

    static func value(_ value: JSONValue, matches matcher: ValueMatcher) -> Bool {
        switch value {
        case .null:
            return matcher == .null
        case .array(let elements):
            return elements.contains { EventFilter.value($0, matches: matcher) }
        default:
            break
        }
        switch matcher {
        case .null, .never:
            return false
        case .glob(let glob):
            let text = javaScriptString(value)
            return !text.isEmpty && glob.matches(text)
        case .equal(let expected):
            switch (value, expected) {
            case (.bool(let a), .bool(let b)): return a == b
            case (.int(let a), .int(let b)): return a == b
            case (.int, .double), (.double, .int), (.double, .double): return value.doubleValue == expected.doubleValue
            default: return false
            }
        }
    }

    /// `String(value)` as JavaScript writes it, for string filter values.
    static func javaScriptString(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .int(let i): String(i)
        case .double(let d): javaScriptString(d)
        case .string(let s): s
        case .array(let a): a.map { $0.isNull ? "" : javaScriptString($0) }.joined(separator: ",")
        case .object: "[object Object]"
        }
    }

    /// ECMAScript's Number::toString: the shortest round-trip digits, in plain notation from 1e-6 up to
    /// 1e21 and in exponent notation outside.
    static func javaScriptString(_ number: Double) -> String {
        if number.isNaN { return "NaN" }
        if number.isInfinite { return number < 0 ? "-Infinity" : "Infinity" }
        if number == 0 { return "0" }
        // Swift's description is also the shortest round-trip form; only its layout differs.
        let text = number.magnitude.description
        let parts = text.split(separator: "e", maxSplits: 1)
        let exponent = parts.count == 2 ? Int(parts[1]) ?? 0 : 0
        let mantissa = parts[0].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        var digits = Array(mantissa[0].utf8) + (mantissa.count == 2 ? Array(mantissa[1].utf8) : [])
        // The value is 0.d1d2…dk × 10^n.
        var n = mantissa[0].utf8.count + exponent
        while digits.first == UInt8(ascii: "0") {
            digits.removeFirst()
            n -= 1
        }
        while digits.last == UInt8(ascii: "0") { digits.removeLast() }
        let k = digits.count
        let zero = UInt8(ascii: "0")
        var out: [UInt8] = number < 0 ? [UInt8(ascii: "-")] : []
        if k <= n && n <= 21 {
            out += digits + Array(repeating: zero, count: n - k)
        } else if 0 < n && n <= 21 {
            out += digits[..<n] + [UInt8(ascii: ".")] + digits[n...]
        } else if -6 < n && n <= 0 {
            out += [zero, UInt8(ascii: ".")] + Array(repeating: zero, count: -n) + digits
        } else {
            out.append(digits[0])
            if k > 1 { out += [UInt8(ascii: ".")] + digits[1...] }
            out += Array("e\(n - 1 < 0 ? "-" : "+")\(abs(n - 1))".utf8)
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// An object flattened into dotted paths and leaf values, as the `flat` package does with `safe: true`:
/// nested objects become `a.b.c`, arrays and empty objects stay leaves.
public struct FlatJSONObject: Sendable {
    public private(set) var entries: [(path: String, value: JSONValue)] = []

    /// Flattens any object.
    public init(_ object: JSONObject) {
        append(object, prefix: "")
    }

    /// Flattens an event as Flatfile's listener sees it: `id`, `topic`, `domain`, `createdAt` (ISO 8601),
    /// and the members of `context` and `payload` under their prefixes.
    public init(_ event: Event) {
        entries.reserveCapacity(8 + event.context.count + event.payload.count)
        entries.append((path: "id", value: .string(event.id)))
        entries.append((path: "topic", value: .string(event.topic)))
        entries.append((path: "domain", value: .string(event.domain)))
        appendMember("context", .object(event.context), prefix: "")
        appendMember("payload", .object(event.payload), prefix: "")
        entries.append((path: "createdAt", value: JSONValue(event.createdAt)))
    }

    private mutating func append(_ object: JSONObject, prefix: String) {
        for (key, value) in object { appendMember(key, value, prefix: prefix) }
    }

    private mutating func appendMember(_ key: String, _ value: JSONValue, prefix: String) {
        let path = prefix.isEmpty ? key : "\(prefix).\(key)"
        if case .object(let nested) = value, !nested.isEmpty {
            append(nested, prefix: path)
        } else {
            entries.append((path: path, value: value))
        }
    }
}
