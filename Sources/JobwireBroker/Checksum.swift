import CJobwireSupport

/// A row's checksum, to tell a stored row that changed on disk from the one the broker wrote.
///
/// Rows are written with CRC-32C (Castagnoli), which the processor computes (SSE 4.2, ARMv8 CRC), tagged
/// by bit 32 of the stored value. Rows written before (v3 until this change) carry CRC-32 (IEEE) without
/// the tag, computed by slicing-by-8 over unsafe buffers, and are still checked against it. Every stored
/// job and event is checked on write and on read: this is on the broker's hot path, where the table-driven
/// CRC-32 was 3% of the broker's time.
enum Checksum {
    /// Bit 32 of a stored checksum: set for CRC-32C, clear for the CRC-32 of earlier rows.
    static let castagnoliTag: Int64 = 1 << 32

    /// Whether `stored` is the checksum of the parts, whichever of the two kinds it is.
    static func matches(_ stored: Int64, _ first: String, _ second: String, _ body: [UInt8]) -> Bool {
        if stored & castagnoliTag != 0 { return stored == castagnoli(first, second, body) }
        return stored == of(first, second, body)
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
    /// Eight 256-entry tables, the first the classic one. `nonisolated(unsafe)`: filled once by the
    /// static initializer (which Swift runs exactly once, thread-safely) and only read after.
    nonisolated(unsafe) private static let tables: UnsafeMutablePointer<UInt32> = {
        let tables = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * 256)
        for index in 0..<256 {
            var crc = UInt32(index)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            tables[index] = crc
        }
        for index in 0..<256 {
            var crc = tables[index]
            for slice in 1..<8 {
                crc = tables[Int(crc & 0xFF)] ^ (crc >> 8)
                tables[slice * 256 + index] = crc
            }
        }
        return tables
    }()

    private static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let t = tables
        var crc = crc
        var index = 0
        let count = bytes.count
        while count - index >= 8 {
            let low = crc ^ bytes.loadUnaligned(fromByteOffset: index, as: UInt32.self).littleEndian
            let high = bytes.loadUnaligned(fromByteOffset: index + 4, as: UInt32.self).littleEndian
            crc =
                t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)]
                ^ t[5 * 256 + Int((low >> 16) & 0xFF)] ^ t[4 * 256 + Int(low >> 24)]
                ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
                ^ t[1 * 256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
            index += 8
        }
        while index < count {
            crc = t[Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ (crc >> 8)
            index += 1
        }
        return crc
    }

    /// The CRC-32 of the parts, each followed by a zero byte so that moving bytes between parts shows.
    static func of(_ parts: [UInt8]...) -> Int64 {
        var crc: UInt32 = 0xFFFF_FFFF
        for part in parts {
            crc = part.withUnsafeBytes { update(crc, $0) }
            crc = tables[Int(crc & 0xFF)] ^ (crc >> 8)
        }
        return Int64(crc ^ 0xFFFF_FFFF)
    }

    /// The same as ``of(_:)`` of the parts' UTF-8, without copying the strings into arrays (every
    /// stored row is checked on write and on read).
    static func of(_ first: String, _ second: String, _ body: [UInt8]) -> Int64 {
        var crc: UInt32 = 0xFFFF_FFFF
        func add(_ bytes: UnsafeRawBufferPointer) {
            crc = update(crc, bytes)
            crc = tables[Int(crc & 0xFF)] ^ (crc >> 8)
        }
        var first = first
        var second = second
        first.withUTF8 { add(UnsafeRawBufferPointer($0)) }
        second.withUTF8 { add(UnsafeRawBufferPointer($0)) }
        body.withUnsafeBytes { add($0) }
        return Int64(crc ^ 0xFFFF_FFFF)
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
