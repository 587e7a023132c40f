import Logging
import Synchronization

/// Renews the leases of the jobs this listener holds while their handlers run.
final class LeaseKeeper: Sendable {
    struct Held {
        var renewEvery: Duration
        var attempt: Int
        var lastRenewed: ContinuousClock.Instant
        /// When the attempt times out (the lease's `timesOutAt`): the broker ends it then, renewed or not.
        var timesOutAt: ContinuousClock.Instant?
        var onLost: (@Sendable (any Error) -> Void)?
    }

    private let client: JobsClient
    private let logger: Logger
    private let held = Mutex<[String: Held]>([:])

    init(client: JobsClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Starts renewing `job`'s lease, a third of its lease time apart, until the attempt's timeout, when
    /// the job has one: then its runner is told the lease is lost.
    func hold(_ job: Job, onLost: (@Sendable (any Error) -> Void)? = nil) {
        let every = Duration.milliseconds(max(200, job.leaseSeconds * 1000 / 3))
        let now = ContinuousClock.now
        // The broker's time of the timeout, as this process's clock reads it.
        let timesOutAt = job.lease?.timesOutAt.map { now + $0.duration(since: Timestamp.now()) }
        held.withLock {
            $0[job.id] = Held(
                renewEvery: every, attempt: job.attempt, lastRenewed: now, timesOutAt: timesOutAt, onLost: onLost)
        }
    }

    /// Stops renewing; returns whether the job was held. With `attempt`, only that attempt's lease: a runner
    /// of an attempt that is over must not end the lease of the next one.
    @discardableResult
    func drop(_ jobId: String, attempt: Int? = nil) -> Bool {
        held.withLock { held in
            guard let lease = held[jobId], attempt == nil || lease.attempt == attempt else { return false }
            held[jobId] = nil
            return true
        }
    }

    var heldJobIds: [String] { held.withLock { Array($0.keys) } }

    /// Renews due leases until cancelled.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
            let now = ContinuousClock.now
            let timedOut = held.withLock { held in
                let ids = held.filter { $0.value.timesOutAt.map { $0 <= now } ?? false }.map(\.key)
                return ids.compactMap { id in held.removeValue(forKey: id).map { (id, $0) } }
            }
            for (jobId, lease) in timedOut {
                logger.info("the attempt timed out: its handler is stopped", metadata: ["job.id": "\(jobId)"])
                lease.onLost?(AttemptTimedOut(jobId: jobId))
            }
            let due = held.withLock { held in
                held.filter { now - $0.value.lastRenewed >= $0.value.renewEvery }.map { ($0.key, $0.value.attempt) }
            }
            for (jobId, attempt) in due {
                let current = held.withLock { held -> Bool in
                    guard held[jobId]?.attempt == attempt else { return false }
                    held[jobId]?.lastRenewed = now
                    return true
                }
                // Dropped or released since `due` was taken: an ack now would take the job back.
                guard current else { continue }
                do {
                    _ = try await client.ack(jobId: jobId, attempt: attempt)
                    logger.trace("renewed a lease", metadata: ["job.id": "\(jobId)"])
                } catch let error as ProtocolError {
                    // The job ended, was canceled or moved on: stop renewing and tell its runner.
                    let lost = held.withLock { held -> Held? in
                        // Only the attempt this ack renewed: the job may be held again, on a later attempt.
                        guard held[jobId]?.attempt == attempt else { return nil }
                        return held.removeValue(forKey: jobId)
                    }
                    logger.info("lost a lease", metadata: ["job.id": "\(jobId)", "error": "\(error)"])
                    lost?.onLost?(error)
                } catch {
                    logger.debug("could not renew a lease yet", metadata: ["job.id": "\(jobId)", "error": "\(error)"])
                }
            }
        }
    }

    /// Releases every job still held, so that another listener runs it.
    func releaseAll() async {
        let jobs = held.withLock { held in
            defer { held = [:] }
            return held.map { ($0.key, $0.value.attempt) }
        }
        for (jobId, attempt) in jobs {
            do {
                _ = try await client.release(jobId: jobId, info: "listener shutting down", attempt: attempt)
                logger.info("released a job on shutdown", metadata: ["job.id": "\(jobId)"])
            } catch {
                logger.info("could not release a job", metadata: ["job.id": "\(jobId)", "error": "\(error)"])
            }
        }
    }
}

/// A held job's attempt ran past its `timeoutSeconds`: the broker ends it, so its handler is stopped.
struct AttemptTimedOut: Error, CustomStringConvertible {
    var jobId: String
    var description: String { "the attempt of \(jobId) timed out" }
}
