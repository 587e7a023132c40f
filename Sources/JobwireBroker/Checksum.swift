/// CRC-32 (IEEE), to tell a stored row that changed on disk from the one the broker wrote.
enum Checksum {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        return crc
    }

    /// The CRC-32 of the parts, each followed by a zero byte so that moving bytes between parts shows.
    static func of(_ parts: [UInt8]...) -> Int64 {
        var crc: UInt32 = 0xFFFF_FFFF
        for part in parts {
            for byte in part { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
            crc = table[Int(crc & 0xFF)] ^ (crc >> 8)
        }
        return Int64(crc ^ 0xFFFF_FFFF)
    }

    static func job(id: String, status: String, body: [UInt8]) -> Int64 {
        of(Array(id.utf8), Array(status.utf8), body)
    }

    static func event(seq: Int64, topic: String, body: [UInt8]) -> Int64 {
        of(Array(String(seq).utf8), Array(topic.utf8), body)
    }
}

/// A row of the store that is not what the broker wrote: a flipped bit, a torn write.
struct StoreDamage: Error, CustomStringConvertible {
    var description: String
}
