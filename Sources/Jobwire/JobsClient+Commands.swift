import Foundation

extension JobsClient {
    // MARK: Jobs

    /// Creates a job (`jobs.create`); retried after a lost reply without ever creating twice.
    /// - Parameter request: the job's fields; an `idempotencyKey` is added when it has none.
    /// - Returns: the job after the whole create (`ready` for an immediate job).
    /// - Throws: ``ProtocolError`` (`invalidParams`, `notFound` for an unknown predecessor, `conflict` for a
    ///   key reused with other fields) or ``JobwireError``.
    public func create(_ request: JobCreateRequest) async throws -> Job {
        var params = request.json
        if params["idempotencyKey"] == nil { params["idempotencyKey"] = .string(UUID().uuidString) }
        return try Job(
            json: try await call(method: "jobs.create", params: params, timeout: nil, retry: true, orphan: nil))
    }

    /// Creates a job from its most used fields; see ``create(_:)``.
    public func create(
        type: String, operation: String, source: String, trigger: JobTrigger? = nil, mode: JobMode? = nil,
        input: JSONValue? = nil, info: String? = nil, idempotencyKey: String? = nil
    ) async throws -> Job {
        try await create(
            JobCreateRequest(
                type: type, operation: operation, source: source, trigger: trigger, mode: mode, input: input,
                info: info,
                idempotencyKey: idempotencyKey))
    }

    /// Reads a job (`jobs.get`).
    public func get(jobId: String) async throws -> Job {
        try Job(json: try await call(method: "jobs.get", params: ["jobId": .string(jobId)], retry: true))
    }

    /// One page of jobs (`jobs.list`).
    public func list(_ query: JobQuery = JobQuery()) async throws -> JobPage {
        try JobPage(json: try await call(method: "jobs.list", params: query.json, retry: true))
    }

    /// Every job that matches, page after page.
    public func listAll(_ query: JobQuery = JobQuery()) async throws -> [Job] {
        var query = query
        query.pageSize = query.pageSize ?? 100
        var page = 1
        var jobs: [Job] = []
        while true {
            query.pageNumber = page
            let result = try await list(query)
            jobs += result.data
            if page >= result.pageCount || result.data.isEmpty { return jobs }
            page += 1
        }
    }

    /// Changes progress, info, ETA or metadata, or moves a job to `planning` (`jobs.update`).
    public func update(
        jobId: String, progress: Double? = nil, info: String? = nil, estimatedCompletionAt: Timestamp? = nil,
        metadata: JSONValue? = nil, status: JobStatus? = nil, attempt: Int? = nil
    ) async throws -> Job {
        var params = jobParams(jobId, listener: true, attempt: attempt)
        if let progress { params["progress"] = .double(progress) }
        if let info { params["info"] = .string(info) }
        if let estimatedCompletionAt { params["estimatedCompletionAt"] = JSONValue(estimatedCompletionAt) }
        if let metadata { params["metadata"] = metadata }
        if let status { params["status"] = .string(status.rawValue) }
        return try await jobCall("jobs.update", params)
    }

    /// Runs a `manual` job (`jobs.execute`).
    public func execute(jobId: String) async throws -> Job {
        try await jobCall("jobs.execute", jobParams(jobId, listener: false))
    }

    /// Takes a ready job, or renews the lease of one this listener holds (`jobs.ack`).
    ///
    /// `attempt`, on this and the other verbs of a held job, names the attempt the caller works on: a call
    /// from an attempt that is over gets ``ProtocolError/Code/leaseExpired`` even when the same listener
    /// instance holds the job again (a handler outliving its lease).
    /// - Throws: ``ProtocolError/Code/conflict`` when another listener, or another instance of this one, has it.
    public func ack(
        jobId: String, progress: Double? = nil, info: String? = nil, estimatedCompletionAt: Timestamp? = nil,
        attempt: Int? = nil
    ) async throws -> Job {
        var params = jobParams(jobId, listener: true, attempt: attempt)
        if let progress { params["progress"] = .double(progress) }
        if let info { params["info"] = .string(info) }
        if let estimatedCompletionAt { params["estimatedCompletionAt"] = JSONValue(estimatedCompletionAt) }
        return try await jobCall("jobs.ack", params)
    }

    /// Waits up to `wait` for the broker to hand this listener one ready job whose name matches (`jobs.claim`).
    /// - Parameters:
    ///   - jobs: job-name globs, e.g. `["workbook:export", "sheet:*"]`.
    ///   - wait: how long the broker may hold the request, 0 to 60 seconds.
    ///   - info: the job's `info` once claimed.
    /// - Returns: the claimed job (`executing`, with a lease), or `nil` when none became ready in time.
    public func claim(jobs: [String], wait: Duration = .zero, info: String? = nil) async throws -> Job? {
        try await claim(jobs: jobs, wait: wait, info: info, onAbandoned: nil)
    }

    /// A claim whose late reply, after the caller was cancelled, goes to `onAbandoned`.
    func claim(jobs: [String], wait: Duration, info: String?, onAbandoned: (@Sendable (Job) -> Void)?) async throws
        -> Job?
    {
        var params: JSONObject = ["jobs": .array(jobs.map(JSONValue.string))]
        if let listenerId = configuration.listenerId { params["listenerId"] = .string(listenerId) }
        if let instanceId = configuration.instanceId { params["instanceId"] = .string(instanceId) }
        let seconds = Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18
        params["wait"] = .double(min(60, max(0, seconds)))
        if let info { params["info"] = .string(info) }
        var orphan: (@Sendable (Result<JSONValue, ProtocolError>) -> Void)? = nil
        if let onAbandoned {
            orphan = { @Sendable (result: Result<JSONValue, ProtocolError>) -> Void in
                guard case .success(let value) = result, let found = value["job"], !found.isNull,
                    let job = try? Job(json: found)
                else { return }
                onAbandoned(job)
            }
        }
        let result = try await call(
            method: "jobs.claim", params: params, timeout: configuration.requestTimeout + wait, retry: false,
            orphan: orphan)
        guard let job = result["job"], !job.isNull else { return nil }
        return try Job(json: job)
    }

    /// Ends a job this listener holds as `complete` (`jobs.complete`).
    public func complete(jobId: String, outcome: Outcome? = nil, info: String? = nil, attempt: Int? = nil)
        async throws -> Job
    {
        try await endingCall("jobs.complete", finishParams(jobId, outcome, info, attempt), ends: .complete, attempt)
    }

    /// Ends a job this listener holds as `failed` (`jobs.fail`).
    ///
    /// With `retry`, an attempt below the job's `maxAttempts` does not end the job: it is `scheduled` for its
    /// backoff (or `ready` at once without one) with attempt + 1; the last attempt fails it as without.
    public func fail(
        jobId: String, outcome: Outcome? = nil, info: String? = nil, attempt: Int? = nil, retry: Bool = false
    ) async throws -> Job {
        var params = finishParams(jobId, outcome, info, attempt)
        guard retry else { return try await endingCall("jobs.fail", params, ends: .failed, attempt) }
        params["retry"] = true
        return try await jobCall("jobs.fail", params)
    }

    /// Gives a job back unfinished: it is `ready` again with attempt + 1 (`jobs.release`), or after
    /// `delaySeconds` `scheduled` until then.
    public func release(jobId: String, info: String? = nil, attempt: Int? = nil, delaySeconds: Int? = nil)
        async throws -> Job
    {
        var params = jobParams(jobId, listener: true, attempt: attempt)
        if let info { params["info"] = .string(info) }
        if let delaySeconds { params["delaySeconds"] = .int(Int64(delaySeconds)) }
        return try await jobCall("jobs.release", params)
    }

    /// Cancels a job that has not ended (`jobs.cancel`).
    public func cancel(jobId: String, info: String? = nil) async throws -> Job {
        var params = jobParams(jobId, listener: false)
        if let info { params["info"] = .string(info) }
        return try await endingCall("jobs.cancel", params, ends: .canceled, nil)
    }

    /// Runs a failed or canceled job again (`jobs.retry`).
    public func retry(jobId: String) async throws -> Job {
        try await jobCall("jobs.retry", jobParams(jobId, listener: false))
    }

    /// Records that the user saw the outcome (`jobs.ackOutcome`).
    public func ackOutcome(jobId: String) async throws -> Job {
        try await jobCall("jobs.ackOutcome", jobParams(jobId, listener: false))
    }

    /// Splits an executing job into `count` parts (`jobs.split`).
    public func split(jobId: String, parts count: Int, runInParallel: Bool = true) async throws -> [Job] {
        try await split(jobId: jobId, parts: .int(Int64(count)), runInParallel: runInParallel)
    }

    /// Splits an executing job into one part per `partData` object (`jobs.split`).
    public func split(jobId: String, partData: [JSONValue], runInParallel: Bool = true) async throws -> [Job] {
        try await split(jobId: jobId, parts: .array(partData), runInParallel: runInParallel)
    }

    private func split(jobId: String, parts: JSONValue, runInParallel: Bool) async throws -> [Job] {
        var params = jobParams(jobId, listener: true)
        params["parts"] = parts
        params["runInParallel"] = .bool(runInParallel)
        let result = try await call(method: "jobs.split", params: params)
        return try (result["parts"]?.arrayValue ?? []).map { try Job(json: $0) }
    }

    /// Deletes a job that is not executing (`jobs.delete`).
    public func delete(jobId: String) async throws {
        _ = try await call(method: "jobs.delete", params: ["jobId": .string(jobId)])
    }

    // MARK: Actions

    /// Mounts an action on a resource (`actions.mount`).
    /// - Parameter action: `{operation, label, mode, description, primary, confirm, inputForm, constraints}`.
    public func mountAction(domain: String, resourceId: String, action: JSONObject) async throws -> Action {
        let result = try await call(
            method: "actions.mount",
            params: ["domain": .string(domain), "resourceId": .string(resourceId), "action": .object(action)])
        return try Action(json: result, path: "")
    }

    /// The actions mounted on a resource (`actions.list`).
    public func listActions(domain: String, resourceId: String) async throws -> [Action] {
        let result = try await call(
            method: "actions.list", params: ["domain": .string(domain), "resourceId": .string(resourceId)], retry: true)
        return try (result.arrayValue ?? []).map { try Action(json: $0, path: "") }
    }

    /// Removes an action (`actions.unmount`).
    public func unmountAction(actionId: String) async throws {
        _ = try await call(method: "actions.unmount", params: ["actionId": .string(actionId)])
    }

    /// Triggers an action: creates the immediate job `domain:operation` (`actions.trigger`).
    public func triggerAction(actionId: String, input: JSONValue? = nil, actorId: String? = nil) async throws -> Job {
        var params: JSONObject = ["actionId": .string(actionId)]
        if let input { params["input"] = input }
        if let actorId { params["actorId"] = .string(actorId) }
        return try await jobCall("actions.trigger", params)
    }

    /// Triggers the action `operation` mounted on a resource (`actions.trigger`).
    public func triggerAction(
        domain: String, resourceId: String, operation: String, input: JSONValue? = nil, actorId: String? = nil
    ) async throws -> Job {
        var params: JSONObject = [
            "domain": .string(domain), "resourceId": .string(resourceId), "operation": .string(operation),
        ]
        if let input { params["input"] = input }
        if let actorId { params["actorId"] = .string(actorId) }
        return try await jobCall("actions.trigger", params)
    }

    // MARK: Events and the broker

    /// Events of the log after `since` (`events.list`).
    /// - Throws: ``ProtocolError/Code/gone`` when the log no longer keeps them.
    public func events(since: Int64, topics: [String]? = nil, limit: Int? = nil) async throws -> EventPage {
        var params: JSONObject = ["since": .int(since)]
        if let topics { params["topics"] = .array(topics.map(JSONValue.string)) }
        if let limit { params["limit"] = .int(Int64(limit)) }
        return try EventPage(json: try await call(method: "events.list", params: params, retry: true))
    }

    /// The broker's version, epoch, latest seq and job counts (`broker.info`).
    public func brokerInfo() async throws -> BrokerInfo {
        try BrokerInfo(json: try await call(method: "broker.info", params: [:], retry: true))
    }

    // MARK: Helpers

    private func jobParams(_ jobId: String, listener: Bool, attempt: Int? = nil) -> JSONObject {
        var params: JSONObject = ["jobId": .string(jobId)]
        if listener {
            if let listenerId = configuration.listenerId { params["listenerId"] = .string(listenerId) }
            if let instanceId = configuration.instanceId { params["instanceId"] = .string(instanceId) }
        }
        if let attempt { params["attempt"] = .int(Int64(attempt)) }
        return params
    }

    private func finishParams(_ jobId: String, _ outcome: Outcome?, _ info: String?, _ attempt: Int?) -> JSONObject {
        var params = jobParams(jobId, listener: true, attempt: attempt)
        if let outcome { params["outcome"] = .object(outcome.json) }
        if let info { params["info"] = .string(info) }
        return params
    }

    private func jobCall(_ method: String, _ params: JSONObject) async throws -> Job {
        try Job(json: try await call(method: method, params: params))
    }

    /// A verb that ends a job. Sent more than once (again after the broker restarted or another took over,
    /// or retried), its repeat finds the job ended by the first and gets `invalid_transition`: then the job,
    /// read back, is the answer when it ended as asked (in `status`, on `attempt` when given).
    private func endingCall(_ method: String, _ params: JSONObject, ends status: JobStatus, _ attempt: Int?)
        async throws -> Job
    {
        let jobId = params["jobId"]?.stringValue ?? ""
        let result = try await call(method: method, params: params, timeout: nil, retry: false, orphan: nil) {
            [self] error in
            guard error.code == .invalidTransition else { return nil }
            let found = try await call(method: "jobs.get", params: ["jobId": .string(jobId)], retry: true)
            let job = try Job(json: found)
            guard job.status == status, attempt == nil || job.attempt == attempt else { return nil }
            logger.debug(
                "\(method) was sent twice; the first one landed",
                metadata: ["job.id": "\(jobId)", "zmq.endpoint": "\(endpoint)"])
            return found
        }
        return try Job(json: result)
    }
}
