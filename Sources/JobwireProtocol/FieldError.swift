/// A field of a JSON document that is missing or has the wrong type or value.
///
/// The broker turns it into JSON-RPC `-32602` with `data.field` set to ``field``.
public struct FieldError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The dotted path of the field (`outcome.next.type`), or `params` for the whole object.
    public var field: String
    /// What is wrong with it.
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { message }

    static func missing(_ field: String) -> FieldError {
        FieldError(field: field, message: "\(field) is required")
    }

    static func wrongType(_ field: String, expected: String, got value: JSONValue) -> FieldError {
        FieldError(field: field, message: "\(field) must be \(expected), not \(value.typeName)")
    }
}

/// Reads typed members out of a JSON object, naming each field by its dotted path when it is wrong.
public struct FieldReader: Sendable {
    public let object: JSONObject
    /// The path of this object, empty at the top.
    public let path: String

    public init(_ object: JSONObject, path: String = "") {
        self.object = object
        self.path = path
    }

    /// Reads `value` as an object, or throws naming `path` (`params` at the top).
    public init(_ value: JSONValue, path: String) throws(FieldError) {
        guard case .object(let object) = value else {
            throw FieldError.wrongType(path.isEmpty ? "params" : path, expected: "an object", got: value)
        }
        self.init(object, path: path)
    }

    public func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The member, with JSON `null` read as absent.
    public func value(_ key: String) -> JSONValue? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    public func has(_ key: String) -> Bool { object[key] != nil }

    public func string(_ key: String) throws(FieldError) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let s) = value else {
            throw .wrongType(fieldPath(key), expected: "a string", got: value)
        }
        return s
    }

    public func requiredString(_ key: String) throws(FieldError) -> String {
        guard let s = try string(key) else { throw .missing(fieldPath(key)) }
        guard !s.isEmpty else {
            throw FieldError(field: fieldPath(key), message: "\(fieldPath(key)) must not be empty")
        }
        return s
    }

    /// The longest identifier or name (`jobId`, `type`, `operation`, `source`, `listenerId`, a context id…)
    /// a client may send, in UTF-8 bytes.
    public static let maxIdentifierBytes = 256

    /// An identifier or name: a string of at most ``maxIdentifierBytes`` bytes without control characters
    /// (U+0000–U+001F, U+007F), which would corrupt logs, terminals and topic frames.
    public func identifier(_ key: String) throws(FieldError) -> String? {
        guard let s = try string(key) else { return nil }
        try FieldReader.checkIdentifier(s, field: fieldPath(key))
        return s
    }

    /// A required, non-empty ``identifier(_:)``.
    public func requiredIdentifier(_ key: String) throws(FieldError) -> String {
        let s = try requiredString(key)
        try FieldReader.checkIdentifier(s, field: fieldPath(key))
        return s
    }

    /// An array of ``identifier(_:)``s; an entry is named `key.index`.
    public func identifierArray(_ key: String) throws(FieldError) -> [String]? {
        guard let list = try stringArray(key) else { return nil }
        for (index, s) in list.enumerated() { try FieldReader.checkIdentifier(s, field: "\(fieldPath(key)).\(index)") }
        return list
    }

    /// Checks that `value` may serve as an identifier or name.
    /// - Throws: ``FieldError`` naming `field` when it is too long or has a control character.
    public static func checkIdentifier(_ value: String, field: String) throws(FieldError) {
        let count = value.utf8.count
        guard count <= maxIdentifierBytes else {
            throw FieldError(
                field: field, message: "\(field) is \(count) bytes; it may have at most \(maxIdentifierBytes)")
        }
        for byte in value.utf8 where byte < 0x20 || byte == 0x7F {
            throw FieldError(field: field, message: "\(field) must not contain control characters")
        }
    }

    /// Throws naming the first member whose key is not in `keys`, so that a typo or a field the protocol does
    /// not support is an error rather than silently ignored.
    public func rejectUnknown(allowing keys: Set<String>) throws(FieldError) {
        for (key, _) in object where !keys.contains(key) {
            let field = fieldPath(key)
            throw FieldError(
                field: field,
                message: "unknown parameter \(field); allowed here: \(keys.sorted().joined(separator: ", "))")
        }
    }

    public func bool(_ key: String) throws(FieldError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let b) = value else { throw .wrongType(fieldPath(key), expected: "a boolean", got: value) }
        return b
    }

    public func double(_ key: String) throws(FieldError) -> Double? {
        guard let value = value(key) else { return nil }
        guard let d = value.doubleValue else { throw .wrongType(fieldPath(key), expected: "a number", got: value) }
        return d
    }

    public func int(_ key: String) throws(FieldError) -> Int64? {
        guard let value = value(key) else { return nil }
        guard let i = value.intValue else { throw .wrongType(fieldPath(key), expected: "an integer", got: value) }
        return i
    }

    /// An integer within `range`, or throws naming the field.
    public func int(_ key: String, in range: ClosedRange<Int64>) throws(FieldError) -> Int64? {
        guard let i = try int(key) else { return nil }
        guard range.contains(i) else {
            throw FieldError(
                field: fieldPath(key),
                message: "\(fieldPath(key)) must be from \(range.lowerBound) to \(range.upperBound), not \(i)")
        }
        return i
    }

    public func object(_ key: String) throws(FieldError) -> FieldReader? {
        guard let value = value(key) else { return nil }
        return try FieldReader(value, path: fieldPath(key))
    }

    public func array(_ key: String) throws(FieldError) -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        guard case .array(let a) = value else { throw .wrongType(fieldPath(key), expected: "an array", got: value) }
        return a
    }

    public func stringArray(_ key: String) throws(FieldError) -> [String]? {
        guard let array = try array(key) else { return nil }
        var result: [String] = []
        result.reserveCapacity(array.count)
        for (index, element) in array.enumerated() {
            guard case .string(let s) = element else {
                throw .wrongType("\(fieldPath(key)).\(index)", expected: "a string", got: element)
            }
            result.append(s)
        }
        return result
    }

    public func timestamp(_ key: String) throws(FieldError) -> Timestamp? {
        guard let s = try string(key) else { return nil }
        guard let t = Timestamp(iso8601: s) else {
            throw FieldError(
                field: fieldPath(key), message: "\(fieldPath(key)) must be an ISO 8601 date-time, not \"\(s)\"")
        }
        return t
    }

    /// A string member that must be one of a closed set of values.
    public func enumeration<E: RawRepresentable>(_ key: String, as type: E.Type) throws(FieldError) -> E?
    where E.RawValue == String, E: CaseIterable {
        guard let s = try string(key) else { return nil }
        guard let e = E(rawValue: s) else {
            let allowed = E.allCases.map { "\($0.rawValue)" }.joined(separator: ", ")
            throw FieldError(
                field: fieldPath(key), message: "\(fieldPath(key)) must be one of \(allowed), not \"\(s)\"")
        }
        return e
    }
}
