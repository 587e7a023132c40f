import Dispatch
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The active broker's role over one PostgreSQL store: which of the brokers started on it may serve.
///
/// The `leader` row holds the current `term`, its holder and when its lease `expires_at` (the server's
/// clock). A broker becomes active by raising the term, when the lease has run out or the holder's
/// session is gone (it held the advisory lock `(store, term)` on its role connection, which PostgreSQL
/// releases when the session ends: a killed broker is replaced in well under a second). Every commit
/// checks the term in its own transaction (``PostgresJobStore/commit(_:)``), so a broker that lost the role
/// can never write after its successor took over. The keeper thread renews the lease; when it cannot
/// renew in time (PostgreSQL unreachable) or finds a newer term, the broker stops serving at once
/// (``lost``), before the lease it last renewed runs out at the server.
final class ActiveRole: @unchecked Sendable {
    // @unchecked Sendable: `session` and `holdsLock` are the keeper thread's after `acquire`; the rest is
    // immutable or atomic.
    let location: PostgresLocation
    let holder: String
    /// How long a lease lasts from its last renewal: a standby takes over at most this long after the
    /// active broker stopped renewing.
    let timeout: Duration
    let logger: Logger
    /// The advisory lock namespace of this store (its schema).
    let lockKey: Int32
    private let session: PostgresSession
    private var holdsLock = false
    /// The term this broker holds once active.
    private(set) var term: Int64 = 0
    private let stopped = Atomic<Bool>(false)
    /// What to do when the role is lost: by default log and exit at once (``BrokerRoleLoss``).
    private let lost: @Sendable (String) -> Void
    private let lostOnce = Atomic<Bool>(false)
    /// Whether a stop hands the role back (not when a test plays a crash).
    private let handBack = Atomic<Bool>(true)
    /// Wakes the keeper early (to stop).
    private let wake = DispatchSemaphore(value: 0)
    /// Signalled when the keeper thread ends.
    private let keeperDone = DispatchSemaphore(value: 0)
    private var keeping = false

    init(
        location: PostgresLocation, holder: String, timeout: Duration, logger: Logger,
        lost: @escaping @Sendable (String) -> Void
    ) {
        self.location = location
        self.holder = holder
        self.timeout = timeout
        self.logger = logger
        self.lost = lost
        lockKey = ActiveRole.lockKey(schema: location.schema)
        session = PostgresSession(location: location, name: "jobwire-role \(holder)", logger: logger)
    }

    /// A stable 32-bit key for the schema (FNV-1a), the first half of each advisory lock key.
    static func lockKey(schema: String) -> Int32 {
        var hash: UInt32 = 2_166_136_261
        for byte in "jobwire:\(schema)".utf8 {
            hash = (hash ^ UInt32(byte)) &* 16_777_619
        }
        return Int32(bitPattern: hash)
    }

    /// How often a standby looks whether it may take over.
    var pollInterval: Duration { min(.milliseconds(250), timeout / 4) }

    /// Blocks until this broker is the active one; calls `standby` once, with who is, while it waits.
    func acquire(standby: (String) -> Void, cancelled: () -> Bool) throws {
        var announced = false
        while true {
            if cancelled() { throw PostgresStoreError.server("stopped while waiting as a standby") }
            do {
                if let term = try tryTakeOver() {
                    self.term = term
                    holdsLock = true
                    return
                }
                if !announced {
                    announced = true
                    let row = try session.query("SELECT term, holder FROM \(unescaped: table) WHERE id = 1")
                    let (term, holder) = try row.first?.decode((Int64, String).self) ?? (Int64(0), "")
                    standby("broker \(holder) is active (term \(term))")
                }
            } catch PostgresStoreError.connection(let message) {
                // A standby outlives a PostgreSQL restart: it waits for the server as it waits for the role.
                logger.warning("standby lost its PostgreSQL connection; retrying", metadata: ["error": "\(message)"])
                session.disconnect()
            }
            Thread.sleep(forTimeInterval: pollInterval.seconds)
        }
    }

    private var table: String { "\"\(location.schema)\".leader" }

    /// Raises the term when the role is free: never held, its lease run out, or its holder's session gone.
    private func tryTakeOver() throws -> Int64? {
        let rows = try session.query(
            "SELECT term, expires_at <= now() FROM \(unescaped: table) WHERE id = 1")
        guard let (term, expired) = try rows.first?.decode((Int64, Bool).self) else {
            throw PostgresStoreError.server("the store's leader row is missing")
        }
        var holderGone = false
        if term > 0 && !expired {
            holderGone = try tryLock(term)
            guard holderGone else { return nil }
        }
        defer { if holderGone { unlock(term) } }
        guard try tryLock(term + 1) else { return nil }
        let timeoutMilliseconds = Int64(timeout.seconds * 1000)
        let taken = try session.query(
            """
            UPDATE \(unescaped: table) SET term = term + 1, holder = \(holder),
                expires_at = now() + make_interval(secs => \(timeoutMilliseconds)::float8 / 1000)
            WHERE id = 1 AND term = \(term)
            """)
        guard taken.metadata.rows == 1 else {
            unlock(term + 1)
            return nil
        }
        return term + 1
    }

    private func tryLock(_ term: Int64) throws -> Bool {
        let rows = try session.query(
            "SELECT pg_try_advisory_lock(\(lockKey), \(Int32(truncatingIfNeeded: term)))")
        return try rows.first?.decode(Bool.self) ?? false
    }

    private func unlock(_ term: Int64) {
        _ = try? session.query("SELECT pg_advisory_unlock(\(lockKey), \(Int32(truncatingIfNeeded: term)))")
    }

    /// Starts the keeper thread, which renews the lease until ``stop()``.
    func startKeeping() {
        keeping = true
        let thread = Thread { [self] in keep() }
        thread.name = "jobwire-role"
        thread.start()
    }

    /// Stops renewing and hands the role back (the broker is stopping): the lease is ended at once, so a
    /// standby takes over without waiting for it to run out. Returns once the keeper thread is done.
    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        wake.signal()
        if keeping { keeperDone.wait() }
    }

    /// Ends the keeper and its session without handing the role back, as a crash would (for tests).
    func abandon() {
        handBack.store(false, ordering: .relaxed)
        stop()
    }

    /// Whether this broker lost the role.
    var isLost: Bool { lostOnce.load(ordering: .relaxed) }

    /// The margin before the lease's end at which the broker stops serving.
    var margin: Duration { timeout / 5 }

    private func keep() {
        defer {
            session.disconnect()
            keeperDone.signal()
        }
        var lastRenewal = ContinuousClock.now
        var failing = false
        while !stopped.load(ordering: .relaxed) {
            let sent = ContinuousClock.now
            let left = lastRenewal + timeout - margin - sent
            do {
                guard left > .zero else { throw PostgresStoreError.connection("out of time") }
                try session.connect(timeout: left)
                if !holdsLock { holdsLock = try tryLock(term) }
                let timeoutMilliseconds = Int64(timeout.seconds * 1000)
                let renewed = try session.query(
                    """
                    UPDATE \(unescaped: table)
                    SET expires_at = now() + make_interval(secs => \(timeoutMilliseconds)::float8 / 1000)
                    WHERE id = 1 AND term = \(term)
                    """, timeout: left)
                guard renewed.metadata.rows == 1 else {
                    lose("another broker took over (a term above \(term))")
                    return
                }
                lastRenewal = sent
                if failing {
                    failing = false
                    logger.info("renewed the active role again", metadata: ["term": "\(term)"])
                }
            } catch {
                if !failing {
                    failing = true
                    logger.warning(
                        "cannot renew the active role; retrying",
                        metadata: ["error": "\(error)", "term": "\(term)"])
                }
                session.disconnect()
                holdsLock = false
            }
            if ContinuousClock.now - lastRenewal >= timeout - margin {
                lose("could not renew it within \(timeout) (PostgreSQL unreachable?)")
                return
            }
            let next = min(sent + timeout / 5, lastRenewal + timeout - margin)
            let wait = next - ContinuousClock.now
            if wait > .zero { _ = self.wake.wait(timeout: .now() + wait.seconds) }
        }
        if !lostOnce.load(ordering: .relaxed) && handBack.load(ordering: .relaxed) {
            _ = try? session.query(
                "UPDATE \(unescaped: table) SET expires_at = '-infinity' WHERE id = 1 AND term = \(term)",
                timeout: .seconds(2))
        }
    }

    /// The role is gone: log it and hand over to ``lost`` (once).
    func lose(_ reason: String) {
        guard !lostOnce.exchange(true, ordering: .relaxed) else { return }
        logger.critical("lost the active role: \(reason); this broker stops serving", metadata: ["term": "\(term)"])
        lost(reason)
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
