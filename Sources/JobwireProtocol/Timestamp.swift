#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A point in time with millisecond precision, written as ISO 8601 UTC (`2026-11-29T02:00:00.123Z`).
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    /// The current wall-clock time.
    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(milliseconds: Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }

    public static func + (lhs: Timestamp, rhs: Duration) -> Timestamp {
        let (seconds, attoseconds) = rhs.components
        return Timestamp(milliseconds: lhs.milliseconds + seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    /// The time from `other` to this one.
    public func duration(since other: Timestamp) -> Duration { .milliseconds(milliseconds - other.milliseconds) }

    public var description: String { iso8601 }

    /// The ISO 8601 text with milliseconds in UTC.
    public var iso8601: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        write(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the ISO 8601 text to `output` without an intermediate string.
    public func write(into output: inout [UInt8]) {
        let ms = milliseconds
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let millis = ms - seconds * 1000
        Timestamp.appendText(seconds: seconds, millis: millis, to: &output)
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ` of a second since 1970 and its milliseconds: written into 24
    /// bytes on the stack, two digits at a time by constant divisors, then appended at once (a job
    /// carries five timestamps, an event one).
    private static func appendText(seconds: Int64, millis: Int64, to output: inout [UInt8]) {
        var days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Howard Hinnant's civil_from_days.
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        var year = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        if month <= 2 { year += 1 }
        // Four digits of the year, as before: the last four of a year past 9999.
        let yearDigits = ((year % 10_000) + 10_000) % 10_000
        var text: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &text) { b in
            func pair(_ value: Int64, at index: Int) {
                let tens = value / 10
                b[index] = UInt8(truncatingIfNeeded: 48 + tens)
                b[index + 1] = UInt8(truncatingIfNeeded: 48 + value - tens * 10)
            }
            pair(yearDigits / 100, at: 0)
            pair(yearDigits % 100, at: 2)
            b[4] = UInt8(ascii: "-")
            pair(month, at: 5)
            b[7] = UInt8(ascii: "-")
            pair(day, at: 8)
            b[10] = UInt8(ascii: "T")
            pair(secondOfDay / 3600, at: 11)
            b[13] = UInt8(ascii: ":")
            pair(secondOfDay / 60 % 60, at: 14)
            b[16] = UInt8(ascii: ":")
            pair(secondOfDay % 60, at: 17)
            b[19] = UInt8(ascii: ".")
            b[20] = UInt8(truncatingIfNeeded: 48 + millis / 100)
            pair(millis % 100, at: 21)
            b[23] = UInt8(ascii: "Z")
            output.append(contentsOf: UnsafeRawBufferPointer(b))
        }
    }

    /// Parses ISO 8601 date-times: `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`.
    public init?(iso8601 text: String) {
        let b = Array(text.utf8)
        guard b.count >= 20 else { return nil }
        func num(_ start: Int, _ count: Int) -> Int64? {
            guard start + count <= b.count else { return nil }
            var v: Int64 = 0
            for i in start..<(start + count) {
                guard b[i] >= 48, b[i] <= 57 else { return nil }
                v = v * 10 + Int64(b[i] - 48)
            }
            return v
        }
        guard let year = num(0, 4), b[4] == UInt8(ascii: "-"), let month = num(5, 2), b[7] == UInt8(ascii: "-"),
            let day = num(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: " "),
            let hour = num(11, 2), b[13] == UInt8(ascii: ":"), let minute = num(14, 2), b[16] == UInt8(ascii: ":"),
            let second = num(17, 2), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
            second < 61
        else { return nil }
        var i = 19
        var millis: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if digits < 3 { millis = millis * 10 + Int64(b[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            // `digits..<3` would trap for microseconds and finer: scale only short fractions.
            if digits < 3 {
                for _ in digits..<3 { millis *= 10 }
            }
        }
        var offsetMinutes: Int64 = 0
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign: Int64 = b[i] == UInt8(ascii: "+") ? 1 : -1
            guard let oh = num(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let om = num(i + 4, 2),
                oh < 24, om < 60
            else { return nil }
            offsetMinutes = sign * (oh * 60 + om)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        // Reject days the month does not have (February 30th), which days_from_civil would roll over.
        let isLeapYear = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let daysInMonth: Int64 =
            switch month {
            case 2: isLeapYear ? 29 : 28
            case 4, 6, 9, 11: 30
            default: 31
            }
        guard day <= daysInMonth else { return nil }
        // days_from_civil
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let value = ((days * 86_400 + hour * 3600 + minute * 60 + second) - offsetMinutes * 60) * 1000 + millis
        // An offset or a leap second can carry a time past the four-digit years the wire format writes.
        guard Timestamp.representable.contains(value) else { return nil }
        milliseconds = value
    }

    /// The times the wire format can write: from `0000-01-01T00:00:00.000Z` to `9999-12-31T23:59:59.999Z`.
    public static let representable: ClosedRange<Int64> = -62_167_219_200_000...253_402_300_799_999
}

extension Timestamp: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = Timestamp(iso8601: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not an ISO 8601 date-time: \(text)"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(iso8601)
    }
}

extension JSONValue {
    public init(_ timestamp: Timestamp) { self = .string(timestamp.iso8601) }
}
