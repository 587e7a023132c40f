import Foundation
import JobwireProtocol
import Testing

@Suite struct TimestampTests {
    @Test("ISO 8601 with milliseconds round-trips")
    func roundTrip() throws {
        let text = "2026-11-29T02:00:00.123Z"
        let timestamp = try #require(Timestamp(iso8601: text))
        #expect(timestamp.iso8601 == text)
        #expect(timestamp.milliseconds == 1_795_831_200_123 + 86_400_000)
        #expect(Timestamp(milliseconds: 0).iso8601 == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(milliseconds: -1).iso8601 == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp(iso8601: "2024-02-29T23:59:59.999Z")?.iso8601 == "2024-02-29T23:59:59.999Z")
    }

    @Test("the text matches Foundation's ISO 8601 formatting across 1970 to 2100, every field and digit")
    func matchesFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let ms = Int64.random(in: 0..<4_102_444_800_000, using: &generator)
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
            #expect(Timestamp(milliseconds: ms).iso8601 == expected, "\(ms)")
        }
    }

    @Test(
        "Offsets are converted to UTC",
        arguments: [
            ("2026-11-29T07:30:00.123+05:30", "2026-11-29T02:00:00.123Z"),
            ("2026-11-28T21:00:00.123-05:00", "2026-11-29T02:00:00.123Z"),
            ("2026-11-29T02:00:00+00:00", "2026-11-29T02:00:00.000Z"),
            ("2026-11-29T02:00:00z", "2026-11-29T02:00:00.000Z"),
            ("2026-11-29T02:00:00.1Z", "2026-11-29T02:00:00.100Z"),
            ("2026-11-29T02:00:00.12Z", "2026-11-29T02:00:00.120Z"),
        ])
    func offsets(input: String, utc: String) {
        #expect(Timestamp(iso8601: input)?.iso8601 == utc)
    }

    @Test("More than three fraction digits are truncated to milliseconds")
    func microseconds() {
        #expect(Timestamp(iso8601: "2026-11-29T02:00:00.123456Z")?.iso8601 == "2026-11-29T02:00:00.123Z")
        #expect(Timestamp(iso8601: "2026-11-29T02:00:00.999999999+01:00")?.iso8601 == "2026-11-29T01:00:00.999Z")
    }

    @Test(
        "Strings that are not ISO 8601 date-times are rejected",
        arguments: [
            "", "2026-11-29", "2026-11-29T02:00:00", "2026-11-29T02:00:00.Z", "2026-11-29T02:00:00.123",
            "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-11-00T00:00:00Z", "2026-11-29T24:00:00Z",
            "2026-11-29T02:60:00Z", "2026-11-29T02:00:00+0530", "2026-11-29T02:00:00Zjunk", "2026/11/29T02:00:00Z",
            "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-29T02:00:00+25:00",
            "2026-11-29T02:00:00+05:60", "yesterday at noon today",
        ])
    func rejected(text: String) {
        #expect(Timestamp(iso8601: text) == nil)
    }
}
