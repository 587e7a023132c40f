import Testing

@testable import JobwireBroker

@Suite struct ChecksumTests {
    @Test("the row checksum is CRC-32 (IEEE) of the parts, each followed by a zero byte, as zlib computes it")
    func matchesZlib() {
        // Values from Python's zlib.crc32 over the same bytes.
        #expect(Checksum.of(Array("us_jb_1".utf8), Array("ready".utf8), Array(#"{"a":1}"#.utf8)) == 1_710_483_455)
        let long = Array((0..<3).flatMap { _ in (0...255).map { UInt8($0) } }) + Array("tail".utf8)
        #expect(Checksum.of(long) == 1_200_116_706)
        // The string form used for rows gives the same as the byte form.
        let body = Array(#"{"a":1}"#.utf8)
        #expect(Checksum.job(id: "us_jb_1", status: "ready", body: body) == 1_710_483_455)
    }

    @Test("a flipped bit changes the checksum, and so does moving a byte from one part to the next")
    func detectsChanges() {
        let body = Array(#"{"id":"us_jb_1","status":"ready"}"#.utf8)
        let base = Checksum.job(id: "us_jb_1", status: "ready", body: body)
        var flipped = body
        flipped[10] ^= 0x04
        #expect(Checksum.job(id: "us_jb_1", status: "ready", body: flipped) != base)
        #expect(Checksum.of(Array("ab".utf8), Array("c".utf8)) != Checksum.of(Array("a".utf8), Array("bc".utf8)))
    }
}
