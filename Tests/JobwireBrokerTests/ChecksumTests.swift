import Testing

@testable import JobwireBroker

@Suite struct ChecksumTests {
    @Test("the row checksum is CRC-32 (IEEE) of the parts, each followed by a zero byte, as zlib computes it")
    func matchesZlib() {
        // Values from Python's zlib.crc32 over the same bytes.
        #expect(Checksum.of(Array("us_jb_1".utf8), Array("ready".utf8), Array(#"{"a":1}"#.utf8)) == 1_710_483_455)
        let long = Array((0..<3).flatMap { _ in (0...255).map { UInt8($0) } }) + Array("tail".utf8)
        #expect(Checksum.of(long) == 1_200_116_706)
        // The string form, which rows written before CRC-32C carry, gives the same as the byte form.
        let body = Array(#"{"a":1}"#.utf8)
        #expect(Checksum.of("us_jb_1", "ready", body) == 1_710_483_455)
    }

    @Test("rows are written with CRC-32C, tagged; the processor's path and the table agree")
    func castagnoli() {
        // The standard check value: CRC-32C of "123456789" is 0xE3069283.
        #expect(Checksum.fastCastagnoli(Array("123456789".utf8)) == 0xE306_9283)
        #expect(Checksum.portableCastagnoli(Array("123456789".utf8)) == 0xE306_9283)
        // Lengths around the 8-byte steps of the instruction path, against the table.
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(Checksum.fastCastagnoli(bytes) == Checksum.portableCastagnoli(bytes), "length \(length)")
        }
        let body = Array(#"{"a":1}"#.utf8)
        let stored = Checksum.job(id: "us_jb_1", status: "ready", body: body)
        #expect(stored & Checksum.castagnoliTag != 0)
        // The parts each followed by a zero byte, as the CRC-32 form.
        let parts = Array("us_jb_1".utf8) + [0] + Array("ready".utf8) + [0] + body + [0]
        #expect(stored == Int64(Checksum.portableCastagnoli(parts)) | Checksum.castagnoliTag)
    }

    @Test("both kinds of stored checksum are checked: CRC-32C rows and the CRC-32 rows of older stores")
    func readsBothKinds() {
        let body = Array(#"{"a":1}"#.utf8)
        let new = Checksum.job(id: "us_jb_1", status: "ready", body: body)
        let old = Checksum.of("us_jb_1", "ready", body)
        #expect(Checksum.jobMatches(new, id: "us_jb_1", status: "ready", body: body))
        #expect(Checksum.jobMatches(old, id: "us_jb_1", status: "ready", body: body))
        var flipped = body
        flipped[2] ^= 0x01
        #expect(!Checksum.jobMatches(new, id: "us_jb_1", status: "ready", body: flipped))
        #expect(!Checksum.jobMatches(old, id: "us_jb_1", status: "ready", body: flipped))
        #expect(!Checksum.eventMatches(new, seq: 1, topic: "ready", body: body))
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
