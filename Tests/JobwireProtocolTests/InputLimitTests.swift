import Testing

@testable import JobwireProtocol

/// Hostile or unlucky input: repeated members, exact ids, control characters, long names and patterns,
/// timestamps past the wire format, unknown members.
@Suite struct InputLimitTests {
    func decode(_ text: String) -> Result<RPCRequest, RPCFailure> { RPCRequest.decode(Array(text.utf8)) }

    @Test("A member named twice is -32600 at the top and -32602 naming it in params, at any depth")
    func duplicateMembers() throws {
        guard
            case .failure(let top) = decode(#"{"jsonrpc":"2.0","id":3,"method":"jobs.delete","method":"broker.info"}"#)
        else {
            Issue.record("a repeated method decoded")
            return
        }
        #expect(top.error.code == .invalidRequest)
        #expect(top.id == 3)
        let nested =
            #"{"jsonrpc":"2.0","id":1,"method":"jobs.complete","params":{"outcome":{"next":{"files":[{"fileId":"a","fileId":"b"}]}}}}"#
        guard case .failure(let inParams) = decode(nested) else {
            Issue.record("a repeated nested member decoded")
            return
        }
        #expect(inParams.error.code == .invalidParams)
        #expect(inParams.error.field == "outcome.next.files.0.fileId")
        // Plain parsing is unchanged: the last one wins.
        #expect(try JSONCodec.parse(#"{"a":1,"a":2}"#) == ["a": 2])
        #expect(throws: JSONParseError.self) { try JSONCodec.parseRequest(Array(#"{"a":1,"a":2}"#.utf8)) }
    }

    @Test(
        "The id is kept as the client wrote it, whatever its number",
        arguments: [
            "9007199254740993", "18446744073709551617", "1.0", "1e2", "-0", #""\u0041""#, "7",
        ])
    func rawID(_ id: String) throws {
        let request = try decode(#"{"jsonrpc":"2.0","id":  \#(id) ,"method":"broker.info"}"#).get()
        #expect(request.rawID == Array(id.utf8))
        let reply = RPCResponse.success(rawID: request.rawID, rawResult: Array("{}".utf8))
        #expect(String(decoding: reply, as: UTF8.self) == #"{"jsonrpc":"2.0","id":\#(id),"result":{}}"#)
        #expect(RPCResponse.rawID(of: reply) == Array(id.utf8))
        guard case .failure(let failure) = decode(#"{"jsonrpc":"1.0","id":\#(id),"method":"x"}"#) else {
            Issue.record("a bad version decoded")
            return
        }
        #expect(failure.rawID == Array(id.utf8))
    }

    @Test("Identifiers reject control characters and more than 256 bytes, naming the field")
    func identifiers() throws {
        let r = FieldReader([
            "ok": .string(String(repeating: "é", count: 128)), "nul": "a\u{0}b", "del": "a\u{7F}", "tab": "a\tb",
            "long": .string(String(repeating: "x", count: 257)), "list": ["a", "b\u{1F}"],
        ])
        #expect(try r.identifier("ok")?.utf8.count == 256)
        for key in ["nul", "del", "tab", "long"] {
            #expect(throws: FieldError.self) { try r.identifier(key) }
        }
        do {
            _ = try r.identifierArray("list")
            Issue.record("a control character in a list passed")
        } catch {
            #expect(error.field == "list.1")
        }
    }

    @Test("Unknown members are rejected by their dotted path")
    func unknownMembers() throws {
        let r = FieldReader(["jobId": "j", "confg": .object([:])] as JSONObject, path: "params")
        do {
            try r.rejectUnknown(allowing: ["jobId", "config"])
            Issue.record("an unknown member passed")
        } catch {
            #expect(error.field == "params.confg")
        }
        try FieldReader(["jobId": "j"]).rejectUnknown(allowing: ["jobId"])
        do {
            _ = try Outcome(json: ["message": "m", "trigger": "automatic"], strict: true)
            Issue.record("outcome.trigger passed")
        } catch {
            #expect(error.field == "outcome.trigger")
        }
        // Read leniently, as a client reads the broker's replies.
        #expect(try Outcome(json: ["message": "m", "trigger": "automatic"]).message == "m")
        // `wait` takes Flatfile's extra members.
        _ = try Outcome(json: ["next": ["type": "wait", "fade": true, "confetti": true]], strict: true)
    }

    @Test("Timestamps past 9999-12-31T23:59:59.999Z or before year 0 are rejected")
    func timestampRange() {
        #expect(Timestamp(iso8601: "9999-12-31T23:59:59.999Z")?.iso8601 == "9999-12-31T23:59:59.999Z")
        #expect(Timestamp(iso8601: "0000-01-01T00:00:00.000Z")?.iso8601 == "0000-01-01T00:00:00.000Z")
        #expect(Timestamp(iso8601: "9999-12-31T23:59:60Z") == nil)
        #expect(Timestamp(iso8601: "9999-12-31T23:30:00-01:00") == nil)
        #expect(Timestamp(iso8601: "0000-01-01T00:30:00+01:00") == nil)
    }

    @Test("Glob patterns are capped at 32 per call and 256 bytes each, naming the field")
    func patternCaps() throws {
        try Glob.checkPatterns(Array(repeating: String(repeating: "*", count: 256), count: 32), field: "topics")
        do {
            try Glob.checkPatterns(Array(repeating: "a", count: 33), field: "topics")
            Issue.record("33 patterns passed")
        } catch {
            #expect(error.field == "topics")
        }
        do {
            try Glob.checkPatterns(["a", "b", "c", String(repeating: "*", count: 257)], field: "jobs")
            Issue.record("a 257-byte pattern passed")
        } catch {
            #expect(error.field == "jobs.3")
        }
    }

    @Test("The bit-parallel matcher agrees with the row-by-row simulation on random patterns and samples")
    func bitParallelAgrees() {
        var rng = SplitMix(seed: 0x5EED)
        let patternPieces = ["a", "b", ":", "*", "**", "?", "\\", "é", "::", "*:", ":**"]
        let samplePieces = ["a", "b", ":", "é", "ab", "::", "aaaa", "b:a"]
        var matched = 0
        for round in 0..<20_000 {
            let pattern = (0..<Int(rng.next() % 8)).map { _ in patternPieces[Int(rng.next() % 11)] }.joined()
            // Some samples span several 64-bit words.
            let pieces = round % 10 == 0 ? 40 + Int(rng.next() % 60) : Int(rng.next() % 10)
            var sample = (0..<pieces).map { _ in samplePieces[Int(rng.next() % 8)] }.joined()
            for separator in [UInt8(ascii: ":"), UInt8(ascii: "a")] {
                let glob = Glob(pattern, separator: separator)
                let (fast, slow) = sample.withUTF8 { (glob.matches(bytes: $0), glob.matchesByRows(bytes: $0)) }
                #expect(fast == slow, "\(pattern) vs \(sample) (separator \(separator))")
                if fast { matched += 1 }
            }
        }
        #expect(matched > 1000, "the random cases should match now and then")
    }

    @Test("A run of stars compiles to one step and matches as one star")
    func starRuns() {
        let long = Glob(String(repeating: "*", count: 3000))
        #expect(long.steps == Glob("*").steps)
        #expect(long.matches("job"))
        #expect(!long.matches("job:ready"))
        #expect(Glob("a***b:c**d").steps == Glob("a*b:c*d").steps)
        #expect(Glob(#"a\**"#).matches("a*xyz"))
        #expect(!Glob(#"a\**"#).matches("abc"))
    }
}

/// A small seeded generator, so a failing random case can be found again.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
