import CJobwireSupport

/// A row's checksum, to tell a stored row that changed on disk from the one the broker wrote.
///
/// Rows carry CRC-32C (Castagnoli) of their parts, each followed by a zero byte, which the processor
/// computes (SSE 4.2, ARMv8 CRC), tagged by bit 32 of the stored value. Every stored job and event is
/// checked on write and on read, so this is on the broker's hot path.
enum Checksum {
    /// Bit 32 of a stored checksum: set on every checksum the broker writes, so that a value that is not
    /// one (a zeroed or truncated column) never matches.
    static let castagnoliTag: Int64 = 1 << 32

    /// Whether `stored` is the checksum of the parts.
    static func matches(_ stored: Int64, _ first: String, _ second: String, _ body: [UInt8]) -> Bool {
        stored == castagnoli(first, second, body)
    }

    /// CRC-32C of the parts, each followed by a zero byte, tagged with ``castagnoliTag``.
    static func castagnoli(_ first: String, _ second: String, _ body: [UInt8]) -> Int64 {
        var crc: UInt32 = 0xFFFF_FFFF
        var zero: UInt8 = 0
        // Each part, then a zero byte; no array of the parts (this runs for every stored row).
        func add(_ bytes: UnsafeRawBufferPointer) {
            crc = jobwire_crc32c_update(crc, bytes.baseAddress, bytes.count)
            crc = jobwire_crc32c_update(crc, &zero, 1)
        }
        var first = first
        var second = second
        first.withUTF8 { add(UnsafeRawBufferPointer($0)) }
        second.withUTF8 { add(UnsafeRawBufferPointer($0)) }
        body.withUnsafeBytes { add($0) }
        return Int64(crc ^ 0xFFFF_FFFF) | castagnoliTag
    }

    /// CRC-32C of `bytes` by the table, whatever the processor: for tests that both paths agree.
    static func portableCastagnoli(_ bytes: [UInt8]) -> UInt32 {
        let crc = bytes.withUnsafeBytes { jobwire_crc32c_update_portable(0xFFFF_FFFF, $0.baseAddress, $0.count) }
        return crc ^ 0xFFFF_FFFF
    }

    /// CRC-32C of `bytes` by the fastest path this processor has.
    static func fastCastagnoli(_ bytes: [UInt8]) -> UInt32 {
        let crc = bytes.withUnsafeBytes { jobwire_crc32c_update(0xFFFF_FFFF, $0.baseAddress, $0.count) }
        return crc ^ 0xFFFF_FFFF
    }

    /// The checksum a job row is written with.
    static func job(id: String, status: String, body: [UInt8]) -> Int64 {
        castagnoli(id, status, body)
    }

    /// The checksum an action row is written with: its id, its domain and resource (as the start's check
    /// reads them, `domain || ' ' || resourceId`), and its body.
    static func action(id: String, domain: String, resourceId: String, body: [UInt8]) -> Int64 {
        castagnoli(id, domain + " " + resourceId, body)
    }

    static func jobMatches(_ stored: Int64, id: String, status: String, body: [UInt8]) -> Bool {
        matches(stored, id, status, body)
    }

    /// Whether `stored` is the checksum of a one-event row of a store from before event batches (v3).
    static func eventMatches(_ stored: Int64, seq: Int64, topic: String, body: [UInt8]) -> Bool {
        matches(stored, String(seq), topic, body)
    }
}
