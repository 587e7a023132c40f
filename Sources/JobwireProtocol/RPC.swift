/// A JSON-RPC 2.0 request on the commands socket.
public struct RPCRequest: Sendable, Hashable {
    /// The request id: a number, a string, or `null` for a notification (which still gets a reply).
    public var id: JSONValue
    public var method: String
    public var params: JSONObject
    /// The id as the client wrote it, which the reply echoes byte for byte: a number such as
    /// `18446744073709551617` or `1.0` would not survive a trip through ``id``.
    public var rawID: [UInt8]

    public init(id: JSONValue, method: String, params: JSONObject = [:]) {
        self.id = id
        self.method = method
        self.params = params
        self.rawID = JSONCodec.encode(id)
    }

    /// The request as bytes.
    public var bytes: [UInt8] {
        var o: JSONObject = ["jsonrpc": "2.0", "id": id, "method": .string(method)]
        o["params"] = .object(params)
        return JSONCodec.encode(.object(o))
    }

    /// Decodes a request body.
    /// - Returns: the request, or the error to answer with and the id to answer to (`null` when unknown).
    public static func decode(_ body: some Collection<UInt8>) -> Result<RPCRequest, RPCFailure> {
        guard !body.isEmpty else {
            return .failure(RPCFailure(id: .null, error: ProtocolError(.parseError, "empty request")))
        }
        let value: JSONValue
        let idBytes: [UInt8]?
        do {
            (value, idBytes) = try JSONCodec.parseRequest(body)
        } catch {
            if let path = error.duplicateKeyPath {
                return .failure(duplicateMember(path, in: body))
            }
            return .failure(RPCFailure(id: .null, error: ProtocolError(.parseError, "parse error: \(error)")))
        }
        guard case .object(let object) = value else {
            return .failure(
                RPCFailure(id: .null, error: ProtocolError(.invalidRequest, "a request must be a JSON object")))
        }
        var id: JSONValue = .null
        switch object["id"] {
        case nil, .null?: break
        case .int?, .string?, .double?: id = object["id"]!
        case let other?:
            return .failure(
                RPCFailure(
                    id: .null,
                    error: ProtocolError(
                        .invalidRequest, "id must be a number, a string or null, not \(other.typeName)")))
        }
        let rawID = id.isNull ? JSONCodec.encode(.null) : idBytes ?? JSONCodec.encode(id)
        guard object["jsonrpc"] == .string("2.0") else {
            return .failure(
                RPCFailure(id: id, rawID: rawID, error: ProtocolError(.invalidRequest, "jsonrpc must be \"2.0\"")))
        }
        guard case .string(let method)? = object["method"], !method.isEmpty else {
            return .failure(
                RPCFailure(
                    id: id, rawID: rawID, error: ProtocolError(.invalidRequest, "method must be a non-empty string")))
        }
        var params = JSONObject()
        switch object["params"] {
        case nil, .null?: break
        case .object(let o)?: params = o
        case let other?:
            return .failure(
                RPCFailure(
                    id: id, rawID: rawID,
                    error: ProtocolError(
                        .invalidParams, "params must be an object, not \(other.typeName)", field: "params")))
        }
        var request = RPCRequest(id: id, method: method, params: params)
        request.rawID = rawID
        return .success(request)
    }

    /// The failure for a member named twice: `-32602` naming it inside `params`, else `-32600`. The reply
    /// carries the request's id only when `id` itself is not the repeated member.
    private static func duplicateMember(_ path: [String], in body: some Collection<UInt8>) -> RPCFailure {
        var id: JSONValue = .null
        if path != ["id"], case .object(let object)? = try? JSONCodec.parse(body) {
            switch object["id"] {
            case .int?, .string?, .double?: id = object["id"]!
            default: break
            }
        }
        if path.count > 1 && path[0] == "params" {
            let field = path.dropFirst().joined(separator: ".")
            return RPCFailure(
                id: id,
                error: ProtocolError(.invalidParams, "params.\(field) appears twice in its object", field: field))
        }
        return RPCFailure(
            id: id,
            error: ProtocolError(.invalidRequest, "member \(path.joined(separator: ".")) appears twice in the request"))
    }
}

/// A request that cannot be served, and the id to answer it with.
public struct RPCFailure: Error, Sendable {
    public var id: JSONValue
    /// The id as the client wrote it, to echo byte for byte.
    public var rawID: [UInt8]
    public var error: ProtocolError

    public init(id: JSONValue, rawID: [UInt8]? = nil, error: ProtocolError) {
        self.id = id
        self.rawID = rawID ?? JSONCodec.encode(id)
        self.error = error
    }
}

/// A JSON-RPC 2.0 response: its encoding for the broker and its decoding for clients.
public struct RPCResponse: Sendable {
    public var id: JSONValue
    public var result: Result<JSONValue, ProtocolError>

    public init(id: JSONValue, result: Result<JSONValue, ProtocolError>) {
        self.id = id
        self.result = result
    }

    /// The response body.
    public var bytes: [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(512)
        write(into: &output)
        return output
    }

    /// Appends the response body to `output`.
    public func write(into output: inout [UInt8]) {
        output.append(contentsOf: RPCResponse.prefix)
        JSONCodec.write(id, into: &output)
        switch result {
        case .success(let value):
            output.append(contentsOf: RPCResponse.resultKey)
            JSONCodec.write(value, into: &output)
        case .failure(let error):
            output.append(contentsOf: RPCResponse.errorKey)
            JSONCodec.write(.object(error.json), into: &output)
        }
        output.append(UInt8(ascii: "}"))
    }

    /// A success response whose result is already JSON bytes.
    public static func success(id: JSONValue, rawResult: [UInt8]) -> [UInt8] {
        success(rawID: JSONCodec.encode(id), rawResult: rawResult)
    }

    /// A success response to the id `rawID` (JSON bytes, as the request had it) with a result in JSON bytes.
    public static func success(rawID: [UInt8], rawResult: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(rawResult.count + rawID.count + 32)
        output.append(contentsOf: prefix)
        output.append(contentsOf: rawID)
        output.append(contentsOf: resultKey)
        output.append(contentsOf: rawResult)
        output.append(UInt8(ascii: "}"))
        return output
    }

    /// A response to the id `rawID` (JSON bytes, as the request had it).
    public static func bytes(rawID: [UInt8], result: Result<JSONValue, ProtocolError>) -> [UInt8] {
        switch result {
        case .success(let value): return success(rawID: rawID, rawResult: JSONCodec.encode(value))
        case .failure(let error):
            var output: [UInt8] = []
            output.reserveCapacity(256)
            output.append(contentsOf: prefix)
            output.append(contentsOf: rawID)
            output.append(contentsOf: errorKey)
            JSONCodec.write(.object(error.json), into: &output)
            output.append(UInt8(ascii: "}"))
            return output
        }
    }

    /// The id of a response this type wrote, as the JSON bytes it holds.
    public static func rawID(of body: [UInt8]) -> [UInt8]? {
        guard body.starts(with: prefix) else { return nil }
        return JSONCodec.valueBytes(in: body, at: prefix.count)
    }

    private static let prefix = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
    private static let resultKey = Array(#","result":"#.utf8)
    private static let errorKey = Array(#","error":"#.utf8)

    /// Decodes a response body, as a client receives it.
    public static func decode(_ body: some Collection<UInt8>) throws(ProtocolError) -> RPCResponse {
        let value: JSONValue
        do {
            value = try JSONCodec.parse(body)
        } catch {
            throw ProtocolError(.parseError, "response is not JSON: \(error)")
        }
        guard case .object(let o) = value else { throw ProtocolError(.invalidRequest, "response is not an object") }
        let id = o["id"] ?? .null
        if let error = o["error"], !error.isNull {
            return RPCResponse(id: id, result: .failure(ProtocolError(json: error)))
        }
        return RPCResponse(id: id, result: .success(o["result"] ?? .null))
    }
}
