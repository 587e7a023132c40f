import Logging
import Synchronization
internal import ZeroMQ

/// The running state of a ``Listener``: its connection, leases and running work.
///
/// ``Listener/run()`` owns the tasks: the intake (``eventLoop()``) and the claim slots (``claimSlot(_:)``) are
/// children of its task group, and they hand what they find to it through ``post``, which starts each event's
/// handlers as a child of the same group.
final class Runtime: Sendable {
    /// What the intake, the claim slots and the handlers tell ``Listener/run()``.
    enum Work: Sendable {
        /// An event to run `routes` for.
        case event(ListenerEvent, [Route])
        /// A job claimed for this listener after its claim was given up: to release at once.
        case abandoned(Job)
        /// A graceful shutdown (or ``Listener/stop()``) began.
        case stop
        /// A child that the shutdown waits for ended.
        case ended(Child)
    }

    enum Child: Sendable {
        case intake, claimSlot, release
        /// An event's handlers, with the limits of the bounded ones.
        case event([HandlerLimit])
    }

    let listener: Listener
    let client: JobsClient
    let leases: LeaseKeeper
    let work = RunningWork()
    let post: AsyncStream<Work>.Continuation
    private let stopping = Atomic<Bool>(false)
    /// The intake's input, finished on shutdown so that the intake ends at once.
    private let intake = Mutex<AsyncStream<Input>.Continuation?>(nil)
    /// Stops the intake's call in flight (a catch-up, a replay) when the listener stops: the shutdown does not
    /// wait for the broker's answer.
    private let intakeScope = CancelScope()
    var logger: Logger { listener.logger }

    init(listener: Listener, client: JobsClient, leases: LeaseKeeper, post: AsyncStream<Work>.Continuation) {
        self.listener = listener
        self.client = client
        self.leases = leases
        self.post = post
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Takes no new events or jobs: the intake ends and the claims in flight stop.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        intake.withLock { $0 }?.finish()
        intakeScope.fire()
        work.stopClaims()
    }

    // MARK: Events

    enum Input: Sendable {
        case frames([[UInt8]])
        case tick
    }

    /// What the listener knows of the log and of the broker.
    struct Cursor {
        /// The events already dispatched, and when to replay; no start before the first catch-up.
        var log = EventCursor()
        /// Whether a catch-up reached the broker once: a later one is a resume.
        var connected = false
        /// `jobId#attempt` of job:ready already dispatched, with the seq of its event (0 for a ready job found by
        /// listing): an event and a stored ready job are one, but a second job:ready event of the same attempt
        /// (a claim the broker took back from a claimer that was gone) is the job ready again.
        var readySeen: [String: Int64] = [:]
        var live = false
        /// The broker process's start time from its heartbeats: a new one means a restart, however quick.
        var brokerStartedAt: String?
        var lastHeartbeat: ContinuousClock.Instant = .now
        var lastEvent: ContinuousClock.Instant = .now
        var lastReplay: ContinuousClock.Instant = .now
        /// Since when no heartbeat came (set while not live), and how long after it the next warning is due.
        var silentSince: ContinuousClock.Instant = .now
        var warnAfter: Duration = .zero
    }

    func eventLoop() async {
        let configuration = listener.configuration
        let prefixes = listener.subscriptionPrefixes
        let endpoint = listener.events
        let subscriber: AsyncSocket
        do {
            subscriber = try AsyncSocket(context: SharedContext.context, type: .sub) { socket in
                try socket.set(.linger, .zero)
                try socket.set(.reconnectInterval, .milliseconds(100))
                try socket.set(.reconnectIntervalMax, .seconds(1))
                if let curve = configuration.curve {
                    try socket.set(.curveServerKey, curve.serverPublicKey)
                    try socket.set(.curvePublicKey, curve.publicKey)
                    try socket.set(.curveSecretKey, curve.secretKey)
                }
                // Heartbeats subscribed last: the first one proves the broker has every other subscription.
                for prefix in prefixes { try socket.subscribe(prefix) }
                // Every broker of the list: only the active one binds, and it may change.
                for one in try Endpoints.list(endpoint) { try socket.connect(one) }
            }
        } catch {
            logger.error(
                "cannot open the events socket", metadata: ["zmq.endpoint": "\(endpoint)", "error": "\(error)"])
            return
        }
        logger.debug("subscribed", metadata: ["zmq.prefixes": "\(prefixes)"])
        let (inputs, continuation) = AsyncStream.makeStream(of: Input.self)
        intake.withLock { $0 = continuation }
        if isStopping { continuation.finish() }
        await withDiscardingTaskGroup { group in
            group.addTask {
                do {
                    for try await frames in subscriber.messages { continuation.yield(.frames(frames)) }
                } catch {}
                continuation.finish()
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(500))
                    continuation.yield(.tick)
                }
            }
            _ = try? await intakeScope.run { await self.intake(inputs, endpoint: endpoint) }
            group.cancelAll()
        }
        continuation.finish()
        await subscriber.close()
    }

    /// Reads the subscriber's messages and the ticks until shutdown.
    private func intake(_ inputs: AsyncStream<Input>, endpoint: String) async {
        let configuration = listener.configuration
        var cursor = Cursor()
        cursor.warnAfter = configuration.noBrokerWarning
        for await input in inputs {
            if Task.isCancelled || isStopping { break }
            switch input {
            case .tick:
                let now = ContinuousClock.now
                if cursor.live, now - cursor.lastHeartbeat > configuration.heartbeatTimeout {
                    cursor.live = false
                    cursor.silentSince = cursor.lastHeartbeat
                    cursor.warnAfter = configuration.noBrokerWarning
                    logger.warning(
                        "no heartbeat from the broker: waiting for it", metadata: ["zmq.endpoint": "\(endpoint)"])
                } else if !cursor.live, now - cursor.silentSince >= cursor.warnAfter {
                    warnNoBroker(since: cursor.silentSince, endpoint: endpoint)
                    cursor.warnAfter = min(cursor.warnAfter * 2, cursor.warnAfter + .seconds(60))
                }
            case .frames(let frames):
                guard frames.count >= 2, let (topic, _) = TopicFrame.decode(frames[0]),
                    let event = try? Event(envelope: frames[1])
                else { continue }
                if topic == "broker:heartbeat" {
                    await heartbeat(event, &cursor)
                } else {
                    await receiveLive(event, &cursor)
                }
            }
        }
    }

    /// Says that no broker answers at the events endpoint, and what to check.
    private func warnNoBroker(since: ContinuousClock.Instant, endpoint: String) {
        let seconds = (ContinuousClock.now - since).components.seconds
        let message =
            "no broker heartbeat at \(endpoint) for \(seconds) s: is the broker running there? Start one with "
            + "`jobwire broker`, or point the listener at it (JOBWIRE_EVENTS and JOBWIRE_COMMANDS)"
        logger.warning(
            "\(message)",
            metadata: ["zmq.endpoint": "\(endpoint)", "commands.endpoint": "\(listener.commands)"])
    }

    private func heartbeat(_ heartbeat: Event, _ cursor: inout Cursor) async {
        cursor.lastHeartbeat = .now
        cursor.silentSince = cursor.lastHeartbeat
        cursor.warnAfter = listener.configuration.noBrokerWarning
        let epoch = heartbeat.payload["epoch"]?.stringValue
        let seq = heartbeat.payload["seq"]?.intValue ?? 0
        let startedAt = heartbeat.payload["startedAt"]?.stringValue
        let restarted = cursor.brokerStartedAt != nil && startedAt != cursor.brokerStartedAt
        cursor.brokerStartedAt = startedAt
        let check = cursor.log.heartbeat(latest: seq, epoch: epoch)
        var newEpoch = false
        if case .newEpoch(let epoch) = check {
            startOver(epoch: epoch, &cursor)
            newEpoch = true
        }
        if !cursor.live || newEpoch || restarted {
            if cursor.connected {
                logger.info("broker heartbeats resumed: catching up")
                // Requests sent to the broker's former process would wait out their timeouts: send them again.
                work.interruptClaims()
                client.resendPending()
            }
            if await catchUp(&cursor) {
                cursor.live = true
                logger.info("listener live", metadata: ["event.seq": "\(cursor.log.confirmed ?? 0)"])
            }
            return
        }
        guard case .behind = check else { return }
        let now = ContinuousClock.now
        let quiet = now - cursor.lastEvent >= listener.configuration.quietPeriod
        let stale = now - cursor.lastReplay >= .seconds(10)
        if quiet || stale { _ = await replay(&cursor) }
    }

    /// On connect, reconnect and a new epoch: replay from the cursor, or start from the broker's seq and the
    /// jobs already waiting. Returns false when the broker did not answer.
    @discardableResult
    private func catchUp(_ cursor: inout Cursor) async -> Bool {
        let info: BrokerInfo
        do {
            info = try await client.brokerInfo()
        } catch is CancellationError {
            return false  // the listener is stopping
        } catch {
            logger.warning("catching up failed, retrying on the next heartbeat", metadata: ["error": "\(error)"])
            return false
        }
        cursor.connected = true
        if cursor.log.confirmed == nil {
            cursor.log.start(epoch: info.epoch, at: info.seq)
            return await dispatchWaitingJobs(&cursor)
        }
        if cursor.log.epoch != info.epoch {
            cursor.log.reset(epoch: info.epoch)
            startOver(epoch: info.epoch, &cursor)
        }
        return await replay(&cursor)
    }

    /// The broker's store changed (the cursor already starts over at its seq 0): what was dispatched belongs
    /// to the former store.
    private func startOver(epoch: String, _ cursor: inout Cursor) {
        logger.info("new broker epoch: starting over", metadata: ["broker.epoch": "\(epoch)"])
        cursor.readySeen = [:]
    }

    /// Dispatches the events after the cursor (`events.list`) that were not seen live.
    @discardableResult
    private func replay(_ cursor: inout Cursor) async -> Bool {
        let topics = listener.replayTopics
        cursor.lastReplay = .now
        var missed = 0
        defer {
            if missed > 0 { logger.info("replayed events missed live", metadata: ["events.missed": "\(missed)"]) }
        }
        while let since = cursor.log.confirmed, !isStopping {
            let page: EventPage
            do {
                page = try await client.events(since: since, topics: topics, limit: 1000)
            } catch ProtocolError.Code.gone {
                logger.warning("the broker no longer keeps the events missed: taking the waiting jobs instead")
                cursor.log.forget()
                return await catchUp(&cursor)
            } catch is CancellationError {
                // The listener is stopping: nothing is missed that a later run would not replay.
                return false
            } catch {
                logger.warning("replay failed, retrying later", metadata: ["error": "\(error)"])
                return false
            }
            guard cursor.log.accepts(pageOf: page.epoch) else {
                startOver(epoch: page.epoch, &cursor)
                continue
            }
            for event in page.events {
                if let seq = event.seq {
                    guard cursor.log.replayed(seq: seq) == .deliver else { continue }
                    missed += 1
                    cursor.lastEvent = .now
                }
                dispatchOnce(event, replayed: true, &cursor)
            }
            // Every event up to `nextSince` was examined; a page may stop short of `lastSeq` with any count.
            cursor.log.replayed(through: max(since, page.nextSince))
            if page.isComplete || page.nextSince <= since { break }
        }
        if cursor.readySeen.count > 50_000 { cursor.readySeen.removeAll() }
        return true
    }

    /// A listener with no cursor finds the jobs already ready for it (PROTOCOL.md §5).
    private func dispatchWaitingJobs(_ cursor: inout Cursor) async -> Bool {
        guard listener.routes.contains(where: { $0.topicGlobs.matches("job:ready") }) else { return true }
        do {
            for job in try await client.listAll(JobQuery(status: .ready)) {
                dispatchOnce(Event(readyJob: job), replayed: true, &cursor)
            }
            return true
        } catch is CancellationError {
            return false  // the listener is stopping
        } catch {
            logger.warning("listing waiting jobs failed, retrying later", metadata: ["error": "\(error)"])
            cursor.log.forget()
            return false
        }
    }

    /// A live event: dispatched unless the cursor has it already. A gap is left to the heartbeats, which ask for
    /// a replay once the stream is quiet: a filtered stream skips seqs all the time.
    private func receiveLive(_ event: Event, _ cursor: inout Cursor) async {
        if let seq = event.seq {
            switch cursor.log.live(seq: seq, epoch: event.epoch) {
            case .duplicate:
                return
            case .newEpoch(let epoch):
                // The replay from seq 0 of the new store brings this event too.
                startOver(epoch: epoch, &cursor)
                cursor.live = false
                await replay(&cursor)
                return
            case .deliver, .gap:
                cursor.lastEvent = .now
            }
        }
        dispatchOnce(event, replayed: false, &cursor)
    }

    /// Hands an event the cursor let through to its handlers, once per `job:ready` of a job's attempt.
    private func dispatchOnce(_ event: Event, replayed: Bool, _ cursor: inout Cursor) {
        if event.topic == "job:ready", let jobId = event.context["jobId"]?.stringValue {
            let key = "\(jobId)#\(event.payload["attempt"]?.intValue ?? 0)"
            let seq = event.seq ?? 0
            if let seen = cursor.readySeen[key], seen == 0 || seq == 0 || seen == seq { return }
            cursor.readySeen[key] = seq
        }
        dispatch(event, replayed: replayed)
    }

    /// Hands an event to ``Listener/run()``, which runs its handlers; a job's cancel notice stops its handler.
    func dispatch(_ event: Event, replayed: Bool) {
        if event.topic == "job:updated", event.payload["status"]?.stringValue == "canceled",
            let jobId = event.context["jobId"]?.stringValue
        {
            work.cancelJob(jobId)
        }
        let matching = listener.routes.filter { $0.matches(event) }
        guard !matching.isEmpty else { return }
        post.yield(.event(ListenerEvent(event: event, isReplay: replayed, client: client, runtime: self), matching))
    }

    /// Runs the handlers of one event, in a scope the shutdown deadline cancels.
    func runEvent(_ event: ListenerEvent, _ routes: [Route]) async {
        let logger = self.logger
        _ = try? await work.handler(jobId: nil) { await Runtime.runHandlers(routes, event, logger: logger) }
    }

    /// Runs the handlers of one event in order; an error is logged with the event and the next runs.
    ///
    /// The lease of a job the handlers acked is renewed while they run. When they end without completing,
    /// failing or releasing it, renewal stops (the lease then expires and the job comes back), and when a
    /// handler threw, the job is released at once so that another attempt starts without waiting.
    static func runHandlers(_ routes: [Route], _ event: ListenerEvent, logger: Logger) async {
        var failure: (any Error)?
        for route in routes {
            do {
                try await route.run(event)
            } catch let error as ProtocolError where error.code == .conflict || event.takenElsewhere {
                // The job's ack lost to another listener or another copy of this one: it runs there.
                logger.debug("another listener has the job", metadata: metadata(event))
            } catch {
                failure = error
                var metadata = metadata(event)
                metadata["error"] = "\(error)"
                logger.error("handler failed", metadata: metadata)
            }
        }
        // Only a lease the handlers took with `event.ack` is theirs to end: a `jobHandler`'s runner ends its own.
        guard let jobId = event.jobId, event.tookLease else { return }
        if Task.isCancelled || event.runtime?.isStopping == true {
            // Stopped by the shutdown: the lease stays held, and renewed, until the listener has drained and
            // releases every job it holds (``LeaseKeeper/releaseAll()``), from a task the deadline did not cancel.
            return
        }
        guard event.leases?.drop(jobId) == true, let failure else { return }
        do {
            _ = try await event.client.release(
                jobId: jobId, info: "handler failed: \(failure)", attempt: event.readyAttempt)
            logger.info("released the job of a failed handler", metadata: metadata(event))
        } catch {
            logger.debug("could not release the job", metadata: ["job.id": "\(jobId)", "error": "\(error)"])
        }
    }

    static func metadata(_ event: ListenerEvent) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["event.topic": "\(event.topic)"]
        if let seq = event.seq { metadata["event.seq"] = "\(seq)" }
        if let jobId = event.jobId { metadata["job.id"] = "\(jobId)" }
        if let name = event.jobName { metadata["job.name"] = "\(name)" }
        return metadata
    }

    // MARK: Claims

    /// One of a `jobHandler`'s `concurrency` slots: claim a job, run it, repeat. With every slot waiting in
    /// `jobs.claim`, up to `concurrency` claims are in flight.
    func claimSlot(_ worker: Worker) async {
        guard let globs = worker.claimGlobs else { return }
        let client = self.client
        let post = self.post
        let leases = self.leases
        let wait = listener.configuration.claimWait
        while !Task.isCancelled && !isStopping {
            let claimed: Job?
            do {
                claimed = try await work.claim {
                    try await client.claim(
                        jobs: globs, wait: wait, info: nil,
                        onAbandoned: { job in
                            // Past the run loop (the listener is draining), the final releaseAll releases it.
                            if case .terminated = post.yield(.abandoned(job)) { leases.hold(job) }
                        })
                }
            } catch is CancellationError {
                // Interrupted: on shutdown the loop ends, after a broker restart the claim is sent again.
                continue
            } catch {
                logger.warning("jobs.claim failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            guard let job = claimed else { continue }
            if isStopping {
                _ = try? await client.release(jobId: job.id, info: "listener shutting down")
                return
            }
            let event = ListenerEvent(event: Event(readyJob: job), isReplay: false, client: client, runtime: self)
            await JobRunner.run(job, event: event, spec: worker.spec, runtime: self)
        }
    }

    /// Gives back a job claimed for this listener after it stopped waiting for the claim.
    func releaseAbandoned(_ job: Job) async {
        _ = try? await client.release(jobId: job.id, info: "claim abandoned")
        logger.debug("released a job claimed after its claim was abandoned", metadata: ["job.id": "\(job.id)"])
    }
}

/// Runs one job through a `jobHandler` body.
enum JobRunner {
    /// An event-driven `jobHandler`: acks the job of a `job:ready` event, then runs it.
    static func runFromEvent(_ event: ListenerEvent, spec: JobHandlerSpec) async throws {
        guard let runtime = event.runtime, let jobId = event.jobId else { return }
        if runtime.isStopping { return }
        let job: Job
        do {
            job = try await event.client.ack(jobId: jobId, progress: 0, info: "Accepted")
        } catch let error as ProtocolError where [.conflict, .leaseExpired, .invalidTransition].contains(error.code) {
            runtime.logger.debug("job taken elsewhere", metadata: ["job.id": "\(jobId)", "error": "\(error)"])
            return
        }
        await run(job, event: event, spec: spec, runtime: runtime)
    }

    static func run(_ job: Job, event: ListenerEvent, spec: JobHandlerSpec, runtime: Runtime) async {
        let client = runtime.client
        let logger = runtime.logger
        let jobId = job.id
        // Every call names the attempt, so a late one after the lease moved on changes nothing.
        let attempt = job.attempt
        let work = runtime.work
        defer { work.forget(jobId, attempt: attempt) }
        runtime.leases.hold(job) { error in
            // The lease is gone (canceled, or taken over after an expiry): the work is no longer ours.
            logger.info("stopping a job whose lease is lost", metadata: ["job.id": "\(jobId)", "error": "\(error)"])
            work.cancelJob(jobId, attempt: attempt)
        }
        let tick = Tick { progress, info, eta in
            _ = try await client.update(
                jobId: jobId, progress: progress, info: info, estimatedCompletionAt: eta, attempt: attempt)
        }
        logger.debug("running a job", metadata: ["job.id": "\(jobId)", "job.name": "\(job.name)"])
        let completion: JobCompletion?
        do {
            let body = spec.body
            completion = try await work.handler(jobId: jobId, attempt: attempt) { try await body(event, tick) }
        } catch {
            if work.wasCanceled(jobId, attempt: attempt) {
                runtime.leases.drop(jobId, attempt: attempt)
                logger.info("job canceled: its handler stopped", metadata: ["job.id": "\(jobId)"])
                return
            }
            if runtime.isStopping {
                // Stopped at the deadline (the error is the cancellation, or what the handler made of it):
                // the job is not failed but handed back. Its lease stays held, and renewed, until the listener
                // has drained and releases every job it holds (``LeaseKeeper/releaseAll()``), from a task the
                // deadline did not cancel.
                logger.info(
                    "job stopped on shutdown: it is released as the listener stops", metadata: ["job.id": "\(jobId)"])
                return
            }
            runtime.leases.drop(jobId, attempt: attempt)
            if let storeFailure = error as? ProtocolError, storeFailure.code == .internalError {
                // The broker could not write a call of the handler (its store was away: a PostgreSQL restart, a
                // full disk): not the job's failure either. It is handed back; another attempt runs it.
                logger.info(
                    "job released: the broker could not store a call",
                    metadata: ["job.id": "\(jobId)", "error": "\(storeFailure)"])
                await finish(jobId, runtime: runtime, "jobs.release") {
                    _ = try await client.release(
                        jobId: jobId, info: "the broker could not store a call: \(storeFailure.message)",
                        attempt: attempt)
                }
                return
            }
            if let transport = error as? JobwireError {
                // The handler could not reach the broker: that is not the job's failure. Another attempt runs it.
                logger.info(
                    "job released: the broker did not answer",
                    metadata: ["job.id": "\(jobId)", "error": "\(transport)"])
                await finish(jobId, runtime: runtime, "jobs.release") {
                    _ = try await client.release(
                        jobId: jobId, info: "the listener lost the broker: \(transport.message)", attempt: attempt)
                }
                return
            }
            let message = String(describing: error)
            // A retryable failure asks for another attempt, after the job's backoff; the last one fails the job.
            let retry = error is any RetryableError
            logger.info("job failed", metadata: ["job.id": "\(jobId)", "error": "\(message)", "retry": "\(retry)"])
            await finish(jobId, runtime: runtime, "jobs.fail") {
                _ = try await client.fail(
                    jobId: jobId, outcome: Outcome(message: message, acknowledge: true), info: message,
                    attempt: attempt, retry: retry)
            }
            return
        }
        runtime.leases.drop(jobId, attempt: attempt)
        if work.wasCanceled(jobId, attempt: attempt) { return }
        await finish(jobId, runtime: runtime, "jobs.complete") {
            _ = try await client.complete(
                jobId: jobId, outcome: completion?.outcome ?? Outcome(message: "Job complete"), info: completion?.info,
                attempt: attempt)
        }
    }

    /// Sends a complete or fail, again after a lost reply (the broker may be restarting); a repeat that
    /// finds the job already ended means the first one arrived.
    static func finish(
        _ jobId: String, runtime: Runtime, _ method: String, _ send: @escaping @Sendable () async throws -> Void
    )
        async
    {
        for attempt in 1...5 {
            do {
                try await send()
                return
            } catch let error as JobwireError where attempt < 5 {
                runtime.logger.info("retrying \(method)", metadata: ["job.id": "\(jobId)", "error": "\(error)"])
            } catch let error as ProtocolError where error.code == .internalError && attempt < 5 {
                // The broker could not store the call (its store was away for a moment): nothing was written, so
                // it is sent again after a pause.
                runtime.logger.info("retrying \(method)", metadata: ["job.id": "\(jobId)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(200 * attempt))
            } catch ProtocolError.Code.invalidTransition where attempt > 1 {
                return
            } catch {
                runtime.logger.warning("\(method) failed", metadata: ["job.id": "\(jobId)", "error": "\(error)"])
                return
            }
        }
    }
}
