/// Where a job is in its life (PROTOCOL.md §3).
public enum JobStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case created, planning, scheduled, ready, executing, complete, failed, canceled

    /// Reads a status from the wire; accepts the British `cancelled` as input.
    public init?(wire: String) {
        if wire == "cancelled" {
            self = .canceled
        } else {
            self.init(rawValue: wire)
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let status = JobStatus(wire: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "unknown status \(text)"))
        }
        self = status
    }

    /// A job in this status has ended: it only changes again by `jobs.retry` (failed, canceled).
    public var isTerminal: Bool { self == .complete || self == .failed || self == .canceled }
}

/// How a job shows to a user while it runs (Flatfile's `JobMode`).
public enum JobMode: String, Sendable, Hashable, CaseIterable, Codable {
    case foreground, background, toolbarBlocking, hidden
}

/// Whether a job runs as soon as it is created or waits for `jobs.execute`.
public enum JobTrigger: String, Sendable, Hashable, CaseIterable, Codable {
    case manual, immediate
}

/// Who holds an executing job, and until when.
public struct Lease: Sendable, Hashable, Codable {
    /// The `listenerId` (or the authenticated key) that acked or claimed the job.
    public var owner: String
    /// The `instanceId` the taker sent: which running copy of the listener holds the job. Fencing compares
    /// the pair (`owner`, `instanceId`), so two copies of one listener never both run a job.
    public var instanceId: String?
    /// When the broker requeues the job unless the owner renews it.
    public var expiresAt: Timestamp
    /// When the attempt times out (the job's `timeoutSeconds` after it was taken), renewed or not; nil
    /// for a job without a timeout. The lease never runs past it.
    public var timesOutAt: Timestamp?

    public init(owner: String, instanceId: String? = nil, expiresAt: Timestamp, timesOutAt: Timestamp? = nil) {
        self.owner = owner
        self.instanceId = instanceId
        self.expiresAt = expiresAt
        self.timesOutAt = timesOutAt
    }
}

/// How the parts of a split job run.
public enum PartExecution: String, Sendable, Hashable, CaseIterable, Codable {
    case parallel, sequential
}
