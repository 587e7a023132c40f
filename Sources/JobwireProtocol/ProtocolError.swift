/// A JSON-RPC error as PROTOCOL.md §4 defines it: a code, a message, and `data` with `type` and `field`.
public struct ProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A JSON-RPC error code and, for application errors, its `data.type` name.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public var rawValue: Int
        /// `data.type` for application errors (`not_found`, …); `nil` for JSON-RPC's own codes.
        public var type: String?

        public init(rawValue: Int, type: String? = nil) {
            self.rawValue = rawValue
            self.type = type ?? Code.known.first { $0.rawValue == rawValue }?.type
        }

        public static let parseError = Code(rawValue: -32700, type: nil)
        public static let invalidRequest = Code(rawValue: -32600, type: nil)
        public static let methodNotFound = Code(rawValue: -32601, type: nil)
        public static let invalidParams = Code(rawValue: -32602, type: nil)
        public static let internalError = Code(rawValue: -32603, type: nil)
        public static let notFound = Code(rawValue: -32001, type: "not_found")
        public static let invalidTransition = Code(rawValue: -32002, type: "invalid_transition")
        public static let conflict = Code(rawValue: -32003, type: "conflict")
        public static let leaseExpired = Code(rawValue: -32004, type: "lease_expired")
        public static let gone = Code(rawValue: -32005, type: "gone")
        public static let unauthorized = Code(rawValue: -32006, type: "unauthorized")
        public static let overloaded = Code(rawValue: -32007, type: "overloaded")

        static let known: [Code] = [
            .notFound, .invalidTransition, .conflict, .leaseExpired, .gone, .unauthorized, .overloaded,
        ]

        public var description: String { type.map { "\(rawValue) \($0)" } ?? "\(rawValue)" }

        public static func ~= (pattern: Code, value: any Error) -> Bool {
            (value as? ProtocolError)?.code == pattern
        }

        public static func == (lhs: Code, rhs: Code) -> Bool { lhs.rawValue == rhs.rawValue }
        public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
    }

    public var code: Code
    public var message: String
    /// `data` of the error object; holds `type` for application errors and `field` for invalid params.
    public var data: JSONObject

    public init(_ code: Code, _ message: String, field: String? = nil, data: JSONObject = [:]) {
        self.code = code
        self.message = message
        var data = data
        if let type = code.type { data["type"] = .string(type) }
        if let field { data["field"] = .string(field) }
        self.data = data
    }

    /// The field that was wrong, for `-32602`.
    public var field: String? { data["field"]?.stringValue }

    public var description: String { "\(message) (\(code))" }

    /// Invalid params from a ``FieldError``.
    public init(_ error: FieldError) {
        self.init(.invalidParams, error.message, field: error.field)
    }

    /// The error object of a JSON-RPC response.
    public var json: JSONObject {
        var o: JSONObject = ["code": .int(Int64(code.rawValue)), "message": .string(message)]
        if !data.isEmpty { o["data"] = .object(data) }
        return o
    }

    /// Reads a JSON-RPC error object.
    public init(json value: JSONValue) {
        let code = value["code"]?.intValue.map { Int($0) } ?? Code.internalError.rawValue
        let message = value["message"]?.stringValue ?? "unknown error"
        let data = value["data"]?.objectValue ?? [:]
        self.init(Code(rawValue: code, type: data["type"]?.stringValue), message, data: data)
    }
}
