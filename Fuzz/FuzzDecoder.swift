// libFuzzer harness for the wire model: the JSON-RPC request decoder and the decoders a request's
// params reach (jobs, outcomes, actions, event filters, globs, timestamps). Compiled into one module
// with Sources/JobwireProtocol by Fuzz/run.sh; never part of the main build.
//
// Checks beyond "no crash, no hang": every input decodes to a request or to an error reply, and a
// decoded request encodes and decodes back to the same request.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    switch RPCRequest.decode(bytes) {
    case .success(let request):
        // JSON does not tell 2.0 from 2, so the check is on the bytes: encode, decode, encode again.
        let again = RPCRequest.decode(request.bytes)
        guard case .success(let same) = again, same.bytes == request.bytes else {
            fatalError("request does not round-trip: \(request) -> \(again)")
        }
        let params = JSONValue.object(request.params)
        _ = try? Job(json: params)
        _ = try? Outcome(json: params)
        _ = try? Action(json: params)
        let filter = EventFilter(params)
        _ = filter.matches(request.params)
        if case .string(let pattern)? = request.params["pattern"] {
            _ = Glob(pattern).matches(request.method)
        }
        if case .string(let time)? = request.params["runAt"] { _ = Timestamp(iso8601: time) }
        _ = RPCResponse(id: request.id, result: .success(params)).bytes
    case .failure(let failure):
        let reply = RPCResponse(id: failure.id, result: .failure(failure.error)).bytes
        guard (try? RPCResponse.decode(reply)) != nil else { fatalError("error reply does not decode") }
    }
    if let text = String(validating: bytes, as: UTF8.self) { _ = Timestamp(iso8601: text) }
    return 0
}
