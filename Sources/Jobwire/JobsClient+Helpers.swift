extension JobsClient {
    // MARK: Typed actions

    /// Mounts an action on a resource (`actions.mount`).
    /// - Parameters:
    ///   - domain: the resource's domain, e.g. `workbook`: the job's `type`.
    ///   - resourceId: the resource's id, e.g. `us_wb_1`.
    ///   - action: the button, its input form and constraints.
    /// - Returns: the action with its `us_ac_` id.
    /// - Throws: ``ProtocolError`` (`invalidParams` naming e.g. `action.operation`) or ``JobwireError``.
    public func mountAction(domain: String, resourceId: String, _ action: ActionDefinition) async throws -> Action {
        try await mountAction(domain: domain, resourceId: resourceId, action: action.json)
    }

    /// The action `action.operation` mounted on a resource, mounting it first when there is none.
    ///
    /// Actions survive broker restarts, so a listener that mounts its own buttons calls this on every start
    /// instead of ``mountAction(domain:resourceId:_:)``, which would mount a second button each time.
    /// - Returns: the mounted action, as it was already (its definition is not compared) or as mounted now.
    public func ensureAction(domain: String, resourceId: String, _ action: ActionDefinition) async throws -> Action {
        let mounted = try await listActions(domain: domain, resourceId: resourceId)
        if let existing = mounted.first(where: { $0.operation == action.operation }) { return existing }
        return try await mountAction(domain: domain, resourceId: resourceId, action)
    }

    /// Clicks an action: creates its immediate job `domain:operation` (`actions.trigger`).
    /// - Throws: ``ProtocolError/Code/invalidParams`` naming `input.<key>` when a required field is missing.
    public func triggerAction(_ action: Action, input: JSONObject = [:], actorId: String? = nil) async throws -> Job {
        try await triggerAction(actionId: action.id, input: .object(input), actorId: actorId)
    }

    // MARK: Multi-part jobs and outcomes

    /// The parts of a split job, in part order (`jobs.list {parentId}`).
    public func parts(of parentId: String) async throws -> [Job] {
        try await listAll(JobQuery(parentId: parentId)).sorted { ($0.part ?? 0) < ($1.part ?? 0) }
    }

    /// Waits until a job has ended (`complete`, `failed` or `canceled`), reading it every `interval`.
    /// - Returns: the ended job with its outcome, or the job as it is when `timeout` passed first (check
    ///   `status.isTerminal`).
    public func waitUntilEnded(
        jobId: String, timeout: Duration = .seconds(60), interval: Duration = .milliseconds(100)
    ) async throws -> Job {
        let deadline = ContinuousClock.now + timeout
        while true {
            let job = try await get(jobId: jobId)
            if job.status.isTerminal || ContinuousClock.now >= deadline { return job }
            try await Task.sleep(for: interval)
        }
    }
}

/// How the parts of a split job ended: the `parts` of `job:parts-completed`.
public struct PartsSummary: Sendable, Hashable, CustomStringConvertible {
    public var total: Int
    public var completed: Int
    public var failed: Int
    public var canceled: Int

    public init(total: Int, completed: Int, failed: Int = 0, canceled: Int = 0) {
        self.total = total
        self.completed = completed
        self.failed = failed
        self.canceled = canceled
    }

    /// Reads `{total, completed, failed, canceled}`.
    public init?(json value: JSONValue?) {
        guard let value, let total = value["total"]?.intValue else { return nil }
        self.total = Int(total)
        completed = Int(value["completed"]?.intValue ?? 0)
        failed = Int(value["failed"]?.intValue ?? 0)
        canceled = Int(value["canceled"]?.intValue ?? 0)
    }

    /// Whether every part completed.
    public var allCompleted: Bool { completed == total }

    /// `4 of 4 parts completed`, with failed and canceled counts when there are any.
    public var description: String {
        var text = "\(completed) of \(total) parts completed"
        if failed > 0 { text += ", \(failed) failed" }
        if canceled > 0 { text += ", \(canceled) canceled" }
        return text
    }
}

extension Outcome {
    /// The outcome of a split job from how its parts ended: "4 of 4 parts completed" (with failures named).
    /// - Parameters:
    ///   - parts: the `parts` of `job:parts-completed`.
    ///   - heading: the heading; `Complete` when every part completed, else `Some parts did not complete`.
    ///   - acknowledge: show a modal; by default only when some part did not complete.
    public init(parts: PartsSummary, heading: String? = nil, acknowledge: Bool? = nil) {
        self.init(
            message: parts.description,
            heading: heading ?? (parts.allCompleted ? "Complete" : "Some parts did not complete"),
            acknowledge: acknowledge ?? (parts.allCompleted ? nil : true))
    }
}

extension ListenerEvent {
    /// Whether the event's job is a part of a split job (`payload.isPart`).
    public var isPart: Bool { payload["isPart"]?.boolValue ?? false }

    /// How the parts ended, for `job:parts-completed`.
    public var parts: PartsSummary? { PartsSummary(json: payload["parts"]) }

    /// The event's job's own parts, in part order (`jobs.list {parentId}`).
    public func partJobs() async throws -> [Job] {
        guard let jobId else { throw ProtocolError(.invalidParams, "the \(topic) event has no job", field: "jobId") }
        return try await client.parts(of: jobId)
    }
}

/// A group for the events of parts only (`isPart: true`) or of whole and parent jobs only (`isPart: false`):
/// `filter(["isPart": isPart])`. Parts share their parent's name, so this is how a listener tells them apart.
/// ```swift
/// filter(isPart: false) { on("job:ready", job: "workbook:export") { event in … split … } }
/// filter(isPart: true) { jobHandler("workbook:export") { event, tick in … one part … } }
/// ```
public func filter(isPart: Bool, @ListenerBuilder _ content: () -> [ListenerComponent]) -> ListenerComponent {
    filter(["isPart": .bool(isPart)], content)
}

/// A `jobHandler` for the parts (`isPart: true`) or the whole jobs (`isPart: false`) named `job`.
///
/// It takes its jobs from `job:ready` events with `jobs.ack`, at most `concurrency` at once, so parts spread
/// over the listeners that run it.
public func jobHandler(
    _ job: String, isPart: Bool, concurrency: Int = 1, _ body: @escaping JobHandlerBody
) -> ListenerComponent {
    jobHandler(filter: ["job": .string(job), "isPart": .bool(isPart)], concurrency: concurrency, body)
}
