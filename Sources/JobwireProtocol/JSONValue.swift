/// A JSON value, the one dynamic type of the wire model.
///
/// Numbers keep whether they were written as integers, so that `seq`, ids and counts survive a round
/// trip exactly, while `progress` may still be a fraction.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON object that keeps the order its keys were inserted in, so encoded output is stable.
///
/// Members live in an array: the protocol's objects are small, and building one (every reply and event
/// builds several) then costs no hashing. Past ``indexThreshold`` members a key index is kept too, so
/// a large object a client sends cannot make lookups quadratic.
public struct JSONObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var entries: [(key: String, value: JSONValue)] = []
    private var index: [String: Int]?

    static let indexThreshold = 16

    public init() {}

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        entries.reserveCapacity(elements.count)
        for (key, value) in elements { self[key] = value }
    }

    /// Appends a member whose key is not in the object yet, without looking for it: for building
    /// objects whose keys are known to be distinct (a job, an event).
    public mutating func append(_ key: String, _ value: JSONValue) {
        assert(position(of: key) == nil, "duplicate key \(key)")
        entries.append((key, value))
        // No index for built objects: they are written out, rarely searched.
        if index != nil { index![key] = entries.count - 1 }
    }

    /// Reserves room for `count` members.
    public mutating func reserveCapacity(_ count: Int) { entries.reserveCapacity(count) }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }
    /// The keys in insertion order.
    public var keys: [String] { entries.map(\.key) }

    private func position(of key: String) -> Int? {
        if let index { return index[key] }
        for i in entries.indices where entries[i].key == key { return i }
        return nil
    }

    /// Reads or writes a member. Writing `nil` removes the key.
    public subscript(key: String) -> JSONValue? {
        get { position(of: key).map { entries[$0].value } }
        set {
            if let newValue {
                if let i = position(of: key) {
                    entries[i].value = newValue
                } else {
                    entries.append((key, newValue))
                    if index != nil {
                        index![key] = entries.count - 1
                    } else if entries.count > JSONObject.indexThreshold {
                        buildIndex()
                    }
                }
            } else if let i = position(of: key) {
                entries.remove(at: i)
                if index != nil { buildIndex() }
            }
        }
    }

    private mutating func buildIndex() {
        var built: [String: Int] = [:]
        built.reserveCapacity(entries.count)
        for (i, entry) in entries.enumerated() { built[entry.key] = i }
        index = built
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> {
        entries.makeIterator()
    }

    /// Equal when both have the same members, whatever their order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (key, value) in lhs.entries where rhs[key] != value { return false }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent, to agree with ==.
        var combined = 0
        for (key, value) in entries {
            var h = Hasher()
            h.combine(key)
            h.combine(value)
            combined ^= h.finalize()
        }
        hasher.combine(count)
        hasher.combine(combined)
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
}

extension JSONValue {
    public var isNull: Bool { if case .null = self { true } else { false } }
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { o } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }

    /// The number as a `Double`, for integers and fractions alike.
    public var doubleValue: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }

    /// The number as an integer, when it is one exactly.
    public var intValue: Int64? {
        switch self {
        case .int(let i): i
        case .double(let d) where d.rounded() == d && abs(d) < 9.2e18: Int64(d)
        default: nil
        }
    }

    /// Member access for objects; `nil` for anything else.
    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { o[key] } else { nil }
    }

    /// A short name of the value's JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? container.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? container.decode(Double.self) {
            self = .double(d)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSONValue].self) {
            self = .array(a)
        } else {
            let dict = try container.decode([String: JSONValue].self)
            var object = JSONObject()
            for key in dict.keys.sorted() { object[key] = dict[key] }
            self = .object(object)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .int(let i): try container.encode(i)
        case .double(let d): try container.encode(d)
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .object(let o):
            var dict: [String: JSONValue] = [:]
            for (k, v) in o { dict[k] = v }
            try container.encode(dict)
        }
    }
}
