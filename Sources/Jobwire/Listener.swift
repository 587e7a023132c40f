public import Logging
public import ServiceLifecycle
import Synchronization
internal import ZeroMQ

/// Event handlers and job workers against one broker, as a `Service`: ``run()`` returns after a
/// graceful shutdown.
/// ```swift
/// let listener = Listener(name: "exports") {
///     on("job:ready", job: "workbook:export") { event in
///         try await event.ack(progress: 0, info: "Starting")
///         try await event.complete(outcome: Outcome(message: "Exported"))
///     }
///     jobHandler("sheet:validate") { event, tick in
///         try await tick(50, "Half way")
///         return .init(outcome: Outcome(message: "Valid"))
///     }
/// }
/// ```
/// The listener subscribes with the narrowest prefixes its handlers need, replays what it missed
/// (`events.list`, and jobs already `ready`) on connect, after a reconnect, after the broker's heartbeats
/// stop and resume, and when it has been quiet while heartbeats moved on; it never runs an event twice.
/// With a list of brokers it follows the active one: when another takes over (its heartbeats come from a new
/// process), requests waiting for the former are sent again and the events missed meanwhile are replayed from
/// the cursor, as after a restart.
/// Handlers of one event run in order; events run concurrently up to
/// ``Configuration/maxConcurrentEvents``. A handler's error is logged and does not stop the listener.
public final class Listener: Service, Sendable {
    /// How a listener runs.
    public struct Configuration: Sendable {
        /// How many events run their handlers at once.
        public var maxConcurrentEvents: Int
        /// How long a command waits for its reply.
        public var requestTimeout: Duration
        /// The broker is taken for dead after this long without a heartbeat (it sends one a second).
        public var heartbeatTimeout: Duration
        /// Replay when heartbeats moved past the cursor and no event came for this long.
        public var quietPeriod: Duration
        /// How long one `jobs.claim` waits in the broker (at most 60 s).
        public var claimWait: Duration
        /// On shutdown, how long running handlers may finish before they are cancelled and their jobs released.
        public var shutdownGracePeriod: Duration
        /// CURVE keys for both sockets, when the broker requires them.
        public var curve: JobsClient.CurveConfiguration?
        /// Without a heartbeat for this long, the listener warns that no broker answers at its events
        /// endpoint; the warning repeats with backoff (doubling, at most a minute apart) until one comes.
        public var noBrokerWarning: Duration

        public init(
            maxConcurrentEvents: Int = 8, requestTimeout: Duration = .seconds(10),
            heartbeatTimeout: Duration = .seconds(3),
            quietPeriod: Duration = .seconds(2), claimWait: Duration = .seconds(20),
            shutdownGracePeriod: Duration = .seconds(10), curve: JobsClient.CurveConfiguration? = nil,
            noBrokerWarning: Duration = .seconds(5)
        ) {
            self.maxConcurrentEvents = maxConcurrentEvents
            self.requestTimeout = requestTimeout
            self.heartbeatTimeout = heartbeatTimeout
            self.quietPeriod = quietPeriod
            self.claimWait = claimWait
            self.shutdownGracePeriod = shutdownGracePeriod
            self.curve = curve
            self.noBrokerWarning = noBrokerWarning
        }
    }

    /// The `listenerId` this listener acks and claims with: its name for people, shared by its copies.
    public let name: String
    /// The `instanceId` this listener sends with every lease call: this copy of the listener, made anew for
    /// each `Listener` (``JobsClient/makeInstanceId()``). The broker fences leases by name and instance, so
    /// running the same listener twice never runs a job twice.
    public let instanceId: String
    public let commands: String
    public let events: String
    public let configuration: Configuration
    let logger: Logger
    let routes: [Route]
    let claimWorkers: [Worker]
    private let stopSignal = StopSignal()

    /// Creates a listener; it connects when it runs.
    /// - Parameters:
    ///   - name: its `listenerId`.
    ///   - commands: the broker's commands endpoint, or a comma-separated list of the brokers that may serve
    ///     (an active one and its standbys); by default `JOBWIRE_COMMANDS`, else `tcp://127.0.0.1:7401`.
    ///   - events: the broker's events endpoint, or a list of them as for `commands`; by default
    ///     `JOBWIRE_EVENTS`, else `tcp://127.0.0.1:7400`.
    ///   - configuration: concurrency, timeouts and shutdown deadline.
    ///   - logger: where handler errors, reconnects and replays are logged.
    ///   - content: `on`, `filter`, `namespace`, `use` and `jobHandler`.
    public init(
        name: String, commands: String = Endpoints.fromEnvironment().commands,
        events: String = Endpoints.fromEnvironment().events,
        configuration: Configuration = .init(), logger: Logger = Logger(label: "jobwire.listener"),
        @ListenerBuilder _ content: () -> [ListenerComponent]
    ) {
        self.name = name
        self.instanceId = JobsClient.makeInstanceId()
        self.commands = commands
        self.events = events
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "listener.id"] = "\(name)"
        logger[metadataKey: "listener.instance"] = "\(instanceId)"
        self.logger = logger
        let (routes, workers) = flatten(content())
        var allRoutes = routes
        var claimWorkers: [Worker] = []
        for (index, worker) in workers.enumerated() {
            if worker.claimGlobs != nil {
                claimWorkers.append(worker)
            } else {
                allRoutes.append(Listener.eventWorkerRoute(worker, id: index))
            }
        }
        self.routes = allRoutes
        self.claimWorkers = claimWorkers
    }

    /// The ZeroMQ prefixes the listener subscribes to, heartbeats last.
    var subscriptionPrefixes: [String] {
        var prefixes = routes.flatMap(\.prefixes)
        for worker in claimWorkers {
            // Cancel notices for the jobs it runs.
            prefixes += Subscription.prefixes(
                topics: ["job:updated"], jobName: worker.claimGlobs?.count == 1 ? worker.claimGlobs?[0] : nil)
        }
        return Subscription.minimal(prefixes) + ["broker:heartbeat/"]
    }

    /// The topics replay asks `events.list` for.
    var replayTopics: [String] {
        var topics: [String] = []
        for route in routes { for topic in route.topics where !topics.contains(topic) { topics.append(topic) } }
        if !claimWorkers.isEmpty, !topics.contains("job:updated") { topics.append("job:updated") }
        return topics
    }

    /// Stops the listener as a graceful shutdown does.
    public func stop() {
        stopSignal.fire()
    }

    /// Connects, runs handlers until a graceful shutdown (or ``stop()``), then drains: no new events or
    /// claims, running handlers may finish until ``Configuration/shutdownGracePeriod``, then the rest are
    /// cancelled and their jobs released.
    ///
    /// Everything runs in one task group: the lease renewer, the intake of events, the claim slots of each
    /// `jobHandler` and each event's handlers are its children, and the group's own body starts the handlers
    /// of the events the intake posts, at most ``Configuration/maxConcurrentEvents`` at once.
    /// - Throws: ``EndpointError`` for a malformed endpoint of `commands` or `events`.
    public func run() async throws {
        _ = try Endpoints.list(events)
        let client = try JobsClient(
            commands: commands,
            configuration: .init(
                requestTimeout: configuration.requestTimeout, listenerId: name, instanceId: instanceId,
                curve: configuration.curve),
            logger: logger)
        let leases = LeaseKeeper(client: client, logger: logger)
        let (inbox, post) = AsyncStream.makeStream(of: Runtime.Work.self)
        let runtime = Runtime(listener: self, client: client, leases: leases, post: post)
        let logger = self.logger
        let configuration = self.configuration
        logger.info("listener running", metadata: ["zmq.endpoint": "\(events)"])

        await withDiscardingTaskGroup { group in
            group.addTask { await leases.run() }
            group.addTask {
                await self.waitForStop()
                post.yield(.stop)
            }
            // The children the shutdown waits for: the intake, the claim slots, running events and releases.
            var draining = 1
            group.addTask {
                await runtime.eventLoop()
                post.yield(.ended(.intake))
            }
            for worker in claimWorkers {
                for _ in 0..<max(1, worker.spec.concurrency) {
                    draining += 1
                    group.addTask {
                        await runtime.claimSlot(worker)
                        post.yield(.ended(.claimSlot))
                    }
                }
            }
            var queue = EventQueue<(ListenerEvent, [Route])>(maxRunning: configuration.maxConcurrentEvents)
            var stopping = false
            for await work in inbox {
                var start: [(ListenerEvent, [Route])] = []
                switch work {
                case .event(let event, let routes):
                    if stopping { continue }
                    start = queue.add((event, routes), limits: routes.compactMap(\.limit))
                case .abandoned(let job):
                    draining += 1
                    group.addTask {
                        await runtime.releaseAbandoned(job)
                        post.yield(.ended(.release))
                    }
                case .stop:
                    if stopping { continue }
                    stopping = true
                    logger.info("listener stopping: no new events or jobs")
                    runtime.stop()
                    queue.dropWaiting()
                    group.addTask {
                        try? await Task.sleep(for: configuration.shutdownGracePeriod)
                        if Task.isCancelled { return }
                        logger.info("shutdown deadline reached: cancelling running handlers")
                        runtime.work.cancelHandlers()
                    }
                case .ended(let child):
                    draining -= 1
                    if case .event(let limits) = child {
                        start = queue.finished(limits: limits)
                        if stopping { start = [] }
                    }
                }
                for (event, routes) in start {
                    draining += 1
                    group.addTask {
                        await runtime.runEvent(event, routes)
                        post.yield(.ended(.event(routes.compactMap(\.limit))))
                    }
                }
                if stopping && draining == 0 { break }
            }
            post.finish()
            await leases.releaseAll()
            group.cancelAll()
        }
        await client.close()
        logger.info("listener stopped")
    }

    /// Returns on a graceful shutdown, ``stop()`` or cancellation.
    private func waitForStop() async {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await stopSignal.wait()
            } onCancel: {
                stopSignal.fire()
            }
        } onGracefulShutdown: {
            self.stopSignal.fire()
        }
    }

    /// An event-driven `jobHandler`: acks on `job:ready` and runs like a claimed one, at most
    /// `concurrency` at once.
    static func eventWorkerRoute(_ worker: Worker, id: Int) -> Route {
        let spec = worker.spec
        // The dispatcher holds an event back until the worker has a free slot, before the ack, not after:
        // that leaves the job to a listener with a free one, which spreads the parts of a split job over
        // several listeners.
        return Route(
            topics: ["job:ready"], topicGlobs: GlobSet(["job:ready"]), job: nil, jobPattern: nil,
            filter: worker.eventFilter,
            run: { event in try await JobRunner.runFromEvent(event, spec: spec) },
            limit: HandlerLimit(id: id, slots: spec.concurrency))
    }
}

/// Fires once; waiters resume then.
final class StopSignal: Sendable {
    private let state = Mutex<(fired: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func fire() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            if s.fired { return [] }
            s.fired = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let fired = state.withLock { s in
                if !s.fired { s.waiters.append(continuation) }
                return s.fired
            }
            if fired { continuation.resume() }
        }
    }
}
