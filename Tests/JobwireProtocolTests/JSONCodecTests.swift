import JobwireProtocol
import Testing

@Suite struct JSONCodecTests {
    func parse(_ text: String) throws(JSONParseError) -> JSONValue { try JSONCodec.parse(text) }

    @Test("Escapes decode and re-encode to the same value")
    func escapes() throws {
        let value = try parse(#""a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u0000""#)
        #expect(value == .string("a\"b\\c/d\u{8}\u{c}\n\r\tAé\u{0}"))
        #expect(try parse(JSONCodec.string(value)) == value)
        #expect(JSONCodec.string(.string("\u{1}")) == #""\u0001""#)
    }

    @Test("A surrogate pair decodes to one scalar; a lone surrogate is rejected")
    func surrogates() throws {
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(throws: JSONParseError.self) { try parse(#""\ud83d""#) }
        #expect(throws: JSONParseError.self) { try parse(#""\ude00""#) }
        #expect(throws: JSONParseError.self) { try parse(#""\ud83dx""#) }
        #expect(throws: JSONParseError.self) { try parse(#""\ud83d\u0041""#) }
    }

    @Test("Invalid UTF-8 is rejected, in the fast and the escaped path")
    func invalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONCodec.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONCodec.parse([0x22, 0x5C, 0x6E, 0xFF, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONCodec.parse([0xEF, 0xBB, 0xBF, 0x31]) }
        #expect((try? JSONCodec.parse([0x22, 0xC3, 0xA9, 0x22])) == .string("é"))
    }

    @Test("Nesting up to 128 levels parses; 129 is rejected")
    func depth() throws {
        let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        #expect(throws: Never.self) { try parse(ok) }
        let tooDeep = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
        let error = try #require(throws: JSONParseError.self) { try parse(tooDeep) }
        #expect(error.reason.contains("128"))
        #expect(throws: JSONParseError.self) {
            try parse(String(repeating: #"{"a":"#, count: 129) + "1" + String(repeating: "}", count: 129))
        }
    }

    @Test(
        "Bytes after the document, or no document at all, are rejected",
        arguments: [
            "{} {}", "1 2", "[]]", "nullx", "", "   ", "\n", "01", "-", "1.", ".5", "+1", "1e", "tru", "[1,]",
            #"{"a":1,}"#,
            #"{"a" 1}"#, "{a:1}", "'a'", "\"unterminated", "\"tab\there\"", "NaN", "Infinity",
        ])
    func malformed(text: String) {
        #expect(throws: JSONParseError.self) { try JSONCodec.parse(text) }
    }

    @Test("An empty input names the problem")
    func emptyInput() throws {
        let error = try #require(throws: JSONParseError.self) { try JSONCodec.parse([UInt8]()) }
        #expect(error.reason == "empty document")
        #expect(error.offset == 0)
    }

    @Test("Int64 values survive exactly; larger integers become doubles; out-of-range numbers are rejected")
    func numbers() throws {
        #expect(try parse("9223372036854775807") == .int(.max))
        #expect(try parse("-9223372036854775808") == .int(.min))
        #expect(JSONCodec.string(.int(.max)) == "9223372036854775807")
        #expect(JSONCodec.string(.int(.min)) == "-9223372036854775808")
        #expect(try parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try parse("1e308") == .double(1e308))
        #expect(throws: JSONParseError.self) { try parse("1e400") }
        #expect(throws: JSONParseError.self) { try parse("-1e400") }
        #expect(try parse("12.5e-1") == .double(1.25))
        #expect(try parse("-0") == .int(0))
        #expect(try parse("1.0") == .double(1))
        #expect(JSONCodec.string(.double(0.5)) == "0.5")
        #expect(JSONCodec.string(.double(3)) == "3")
        #expect(try parse(JSONCodec.string(.double(1e300))) == .double(1e300))
        #expect(JSONCodec.string(.double(.infinity)) == "null")
    }

    @Test("Literals and containers round-trip with their key order")
    func roundTrip() throws {
        let text = #"{"z":1,"a":[true,false,null,"s",{}],"m":{"b":[],"a":-2.5}}"#
        let value = try parse(text)
        #expect(JSONCodec.string(value) == text)
        #expect(value["z"] == .int(1))
        #expect(try parse(" \t\r\n[ 1 , 2 ]\n ") == [1, 2])
    }
}
