import JobwireProtocol
import Testing

@Suite struct RPCTests {
    func decode(_ text: String) -> Result<RPCRequest, RPCFailure> { RPCRequest.decode(Array(text.utf8)) }

    func failure(_ text: String) throws -> RPCFailure {
        guard case .failure(let failure) = decode(text) else {
            Issue.record("\(text) decoded")
            throw CancellationError()
        }
        return failure
    }

    @Test("The request of PROTOCOL.md §4 decodes and re-encodes equal")
    func request() throws {
        let text = #"{"jsonrpc":"2.0","id":7,"method":"jobs.ack","params":{"jobId":"us_jb_8f2k","progress":0}}"#
        let request = try decode(text).get()
        #expect(request.id == 7)
        #expect(request.method == "jobs.ack")
        #expect(request.params["jobId"] == "us_jb_8f2k")
        #expect(try JSONCodec.parse(request.bytes) == JSONCodec.parse(text))
        #expect(try decode(#"{"jsonrpc":"2.0","id":"abc","method":"broker.info"}"#).get().id == "abc")
    }

    @Test("An empty body is a parse error")
    func emptyBody() throws {
        let failure = try failure("")
        #expect(failure.error.code == .parseError)
        #expect(failure.error.code.rawValue == -32700)
        #expect(failure.id == .null)
    }

    @Test("A body that is not JSON is a parse error")
    func notJSON() throws {
        #expect(try failure("jobs.ack please").error.code.rawValue == -32700)
        #expect(try failure(#"{"jsonrpc":"2.0","id":1,"#).error.code.rawValue == -32700)
    }

    @Test("JSON that is not an object is an invalid request", arguments: ["[]", "7", #""jobs.ack""#, "null"])
    func notAnObject(text: String) throws {
        let failure = try failure(text)
        #expect(failure.error.code.rawValue == -32600)
        #expect(failure.id == .null)
    }

    @Test(
        "A missing or empty method is an invalid request answered to the id",
        arguments: [
            #"{"jsonrpc":"2.0","id":3}"#, #"{"jsonrpc":"2.0","id":3,"method":""}"#,
            #"{"jsonrpc":"2.0","id":3,"method":1}"#,
            #"{"id":3,"method":"jobs.get"}"#, #"{"jsonrpc":"1.0","id":3,"method":"jobs.get"}"#,
        ])
    func missingMethod(text: String) throws {
        let failure = try failure(text)
        #expect(failure.error.code.rawValue == -32600)
        #expect(failure.id == 3)
    }

    @Test("An id that is neither number, string nor null is an invalid request")
    func badID() throws {
        let failure = try failure(#"{"jsonrpc":"2.0","id":{},"method":"jobs.get"}"#)
        #expect(failure.error.code.rawValue == -32600)
        #expect(failure.id == .null)
    }

    @Test("params that is not an object is invalid params naming params", arguments: ["[1]", "1", #""x""#, "true"])
    func paramsNotObject(params: String) throws {
        let failure = try failure(#"{"jsonrpc":"2.0","id":9,"method":"jobs.get","params":"# + params + "}")
        #expect(failure.error.code.rawValue == -32602)
        #expect(failure.error.field == "params")
        #expect(failure.error.data["field"] == "params")
        #expect(failure.id == 9)
    }

    @Test("A notification has a null id and still decodes")
    func notification() throws {
        let request = try decode(#"{"jsonrpc":"2.0","method":"jobs.get","params":{"jobId":"j"}}"#).get()
        #expect(request.id == .null)
        #expect(try decode(#"{"jsonrpc":"2.0","id":null,"method":"jobs.get"}"#).get().id == .null)
        #expect(try decode(#"{"jsonrpc":"2.0","id":1,"method":"jobs.get","params":null}"#).get().params.isEmpty)
    }

    @Test("A success response round-trips")
    func success() throws {
        let response = RPCResponse(id: 7, result: .success(["job": nil]))
        #expect(String(decoding: response.bytes, as: UTF8.self) == #"{"jsonrpc":"2.0","id":7,"result":{"job":null}}"#)
        let decoded = try RPCResponse.decode(response.bytes)
        #expect(decoded.id == 7)
        #expect(try decoded.result.get() == ["job": nil])
    }

    @Test("The error response of PROTOCOL.md §4 decodes and re-encodes equal")
    func errorResponse() throws {
        let text =
            #"{"jsonrpc":"2.0","id":7,"error":{"code":-32002,"message":"cannot complete us_jb_8f2k: it is ready, not executing","data":{"type":"invalid_transition"}}}"#
        let decoded = try RPCResponse.decode(Array(text.utf8))
        guard case .failure(let error) = decoded.result else {
            Issue.record("not an error")
            return
        }
        #expect(error.code == .invalidTransition)
        #expect(error.code.type == "invalid_transition")
        #expect(try JSONCodec.parse(decoded.bytes) == JSONCodec.parse(text))
    }

    @Test(
        "Every error code of PROTOCOL.md §4 round-trips with its data.type",
        arguments: [
            (ProtocolError.Code.parseError, -32700, nil), (.invalidRequest, -32600, nil),
            (.methodNotFound, -32601, nil),
            (.invalidParams, -32602, nil), (.internalError, -32603, nil), (.notFound, -32001, "not_found"),
            (.invalidTransition, -32002, "invalid_transition"), (.conflict, -32003, "conflict"),
            (.leaseExpired, -32004, "lease_expired"), (.gone, -32005, "gone"), (.unauthorized, -32006, "unauthorized"),
            (.overloaded, -32007, "overloaded"),
        ] as [(ProtocolError.Code, Int, String?)])
    func codes(code: ProtocolError.Code, raw: Int, type: String?) throws {
        #expect(code.rawValue == raw)
        #expect(code.type == type)
        #expect(ProtocolError.Code(rawValue: raw) == code)
        #expect(ProtocolError.Code(rawValue: raw).type == type)
        let error = ProtocolError(code, "boom", field: raw == -32602 ? "jobId" : nil)
        #expect(error.data["type"] == type.map(JSONValue.string))
        let response = RPCResponse(id: "r", result: .failure(error))
        let decoded = try RPCResponse.decode(response.bytes)
        guard case .failure(let back) = decoded.result else {
            Issue.record("not an error")
            return
        }
        #expect(back == error)
        #expect(back.code.type == type)
        #expect(decoded.id == "r")
        #expect(code ~= back)
    }

    @Test("A field error becomes invalid params with data.field")
    func fieldError() {
        let error = ProtocolError(FieldError(field: "outcome.next.type", message: "bad"))
        #expect(error.code.rawValue == -32602)
        #expect(error.field == "outcome.next.type")
        #expect(error.json["data"] == ["field": "outcome.next.type"])
    }

    @Test("A response that is not JSON or not an object is an error for the client")
    func badResponse() {
        #expect(throws: ProtocolError.self) { try RPCResponse.decode(Array("nope".utf8)) }
        #expect(throws: ProtocolError.self) { try RPCResponse.decode(Array("[]".utf8)) }
    }
}
