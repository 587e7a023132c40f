/// How long a job waits before its next attempt, after a failed attempt asked for a retry, a lease
/// expired or an attempt timed out.
public struct Backoff: Sendable, Hashable {
    /// How the delay grows from one attempt to the next.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// `delaySeconds × 2^(attempt − 1)`, at most `maxDelaySeconds`.
        case exponential
        /// `delaySeconds` after every attempt.
        case fixed
    }

    public var type: Kind
    /// The delay after the first attempt.
    public var delaySeconds: Int
    /// The longest delay, whatever the attempt.
    public var maxDelaySeconds: Int

    /// The default delay after the first attempt.
    public static let defaultDelaySeconds = 1
    /// The default longest delay: an hour.
    public static let defaultMaxDelaySeconds = 3600
    /// The longest delay anyone may ask for: a week.
    public static let maxSeconds: Int64 = 604_800

    public init(type: Kind, delaySeconds: Int = Backoff.defaultDelaySeconds, maxDelaySeconds: Int? = nil) {
        self.type = type
        self.delaySeconds = delaySeconds
        self.maxDelaySeconds = maxDelaySeconds ?? max(Backoff.defaultMaxDelaySeconds, delaySeconds)
    }

    /// The delay, in seconds, before the attempt after `attempt` (from 1) may start.
    public func delaySeconds(after attempt: Int) -> Int {
        switch type {
        case .fixed: return min(delaySeconds, maxDelaySeconds)
        case .exponential:
            // 2^62 would overflow the product: past 2^40 seconds every delay is at its cap already.
            let doublings = min(max(attempt - 1, 0), 40)
            let (delay, overflow) = delaySeconds.multipliedReportingOverflow(by: 1 << doublings)
            return overflow ? maxDelaySeconds : min(delay, maxDelaySeconds)
        }
    }

    /// Reads `backoff` as `jobs.create` takes it: `{type, delaySeconds (1), maxDelaySeconds (3600)}`.
    /// - Throws: ``FieldError`` naming the member that is missing or out of range.
    public init(reader r: FieldReader) throws(FieldError) {
        try r.rejectUnknown(allowing: ["type", "delaySeconds", "maxDelaySeconds"])
        guard let type = try r.enumeration("type", as: Kind.self) else { throw .missing(r.fieldPath("type")) }
        let delay = Int(try r.int("delaySeconds", in: 1...Backoff.maxSeconds) ?? Int64(Backoff.defaultDelaySeconds))
        let maxDelay = try r.int("maxDelaySeconds", in: 1...Backoff.maxSeconds).map { Int($0) }
        if let maxDelay, maxDelay < delay {
            throw FieldError(
                field: r.fieldPath("maxDelaySeconds"),
                message: "\(r.fieldPath("maxDelaySeconds")) (\(maxDelay)) must not be less than delaySeconds (\(delay))"
            )
        }
        self.init(type: type, delaySeconds: delay, maxDelaySeconds: maxDelay)
    }

    /// Reads the job's `backoff` as the broker writes it, without the limits of a request.
    init(stored r: FieldReader) throws(FieldError) {
        guard let type = try r.enumeration("type", as: Kind.self) else { throw .missing(r.fieldPath("type")) }
        let delay = Int(try r.int("delaySeconds") ?? Int64(Backoff.defaultDelaySeconds))
        self.init(type: type, delaySeconds: delay, maxDelaySeconds: try r.int("maxDelaySeconds").map { Int($0) })
    }

    /// The wire object.
    public var json: JSONObject {
        [
            "type": .string(type.rawValue), "delaySeconds": .int(Int64(delaySeconds)),
            "maxDelaySeconds": .int(Int64(maxDelaySeconds)),
        ]
    }
}
