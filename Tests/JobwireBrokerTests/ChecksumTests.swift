import Testing

@testable import JobwireBroker

@Suite struct ChecksumTests {
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
        // The parts, each followed by a zero byte.
        let parts = Array("us_jb_1".utf8) + [0] + Array("ready".utf8) + [0] + body + [0]
        #expect(stored == Int64(Checksum.portableCastagnoli(parts)) | Checksum.castagnoliTag)
    }

    @Test("a stored checksum matches its own row only: not a changed body, not another kind of row, not untagged")
    func matchesOwnRowOnly() {
        let body = Array(#"{"a":1}"#.utf8)
        let stored = Checksum.job(id: "us_jb_1", status: "ready", body: body)
        #expect(Checksum.jobMatches(stored, id: "us_jb_1", status: "ready", body: body))
        var flipped = body
        flipped[2] ^= 0x01
        #expect(!Checksum.jobMatches(stored, id: "us_jb_1", status: "ready", body: flipped))
        #expect(!Checksum.jobMatches(stored, id: "us_jb_1", status: "complete", body: body))
        #expect(!Checksum.eventMatches(stored, seq: 1, topic: "ready", body: body))
        // The same CRC without the tag is not a checksum the broker wrote.
        #expect(!Checksum.jobMatches(stored & ~Checksum.castagnoliTag, id: "us_jb_1", status: "ready", body: body))
    }

    @Test("a flipped bit changes the checksum, and so does moving a byte from one part to the next")
    func detectsChanges() {
        let body = Array(#"{"id":"us_jb_1","status":"ready"}"#.utf8)
        let base = Checksum.job(id: "us_jb_1", status: "ready", body: body)
        var flipped = body
        flipped[10] ^= 0x04
        #expect(Checksum.job(id: "us_jb_1", status: "ready", body: flipped) != base)
        #expect(Checksum.castagnoli("ab", "c", body) != Checksum.castagnoli("a", "bc", body))
    }
}
