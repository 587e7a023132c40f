/// Writes a JSON object straight to bytes, member by member, without building a ``JSONValue`` first.
///
/// The broker encodes a job for every reply and stored row and an envelope for every event; building
/// the value tree first cost more than writing it. Output is the same as ``JSONCodec/encode(_:)`` of the
/// equivalent object.
public struct JSONObjectWriter: ~Copyable {
    public private(set) var bytes: [UInt8]
    private var first = true

    /// Starts an object, appending to `bytes`.
    public init(appendingTo bytes: consuming [UInt8] = []) {
        self.bytes = bytes
        self.bytes.append(UInt8(ascii: "{"))
    }

    /// Starts an object in a new buffer of `capacity` bytes (growing one from empty copies it several times).
    public init(reservingCapacity capacity: Int) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(capacity)
        self.init(appendingTo: bytes)
    }

    private mutating func key(_ key: StaticString) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func string(_ key: StaticString, _ value: String) {
        self.key(key)
        JSONCodec.writeString(value, into: &bytes)
    }

    /// A string member, or `null` (or nothing, with `omitNil`) when there is none.
    public mutating func string(_ key: StaticString, _ value: String?, omitNil: Bool) {
        if let value {
            string(key, value)
        } else if !omitNil {
            self.key(key)
            bytes.append(contentsOf: JSONObjectWriter.null)
        }
    }

    public mutating func int(_ key: StaticString, _ value: Int64) {
        self.key(key)
        JSONCodec.writeInteger(value, into: &bytes)
    }

    public mutating func double(_ key: StaticString, _ value: Double) {
        self.key(key)
        JSONCodec.writeDouble(value, into: &bytes)
    }

    public mutating func bool(_ key: StaticString, _ value: Bool) {
        self.key(key)
        bytes.append(contentsOf: value ? JSONObjectWriter.true : JSONObjectWriter.false)
    }

    public mutating func null(_ key: StaticString) {
        self.key(key)
        bytes.append(contentsOf: JSONObjectWriter.null)
    }

    /// An ISO 8601 timestamp, or `null` (or nothing, with `omitNil`).
    public mutating func timestamp(_ key: StaticString, _ value: Timestamp?, omitNil: Bool = false) {
        guard let value else {
            if !omitNil { null(key) }
            return
        }
        self.key(key)
        bytes.append(UInt8(ascii: "\""))
        value.write(into: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// Any value, or `null` (or nothing, with `omitNil`).
    public mutating func value(_ key: StaticString, _ value: JSONValue?, omitNil: Bool = false) {
        guard let value else {
            if !omitNil { null(key) }
            return
        }
        self.key(key)
        JSONCodec.write(value, into: &bytes)
    }

    /// A member whose value is already JSON bytes.
    public mutating func raw(_ key: StaticString, _ json: [UInt8]) {
        self.key(key)
        bytes.append(contentsOf: json)
    }

    /// A member whose value `write` appends as JSON bytes.
    public mutating func raw(_ key: StaticString, writing write: (inout [UInt8]) -> Void) {
        self.key(key)
        write(&bytes)
    }

    /// Each member of `object`, as ``JSONCodec/encode(_:)`` writes them.
    public mutating func members(_ object: JSONObject) {
        for (key, value) in object.entries {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            JSONCodec.writeString(key, into: &bytes)
            bytes.append(UInt8(ascii: ":"))
            JSONCodec.write(value, into: &bytes)
        }
    }

    /// A nested object written by `body`.
    public mutating func object(_ key: StaticString, _ body: (inout JSONObjectWriter) -> Void) {
        self.key(key)
        // Hand the buffer over whole: passing `bytes` while this writer still held it made the nested
        // writer's first append copy everything written so far.
        var taken: [UInt8] = []
        swap(&taken, &bytes)
        var nested = JSONObjectWriter(appendingTo: taken)
        body(&nested)
        bytes = nested.finish()
    }

    /// Closes the object and returns the bytes.
    public consuming func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    private static let null = Array("null".utf8)
    private static let `true` = Array("true".utf8)
    private static let `false` = Array("false".utf8)
}
