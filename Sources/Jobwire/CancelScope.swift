import Synchronization

/// A signal that cancels one piece of work (a handler, a claim) without cancelling the task that runs it, so
/// that the task can still report the outcome: release the job, or claim again.
final class CancelScope: Sendable {
    private struct State {
        var fired = false
        /// The runs waiting, by key: one scope may stop several.
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextKey = 0
    }

    private let state = Mutex(State())

    var isFired: Bool { state.withLock { $0.fired } }

    func fire() {
        let waiters = state.withLock { s in
            s.fired = true
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the scope fired or the calling task is cancelled.
    private func wait() async {
        let key = state.withLock { s in
            defer { s.nextKey += 1 }
            return s.nextKey
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s in
                    if s.fired || Task.isCancelled { return true }
                    s.waiters[key] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: key) }
            waiter?.resume()
        }
    }

    /// Runs `body` in a child task that is cancelled when the scope fires; returns what it returns.
    /// - Throws: what `body` throws (a `CancellationError`, typically, once the scope fired).
    func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                await self.wait()
                return nil
            }
            while let next = try await group.next() {
                // The body's result, or the scope fired: either way the other child is cancelled.
                group.cancelAll()
                if let value = next { return value }
            }
            throw CancellationError()
        }
    }
}

/// The handlers and claims a listener runs, each in a ``CancelScope``: a canceled job stops its handler, the
/// shutdown deadline stops every handler, and a broker restart or a shutdown interrupts the claims in flight.
final class RunningWork: Sendable {
    private struct State {
        var handlers: [Int: CancelScope] = [:]
        /// The handler running each attempt of a job: a runner of an attempt that is over may still be winding
        /// down when the same listener runs the next one.
        var jobs: [JobAttempt: Int] = [:]
        var canceledJobs: Set<JobAttempt> = []
        var claims: [Int: CancelScope] = [:]
        var nextKey = 0
        var deadlinePassed = false
        var claimsStopped = false
    }

    private let state = Mutex(State())

    /// One attempt of one job.
    struct JobAttempt: Hashable, Sendable {
        var jobId: String
        var attempt: Int
    }

    /// Runs a handler; `jobId` and `attempt` let ``cancelJob(_:attempt:)`` find it.
    func handler<T: Sendable>(
        jobId: String?, attempt: Int = 0, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let job = jobId.map { JobAttempt(jobId: $0, attempt: attempt) }
        let scope = CancelScope()
        let key = state.withLock { s in
            let key = s.nextKey
            s.nextKey += 1
            s.handlers[key] = scope
            if let job { s.jobs[job] = key }
            if s.deadlinePassed { scope.fire() }
            return key
        }
        defer {
            state.withLock { s in
                s.handlers[key] = nil
                if let job, s.jobs[job] == key { s.jobs[job] = nil }
            }
        }
        return try await scope.run(body)
    }

    /// Runs a claim that ``interruptClaims()`` cancels.
    func claim<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let scope = CancelScope()
        let key = state.withLock { s in
            let key = s.nextKey
            s.nextKey += 1
            s.claims[key] = scope
            if s.claimsStopped { scope.fire() }
            return key
        }
        defer { _ = state.withLock { $0.claims.removeValue(forKey: key) } }
        return try await scope.run(body)
    }

    /// Stops the handler running `attempt` of `jobId` (every attempt's when nil): the job was canceled, or
    /// that attempt's lease was lost.
    func cancelJob(_ jobId: String, attempt: Int? = nil) {
        let scopes = state.withLock { s -> [CancelScope] in
            let running = s.jobs.filter { $0.key.jobId == jobId && (attempt == nil || $0.key.attempt == attempt) }
            for job in running.keys { s.canceledJobs.insert(job) }
            return running.values.compactMap { s.handlers[$0] }
        }
        for scope in scopes { scope.fire() }
    }

    /// Whether ``cancelJob(_:attempt:)`` stopped the attempt's handler; kept until ``forget(_:attempt:)``.
    func wasCanceled(_ jobId: String, attempt: Int = 0) -> Bool {
        state.withLock { $0.canceledJobs.contains(JobAttempt(jobId: jobId, attempt: attempt)) }
    }

    /// Forgets that an attempt was canceled, once its runner is done with it.
    func forget(_ jobId: String, attempt: Int = 0) {
        _ = state.withLock { $0.canceledJobs.remove(JobAttempt(jobId: jobId, attempt: attempt)) }
    }

    /// Stops every handler, now and from now on: the shutdown deadline passed.
    func cancelHandlers() {
        let scopes = state.withLock { s in
            s.deadlinePassed = true
            return Array(s.handlers.values)
        }
        for scope in scopes { scope.fire() }
    }

    /// Cancels the claims in flight (they are sent again): on shutdown, and after the broker came back, since a
    /// claim sent to the old process will never be answered.
    func interruptClaims() {
        let scopes = state.withLock { Array($0.claims.values) }
        for scope in scopes { scope.fire() }
    }

    /// Interrupts the claims in flight and every later one: the listener is shutting down.
    func stopClaims() {
        let scopes = state.withLock { s in
            s.claimsStopped = true
            return Array(s.claims.values)
        }
        for scope in scopes { scope.fire() }
    }
}
