package import JobwireProtocol

extension BrokerCore {
    /// Applies one request. The reply goes to the outbox, unless a claim waits for a job.
    package func handle(_ request: RPCRequest, from caller: Caller) {
        // A lease that ran out is over before any request sees it, whether or not a tick came round since:
        // a round handles its requests before its tick (the first round after a restart too).
        expireDueLeases()
        do {
            switch try dispatch(request, caller: caller) {
            case nil: break
            case .value(let value)?: reply(caller, rawID: request.rawID, .success(value))
            case .raw(let bytes)?: reply(caller, rawID: request.rawID, rawResult: bytes)
            case .job(let job)?: reply(caller, rawID: request.rawID, rawResult: replyBody(of: job))
            }
        } catch {
            reply(caller, rawID: request.rawID, .failure(ProtocolError.from(error)))
        }
        // After the reply: a job this command made ready is then handed to a waiting claimer, and the
        // reply still shows the job as the command left it (`ready` for an immediate create).
        serveWaitingClaims()
    }

    private func dispatch(_ request: RPCRequest, caller: Caller) throws -> ReplyBody? {
        let p = FieldReader(request.params)
        if let allowed = BrokerCore.allowedParams[request.method] { try p.rejectUnknown(allowing: allowed) }
        switch request.method {
        case "jobs.create": return .job(try create(p, caller: caller))
        case "jobs.get": return .job(try record(try p.requiredIdentifier("jobId")).job)
        case "jobs.list": return try list(p)
        case "jobs.update": return .job(try update(p, caller: caller))
        case "jobs.execute": return .job(try execute(p))
        case "jobs.ack": return .job(try ack(p, caller: caller))
        case "jobs.claim": return try claim(p, caller: caller, requestId: request.rawID)
        case "jobs.complete": return .job(try finish(p, caller: caller, as: .complete))
        case "jobs.fail": return .job(try finish(p, caller: caller, as: .failed))
        case "jobs.release": return .job(try release(p, caller: caller))
        case "jobs.cancel": return .job(try cancel(p))
        case "jobs.retry": return .job(try retry(p))
        case "jobs.ackOutcome": return .job(try ackOutcome(p))
        case "jobs.split": return .value(try split(p, caller: caller))
        case "jobs.delete": return .value(try delete(p))
        case "actions.mount": return .value(.object(try mountAction(p).json))
        case "actions.list": return .value(try listActions(p))
        case "actions.unmount": return .value(try unmountAction(p))
        case "actions.trigger": return .job(try triggerAction(p, caller: caller))
        case "events.list": return try listEvents(p)
        case "broker.info": return .value(info())
        default: throw ProtocolError(.methodNotFound, "method not found: \(request.method)")
        }
    }

    /// The params each method takes; any other key is `-32602` naming it.
    package static let allowedParams: [String: Set<String>] = {
        let context = Set(JobContext.keys)
        // `instanceId` names the listener process that holds a lease (validated where leases are checked).
        let verb: Set<String> = ["jobId", "listenerId", "instanceId", "attempt"]
        return [
            "jobs.create": context.union([
                "type", "operation", "source", "destination", "trigger", "mode", "input", "config", "subject",
                "metadata", "info", "predecessorIds", "runAt", "leaseSeconds", "maxAttempts", "idempotencyKey",
                "status", "priority", "backoff", "timeoutSeconds",
            ]),
            "jobs.get": ["jobId"],
            "jobs.list": context.union([
                "status", "type", "operation", "source", "parentId", "excludeChildJobs", "pageSize", "pageNumber",
                "sortDirection", "sortField", "priority",
            ]),
            "jobs.update": verb.union(["progress", "info", "estimatedCompletionAt", "metadata", "status"]),
            "jobs.execute": ["jobId"],
            "jobs.ack": verb.union(["info", "progress", "estimatedCompletionAt"]),
            "jobs.claim": ["listenerId", "instanceId", "jobs", "wait", "info"],
            "jobs.complete": verb.union(["outcome", "info"]),
            "jobs.fail": verb.union(["outcome", "info", "retry"]),
            "jobs.release": verb.union(["info", "delaySeconds"]),
            "jobs.cancel": ["jobId", "info"],
            "jobs.retry": ["jobId"],
            "jobs.ackOutcome": ["jobId"],
            "jobs.split": verb.union(["parts", "runInParallel"]),
            "jobs.delete": ["jobId"],
            "actions.mount": ["domain", "resourceId", "action"],
            "actions.list": ["domain", "resourceId"],
            "actions.unmount": ["actionId"],
            "actions.trigger": ["actionId", "domain", "resourceId", "operation", "input", "actorId"],
            "events.list": ["since", "topics", "limit"],
            "broker.info": [],
        ]
    }()

    // MARK: Create

    package func create(_ p: FieldReader, caller: Caller) throws -> Job {
        try create(try CreateFields(p, configuration: configuration))
    }

    /// Creates a job from checked fields: `jobs.create`'s, or an action's trigger's.
    package func create(_ fields: CreateFields) throws -> Job {
        if let key = fields.idempotencyKey {
            let hash = fields.fingerprint
            if let existing = try existingJob(idempotencyKey: key) {
                guard existing.idempotencyHash == hash else {
                    throw ProtocolError(.conflict, "idempotency key \(key) was used for a job with other fields")
                }
                return existing.job
            }
        }
        // At most `CreateFields.maxPredecessors` lookups, each by the id's index (memory, else the store's key).
        for (index, id) in fields.predecessorIds.enumerated() {
            do {
                _ = try record(id)
            } catch let error as ProtocolError where error.code == .notFound {
                throw ProtocolError(.notFound, "predecessorIds.\(index): job \(id) not found", field: "predecessorIds")
            }
        }
        let job = fields.job(id: newJobId(), now: now)
        var record = JobRecord(
            job: job, idempotencyKey: fields.idempotencyKey,
            idempotencyHash: fields.idempotencyKey.map { _ in fields.fingerprint })
        if let key = fields.idempotencyKey { pendingKeys[key] = job.id }
        save(&record, previous: nil)
        emit("job:created", job)
        if job.trigger == .immediate {
            record = enqueue(record)
        }
        return record.job
    }

    private func existingJob(idempotencyKey key: String) throws -> JobRecord? {
        if let id = pendingKeys[key], let pending = jobs[id] { return pending }
        do {
            guard let stored = try store.job(idempotencyKey: key), !deletedSet.contains(stored.job.id) else {
                return nil
            }
            return jobs[stored.job.id] ?? stored
        } catch {
            throw ProtocolError(.internalError, "store read failed: \(error)")
        }
    }

    /// Moves a job that may run to `ready`, or to `scheduled` while it must wait, or to `failed` when a
    /// predecessor already failed. Publishes the matching event.
    @discardableResult
    package func enqueue(_ record: JobRecord) -> JobRecord {
        if let blocker = failedPredecessor(of: record.job) {
            return fail(record, "predecessor \(blocker.id) \(blocker.how)")
        }
        guard mustWait(record.job) else { return transition(record, to: .ready) }
        let id = record.job.id
        if let runAt = record.job.runAt, runAt > now { runAts.push(runAt, id) }
        for predecessor in record.job.predecessorIds where status(of: predecessor) != .complete {
            dependents[predecessor, default: []].append(id)
        }
        return transition(record, to: .scheduled)
    }

    // MARK: Transitions

    /// Moves a job to `status`: every change of a job's status goes through here.
    ///
    /// Applies `change`, then sets the status; a job that leaves `executing` lets go of its lease, and a
    /// job that ends is stamped `finishedAt`. Records the job for the batch, publishes the event of the
    /// status it entered (``topic(entering:)``) and, for an end, follows it (``jobEnded(_:)``):
    /// dependents, the next sequential part, the parent's count. `followEnd: false` leaves that to the
    /// caller (a cancel of parts follows the parts' ends before their parent's).
    /// - Returns: the job as the core holds it now.
    @discardableResult
    package func transition(
        _ record: JobRecord, to status: JobStatus, followEnd: Bool = true,
        _ change: (inout JobRecord) -> Void = { _ in }
    ) -> JobRecord {
        var record = record
        let previous = record.job.status
        change(&record)
        record.job.status = status
        if previous == .executing && status != .executing { record.job.lease = nil }
        if status.isTerminal { record.job.finishedAt = now }
        save(&record, previous: previous)
        emit(BrokerCore.topic(entering: status), record.job)
        if status.isTerminal && followEnd { jobEnded(record.job) }
        return jobs[record.job.id] ?? record
    }

    /// Fails a job with `message` as its outcome.
    @discardableResult
    package func fail(_ record: JobRecord, _ message: String) -> JobRecord {
        transition(record, to: .failed) { $0.job.outcome = Outcome(message: message) }
    }

    /// The event a job publishes when it enters `status`.
    package static func topic(entering status: JobStatus) -> String {
        switch status {
        case .ready: "job:ready"
        case .scheduled: "job:scheduled"
        case .complete: "job:completed"
        case .failed: "job:failed"
        case .created, .planning, .executing, .canceled: "job:updated"
        }
    }

    package func status(of id: String) -> JobStatus? { try? record(id).job.status }

    /// Enqueues a scheduled job whose wait may be over: when it may run, or when it never can (a
    /// predecessor failed, was canceled or deleted).
    private func wake(_ record: JobRecord) {
        if !mustWait(record.job) || failedPredecessor(of: record.job) != nil { enqueue(record) }
    }

    private func mustWait(_ job: Job) -> Bool {
        if let runAt = job.runAt, runAt > now { return true }
        if job.predecessorIds.contains(where: { status(of: $0) != .complete }) { return true }
        if let parentId = job.parentId, let p = parts[parentId], p.sequential, let part = job.part,
            previousPartRunning(parentId: parentId, part: part)
        {
            // A sequential part waits until the one before it has ended.
            return true
        }
        return false
    }

    /// The first predecessor that failed, was canceled or is gone (deleted): the job can never run.
    private func failedPredecessor(of job: Job) -> (id: String, how: String)? {
        for id in job.predecessorIds {
            switch predecessorStatus(id) {
            case .found(.failed): return (id, "failed")
            case .found(.canceled): return (id, "canceled")
            case .deleted: return (id, "deleted")
            default: continue
            }
        }
        return nil
    }

    private enum PredecessorStatus {
        case found(JobStatus)
        case deleted
        /// The store could not be read: the job waits, as for an unfinished predecessor.
        case unknown
    }

    private func predecessorStatus(_ id: String) -> PredecessorStatus {
        do {
            return .found(try record(id).job.status)
        } catch let error as ProtocolError where error.code == .notFound {
            return .deleted
        } catch {
            return .unknown
        }
    }

    // MARK: Reads

    private func list(_ p: FieldReader) throws -> ReplyBody {
        var query = ListQuery()
        if let value = p.value("status") {
            let names: [String]
            switch value {
            case .string(let s): names = [s]
            case .array: names = try p.stringArray("status") ?? []
            default: throw FieldError(field: "status", message: "status must be a string or an array of strings")
            }
            for name in names {
                guard let status = JobStatus(wire: name) else {
                    throw FieldError(field: "status", message: "status \"\(name)\" is not a job status")
                }
                query.statuses.append(status)
            }
        }
        query.type = try p.identifier("type")
        query.operation = try p.identifier("operation")
        query.source = try p.identifier("source")
        query.parentId = try p.identifier("parentId")
        for key in JobContext.keys {
            if let value = try p.identifier(key) { query.context.append((key, value)) }
        }
        query.excludeChildJobs = try p.bool("excludeChildJobs") ?? false
        query.pageSize = Int(try p.int("pageSize", in: 1...1000) ?? 20)
        query.pageNumber = Int(try p.int("pageNumber", in: 1...Int64(Int32.max)) ?? 1)
        if let direction = try p.string("sortDirection") {
            guard direction == "asc" || direction == "desc" else {
                throw FieldError(
                    field: "sortDirection", message: "sortDirection must be asc or desc, not \"\(direction)\"")
            }
            query.descending = direction == "desc"
        }
        query.priority = try p.int("priority", in: CreateFields.priorities).map { Int($0) }
        if let field = try p.string("sortField") {
            guard field == "createdAt" || field == "priority" else {
                throw FieldError(
                    field: "sortField", message: "sortField must be createdAt or priority, not \"\(field)\"")
            }
            query.sortByPriority = field == "priority"
        }
        try flush()
        let (found, total) = try storeRead { try store.list(query) }
        let pageCount = (total + query.pageSize - 1) / query.pageSize
        var w = JSONObjectWriter()
        w.raw("data", [UInt8(ascii: "[")] + Array(found.joined(separator: [UInt8(ascii: ",")])) + [UInt8(ascii: "]")])
        w.object("pagination") { p in
            p.int("currentPage", Int64(query.pageNumber))
            p.int("pageCount", Int64(pageCount))
            p.int("totalCount", Int64(total))
        }
        return .raw(w.finish())
    }

    package func storeRead<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw ProtocolError(.internalError, "store read failed: \(error)")
        }
    }

    package func info() -> JSONValue {
        var counts = JSONObject()
        for status in JobStatus.allCases { counts[status.rawValue] = .int(Int64(max(0, statusCounts[status] ?? 0))) }
        return [
            "version": .string(JobwireVersion.current), "epoch": .string(epoch), "seq": .int(seq),
            "startedAt": JSONValue(startedAt), "jobs": .object(counts),
            // An extension of PROTOCOL.md's broker.info: claims waiting for a job now.
            "waitingClaims": .int(Int64(waitingClaims.count)),
        ]
    }

    // MARK: Leases

    /// The lease holder a call speaks for (PROTOCOL.md §7, Leases): the authenticated key under CURVE, else
    /// its `listenerId`, with its `instanceId`; nil for an operator (no `listenerId`, no CURVE key).
    /// - Throws: ``FieldError`` for an `instanceId` that is not 1-64 characters of `[A-Za-z0-9._:-]`.
    package func callerIdentity(_ p: FieldReader, _ caller: Caller) throws -> LeaseHolder? {
        let instanceId = try self.instanceId(p)
        guard let owner = try caller.authenticatedKey ?? p.identifier("listenerId") else { return nil }
        return LeaseHolder(owner: owner, instanceId: instanceId)
    }

    /// The call's `instanceId`: which running copy of a listener sends it.
    private func instanceId(_ p: FieldReader) throws -> String? {
        guard let id = try p.string("instanceId") else { return nil }
        guard LeaseHolder.isValidInstanceId(id) else {
            throw FieldError(
                field: "instanceId",
                message: "instanceId must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', ':', '-'")
        }
        return id
    }

    /// Checks that `caller` may act on an executing job as its lease holder (PROTOCOL.md §7, Leases); a nil
    /// caller is an operator.
    ///
    /// `attempt`, when the caller names one (an extension of PROTOCOL.md), fences off a late call from an
    /// earlier attempt even when the same holder has the job again: it gets `lease_expired`.
    package func checkOwner(_ record: JobRecord, listener caller: LeaseHolder?, verb: String, attempt: Int64?) throws {
        let job = record.job
        if job.status.isTerminal {
            throw ProtocolError(.invalidTransition, "cannot \(verb) \(job.id): it is \(job.status.rawValue)")
        }
        if let attempt, attempt != Int64(job.attempt) {
            throw ProtocolError(
                .leaseExpired, "attempt \(attempt) of \(job.id) is over; the job is on attempt \(job.attempt)")
        }
        if job.status == .executing, let lease = job.lease {
            let holder = LeaseHolder(lease)
            guard let caller, caller != holder else { return }
            if record.formerOwners.contains(caller.key) {
                throw ProtocolError(
                    .leaseExpired, "the lease of \(caller) on \(job.id) expired; \(holder) holds it now")
            }
            throw ProtocolError(.conflict, "\(job.id) is held by \(holder), not \(caller)")
        }
        if let caller, record.formerOwners.contains(caller.key) {
            throw ProtocolError(
                .leaseExpired, "the lease of \(caller) on \(job.id) expired; it is \(job.status.rawValue) now")
        }
        throw ProtocolError(.invalidTransition, "cannot \(verb) \(job.id): it is \(job.status.rawValue), not executing")
    }

    package func renewLease(_ record: inout JobRecord) {
        guard var lease = record.job.lease else { return }
        lease.expiresAt = now + .seconds(record.job.leaseSeconds)
        // An attempt's timeout holds whatever the renewals: the lease runs out with it at the latest, and
        // its expiry then ends the attempt (``expireDueLeases()``).
        if let timesOutAt = lease.timesOutAt { lease.expiresAt = min(lease.expiresAt, timesOutAt) }
        record.job.lease = lease
        // A lease only moves later, so the job's entry, if it has one, comes up no later than this expiry:
        // renewals (every progress update renews) add nothing to the heap.
        if leaseTimers.insert(record.job.id).inserted { leases.push(lease.expiresAt, record.job.id) }
    }

    /// Remembers the job's lease holder as a former one, whose late calls get `lease_expired`.
    package func retireLeaseHolder(_ record: inout JobRecord) {
        guard let lease = record.job.lease else { return }
        let key = LeaseHolder(lease).key
        if !record.formerOwners.contains(key) { record.formerOwners.append(key) }
    }

    /// Gives the job's lease to `owner`, for a transition to `executing`.
    private func takeLease(_ record: inout JobRecord, owner: LeaseHolder) {
        record.job.lease = Lease(
            owner: owner.owner, instanceId: owner.instanceId, expiresAt: now,
            timesOutAt: record.job.timeoutSeconds.map { now + .seconds($0) })
        if record.job.startedAt == nil { record.job.startedAt = now }
        renewLease(&record)
    }

    /// Applies the optional `info`, `progress` and `estimatedCompletionAt` of an ack or update, after
    /// checking all of them.
    private func applyProgress(_ p: FieldReader, to job: inout Job) throws {
        let info = try p.string("info")
        let progress = try p.double("progress")
        if let progress, !(0...100).contains(progress) {
            throw FieldError(field: "progress", message: "progress must be from 0 to 100, not \(progress)")
        }
        let eta = try p.timestamp("estimatedCompletionAt")
        if let info { job.info = info }
        if let progress { job.progress = progress }
        if let eta { job.estimatedCompletionAt = eta }
    }

    // MARK: Verbs

    private func ack(_ p: FieldReader, caller: Caller) throws -> Job {
        var record = try record(try p.requiredIdentifier("jobId"))
        let listener = try callerIdentity(p, caller)
        let previous = record.job.status
        var job = record.job
        try applyProgress(p, to: &job)
        switch previous {
        case .ready:
            // A renewal from an attempt that is over (its job was released or requeued since) takes nothing.
            if let attempt = try p.int("attempt"), attempt != Int64(job.attempt) {
                throw ProtocolError(
                    .leaseExpired, "attempt \(attempt) of \(job.id) is over; the job is on attempt \(job.attempt)")
            }
            let owner = try listener ?? LeaseHolder(owner: "anonymous", instanceId: instanceId(p))
            return transition(record, to: .executing) { record in
                record.job = job
                takeLease(&record, owner: owner)
            }.job
        case .executing:
            try checkOwner(record, listener: listener, verb: "ack", attempt: try p.int("attempt"))
            record.job = job
            renewLease(&record)
        default:
            try checkOwner(record, listener: listener, verb: "ack", attempt: try p.int("attempt"))
        }
        save(&record, previous: previous)
        emit("job:updated", record.job)
        return record.job
    }

    private func claim(_ p: FieldReader, caller: Caller, requestId: [UInt8]) throws -> ReplyBody? {
        let owner: LeaseHolder
        let patterns: [Glob]
        let wait: Int64
        let info: String?
        owner = try callerIdentity(p, caller) ?? LeaseHolder(owner: "anonymous", instanceId: instanceId(p))
        guard let names = try p.stringArray("jobs") else {
            throw FieldError(
                field: "jobs", message: "jobs is required: the job names to claim, e.g. [\"workbook:export\"]")
        }
        guard !names.isEmpty else { throw FieldError(field: "jobs", message: "jobs must name at least one job") }
        try Glob.checkPatterns(names, field: "jobs")
        var distinct = Set<String>()
        patterns = names.filter { distinct.insert($0).inserted }.map(compiledGlob)
        wait = try p.int("wait", in: 0...60) ?? 0
        info = try p.string("info")
        if let id = oldestReady(matching: patterns) {
            replyToClaim(caller, rawID: requestId, job: claimJob(id, owner: owner, info: info), owner: owner)
            return nil
        }
        guard wait > 0 else {
            replyToClaim(caller, rawID: requestId, job: nil, owner: owner)
            return nil
        }
        if let refusal = waitingClaims.refusal(route: caller.route, patterns: patterns) {
            throw ProtocolError(.overloaded, refusal)
        }
        waitingClaims.add(
            WaitingClaim(
                caller: caller, requestId: requestId, owner: owner, patterns: patterns, info: info,
                deadline: now + .seconds(wait)))
        return nil
    }

    /// The compiled pattern, from a cache: claim loops send the same few patterns with every claim.
    private func compiledGlob(_ pattern: String) -> Glob {
        if let glob = globCache[pattern] { return glob }
        if globCache.count >= 1024 { globCache.removeAll() }
        let glob = Glob(pattern)
        globCache[pattern] = glob
        return glob
    }

    private func claimJob(_ id: String, owner: LeaseHolder, info: String?) -> Job {
        guard let record = jobs[id] else { fatalError("a ready job is always in memory") }
        return transition(record, to: .executing) { record in
            if let info { record.job.info = info }
            takeLease(&record, owner: owner)
        }.job
    }

    /// Puts back a job whose claim reply could not be delivered (the claimer went away while it waited):
    /// it is `ready` again at once, with the same attempt, instead of waiting out a lease nobody holds.
    /// `owner` is the ``LeaseHolder/key`` of the claimer.
    package func returnUndeliveredClaim(jobId: String, owner: String, attempt: Int) {
        // The same attempt still held by the same holder: a reply that waited in a backlog may come back long
        // after the lease moved on to another process with the same key (an operator, a copy without an
        // instanceId), whose attempt this must not take away.
        guard let record = jobs[jobId], record.job.status == .executing, record.job.attempt == attempt,
            let lease = record.job.lease, LeaseHolder(lease).key == owner
        else {
            return
        }
        transition(record, to: .ready)
        logger.debug("took back a claimed job: its claimer is gone", metadata: ["job.id": "\(jobId)"])
        serveWaitingClaims()
    }

    /// `{"job": …}`, the result of a claim, with the job's JSON as `jobBody`.
    package static func claimResult(jobBody: [UInt8]?) -> [UInt8] {
        var w = JSONObjectWriter(reservingCapacity: 704)
        if let jobBody { w.raw("job", jobBody) } else { w.null("job") }
        return w.finish()
    }

    /// The job's JSON for a reply. When `job` is the job's current state, the record keeps these bytes,
    /// so that the commit stores them instead of encoding the job again.
    package func replyBody(of job: Job) -> [UInt8] {
        let bytes = job.jsonBytes
        jobs[job.id]?.keep(body: bytes, of: job)
        return bytes
    }

    /// Hands newly ready jobs to waiting claimers: claimers in arrival order, each the oldest ready job it
    /// matches.
    ///
    /// A claim waits only when no ready job matched it, and each round serves until no waiting claim matches
    /// a ready job; so only the jobs made ready since the last round can satisfy a waiting claim. The
    /// round looks up the claims that match those jobs' names (``WaitingClaims``) instead of trying every
    /// waiting claim: the earliest claim that any of them satisfies is served next, as a pass over all
    /// claims in arrival order would.
    package func serveWaitingClaims() {
        guard readyAdded else { return }
        readyAdded = false
        var names = Array(readyNamesAdded)
        readyNamesAdded.removeAll(keepingCapacity: true)
        guard !waitingClaims.isEmpty else { return }
        let globKeys = names.map { waitingClaims.globKeys(matching: $0) }
        var globKeysByName: [String: [String]] = [:]
        for (name, keys) in zip(names, globKeys) { globKeysByName[name] = keys }
        while !waitingClaims.isEmpty {
            var next: Int64?
            names.removeAll { oldestReady(named: $0) == nil }
            for name in names {
                if let number = waitingClaims.earliest(matching: name, globKeys: globKeysByName[name] ?? []),
                    next.map({ number < $0 }) ?? true
                {
                    next = number
                }
            }
            guard let number = next, let claim = waitingClaims.remove(number) else { break }
            guard let id = oldestReady(matching: claim.patterns) else { continue }
            let job = claimJob(id, owner: claim.owner, info: claim.info)
            replyToClaim(claim.caller, rawID: claim.requestId, job: job, owner: claim.owner)
        }
    }

    /// Forgets the waiting claims sent over a connection that has gone: nobody would read their answers.
    package func dropWaitingClaims(route: [UInt8]) {
        let dropped = waitingClaims.removeAll(route: route)
        if dropped > 0 {
            logger.debug("dropped the waiting claims of a gone client", metadata: ["claims": "\(dropped)"])
        }
    }

    private func update(_ p: FieldReader, caller: Caller) throws -> Job {
        var record = try record(try p.requiredIdentifier("jobId"))
        let listener = try callerIdentity(p, caller)
        let previous = record.job.status
        var job = record.job
        if let status = try p.string("status") {
            guard status == "planning" else {
                throw FieldError(
                    field: "status", message: "jobs.update can only set status to planning, not \"\(status)\"")
            }
            guard previous == .created || previous == .planning else {
                throw ProtocolError(.invalidTransition, "cannot plan \(job.id): it is \(previous.rawValue)")
            }
            job.status = .planning
        }
        if previous == .executing {
            try checkOwner(record, listener: listener, verb: "update", attempt: try p.int("attempt"))
        } else if previous.isTerminal {
            throw ProtocolError(.invalidTransition, "cannot update \(job.id): it is \(previous.rawValue)")
        } else if let listener, record.formerOwners.contains(listener.key) {
            throw ProtocolError(
                .leaseExpired, "the lease of \(listener) on \(job.id) expired; it is \(previous.rawValue) now")
        } else if p.value("progress") != nil {
            throw ProtocolError(
                .invalidTransition, "cannot update the progress of \(job.id): it is \(previous.rawValue), not executing"
            )
        }
        try applyProgress(p, to: &job)
        if let metadata = p.value("metadata") { job.metadata = metadata }
        if job.status != previous {
            return transition(record, to: job.status) { $0.job = job }.job
        }
        record.job = job
        if previous == .executing { renewLease(&record) }
        save(&record, previous: previous)
        emit("job:updated", record.job)
        return record.job
    }

    private func execute(_ p: FieldReader) throws -> Job {
        let record = try record(try p.requiredIdentifier("jobId"))
        guard record.job.status == .created || record.job.status == .planning else {
            throw ProtocolError(
                .invalidTransition, "cannot execute \(record.job.id): it is \(record.job.status.rawValue)")
        }
        return enqueue(record).job
    }

    private func finish(_ p: FieldReader, caller: Caller, as status: JobStatus) throws -> Job {
        let record = try record(try p.requiredIdentifier("jobId"))
        let listener = try callerIdentity(p, caller)
        let outcome = try p.value("outcome").map { value throws in try Outcome(json: value, strict: true) }
        let info = try p.string("info")
        let retry = status == .failed ? try p.bool("retry") ?? false : false
        try checkOwner(
            record, listener: listener, verb: status == .complete ? "complete" : "fail", attempt: try p.int("attempt"))
        if retry && record.job.attempt < record.job.maxAttempts {
            // The attempt failed and asked for another: the outcome's message says why, as the job's info.
            return requeue(record, afterSeconds: backoffSeconds(record.job)) { record in
                retireLeaseHolder(&record)
                if let text = info ?? outcome?.message { record.job.info = text }
            }.job
        }
        return transition(record, to: status) { record in
            record.job.outcome = outcome
            if let info { record.job.info = info }
            if status == .complete { record.job.progress = 100 }
        }.job
    }

    private func release(_ p: FieldReader, caller: Caller) throws -> Job {
        let record = try record(try p.requiredIdentifier("jobId"))
        let listener = try callerIdentity(p, caller)
        let info = try p.string("info")
        let delay = Int(try p.int("delaySeconds", in: 0...Backoff.maxSeconds) ?? 0)
        try checkOwner(record, listener: listener, verb: "release", attempt: try p.int("attempt"))
        let released = requeue(record, afterSeconds: delay) { record in
            retireLeaseHolder(&record)
            if let info { record.job.info = info }
        }
        serveWaitingClaims()
        return jobs[released.job.id]?.job ?? released.job
    }

    private func cancel(_ p: FieldReader) throws -> Job {
        let record = try record(try p.requiredIdentifier("jobId"))
        let info = try p.string("info")
        guard !record.job.status.isTerminal else {
            throw ProtocolError(
                .invalidTransition, "cannot cancel \(record.job.id): it is \(record.job.status.rawValue)")
        }
        return cancelJob(record, info: info)
    }

    /// Cancels a job and, when it is a split parent, its unfinished parts and theirs, in part order.
    ///
    /// Walks the parts with a stack, not by recursion: parts of parts may nest deep. Every canceled job
    /// is marked first; what follows the ends (dependents, part counts) comes after, each part's before
    /// its parent's, so that a sequential part never starts just to be canceled.
    @discardableResult
    package func cancelJob(_ record: JobRecord, info: String?) -> Job {
        let rootId = record.job.id
        jobs[rootId] = jobs[rootId] ?? record
        holdingEnds {
            var stack: [(id: String, partsDone: Bool)] = [(rootId, false)]
            while let (id, partsDone) = stack.popLast() {
                guard let current = jobs[id] else { continue }
                if partsDone {
                    jobEnded(current.job)
                    continue
                }
                guard !current.job.status.isTerminal else { continue }
                transition(current, to: .canceled, followEnd: false) { record in
                    retireLeaseHolder(&record)
                    if id == rootId, let info { record.job.info = info }
                }
                stack.append((id, true))
                for part in (activeParts[id] ?? [:]).sorted(by: { $0.key > $1.key }) {
                    stack.append((part.value, false))
                }
            }
        }
        return jobs[rootId]?.job ?? record.job
    }

    private func retry(_ p: FieldReader) throws -> Job {
        var record = try record(try p.requiredIdentifier("jobId"))
        let previous = record.job.status
        guard previous == .failed || previous == .canceled else {
            throw ProtocolError(.invalidTransition, "cannot retry \(record.job.id): it is \(previous.rawValue)")
        }
        // Its end still waits for a later round (a long cascade): its dependents and its parent have not
        // been told yet, and a retry now would have them told of an end that no longer holds.
        guard !pendingEndIds.contains(record.job.id) else {
            throw ProtocolError(
                .overloaded, "cannot retry \(record.job.id) yet: the broker is still following its end; try again")
        }
        record.job.attempt += 1
        record.job.outcome = nil
        record.job.finishedAt = nil
        record.job.outcomeAcknowledgedAt = nil
        record.job.progress = 0
        record.job.estimatedCompletionAt = nil
        if let parentId = record.job.parentId, var p = parts[parentId] {
            if previous == .failed { p.failed -= 1 } else { p.canceled -= 1 }
            parts[parentId] = p
        }
        return enqueue(record).job
    }

    private func ackOutcome(_ p: FieldReader) throws -> Job {
        var record = try record(try p.requiredIdentifier("jobId"))
        let status = record.job.status
        guard status == .complete || status == .failed else {
            throw ProtocolError(
                .invalidTransition, "cannot acknowledge the outcome of \(record.job.id): it is \(status.rawValue)")
        }
        if record.job.outcomeAcknowledgedAt != nil { return record.job }
        record.job.outcomeAcknowledgedAt = now
        save(&record, previous: status)
        emit("job:outcome-acknowledged", record.job)
        return record.job
    }

    private func delete(_ p: FieldReader) throws -> JSONValue {
        let record = try record(try p.requiredIdentifier("jobId"))
        guard record.job.status != .executing else {
            throw ProtocolError(.invalidTransition, "cannot delete \(record.job.id): it is executing; cancel it first")
        }
        remove(record.job)
        emit("job:deleted", record.job)
        if !record.job.status.isTerminal {
            // A job deleted before it ended never ends: its dependents fail ("predecessor <id> deleted"),
            // and to the next sequential part and a parent counting its parts it ended as canceled.
            jobEnded(EndedJob(record.job, status: .canceled, how: "deleted"))
        }
        return ["success": true]
    }

    // MARK: Time

    /// Goes on with the ends earlier rounds left, expires leases, releases jobs whose `runAt` came, and
    /// answers claims whose wait ran out.
    package func tick() {
        readClock()
        holdingEnds {
            let found = wakeAtStart
            wakeAtStart = []
            for id in found {
                if let record = jobs[id], record.job.status == .scheduled { wake(record) }
            }
        }
        expireDueLeases()
        while let id = runAts.popDue(now) {
            guard let record = jobs[id], record.job.status == .scheduled else { continue }
            wake(record)
        }
        serveWaitingClaims()
        for claim in waitingClaims.removeDue(now) {
            replyToClaim(claim.caller, rawID: claim.requestId, job: nil, owner: claim.owner)
        }
    }

    /// Requeues (or, on the last attempt, fails) every executing job whose lease ran out by ``now``; a
    /// parent waiting for its parts keeps its lease.
    private func expireDueLeases() {
        while let id = leases.popDue(now) {
            guard var record = jobs[id], record.job.status == .executing, let lease = record.job.lease else {
                leaseTimers.remove(id)
                continue
            }
            if lease.expiresAt > now {
                // Renewed since the entry was pushed: it waits for the new expiry.
                leases.push(lease.expiresAt, id)
                continue
            }
            leaseTimers.remove(id)
            if let p = parts[id], p.ended < p.total {
                // A parent waiting for its parts keeps its lease, and its attempt no longer times out: its
                // parts are the work now.
                record.job.lease?.timesOutAt = nil
                renewLease(&record)
                record.body = nil
                jobs[id] = record
                if dirtySet.insert(id).inserted { dirty.append(id) }
                continue
            }
            retireLeaseHolder(&record)
            let timedOut = lease.timesOutAt.map { $0 <= now } ?? false
            let why = timedOut ? "timed out after \(record.job.timeoutSeconds ?? 0) s" : "lease expired"
            if record.job.attempt >= record.job.maxAttempts {
                fail(record, why)
            } else {
                // The next attempt's info says why this one ended, as a retried `jobs.fail` says its message.
                requeue(record, afterSeconds: backoffSeconds(record.job)) { $0.job.info = why }
            }
        }
    }

    /// The delay before the attempt after the job's current one: its ``Backoff``'s, or 0 without one.
    package func backoffSeconds(_ job: Job) -> Int {
        job.backoff?.delaySeconds(after: job.attempt) ?? 0
    }

    /// Ends an attempt that is to be tried again: the job is `ready` with `attempt + 1` at once, or after
    /// `seconds` `scheduled`, with `runAt` when the delay passes (``tick()`` makes it ready then).
    @discardableResult
    package func requeue(
        _ record: JobRecord, afterSeconds seconds: Int, _ change: (inout JobRecord) -> Void = { _ in }
    ) -> JobRecord {
        guard seconds > 0 else {
            return transition(record, to: .ready) { record in
                change(&record)
                record.job.attempt += 1
            }
        }
        let runAt = now + .seconds(seconds)
        runAts.push(runAt, record.job.id)
        return transition(record, to: .scheduled) { record in
            change(&record)
            record.job.attempt += 1
            record.job.runAt = runAt
        }
    }

    /// Answers every waiting claim with `{job: null}`: on shutdown, so that no request goes unanswered.
    package func answerWaitingClaims() {
        for claim in waitingClaims.removeAll() {
            replyToClaim(claim.caller, rawID: claim.requestId, job: nil, owner: claim.owner)
        }
    }

    /// What follows a job's end: dependents, the next sequential part, and the parent's part count.
    package func jobEnded(_ job: Job) { jobEnded(EndedJob(job)) }

    /// Queues an end and, unless an outer call is already at it, works through the queue.
    ///
    /// An end can end other jobs (a failed predecessor fails its dependents, which fail theirs); those are
    /// queued, never followed by recursion, so a chain of any length takes constant stack. A round
    /// follows at most ``BrokerCore/endsPerRound`` ends; ``tick()`` goes on with the rest in the next.
    package func jobEnded(_ ended: EndedJob) {
        pendingEnds.append(ended)
        pendingEndIds.insert(ended.id)
        guard !handlingEnds else { return }
        holdingEnds {}
    }

    /// Runs `body` with ends queued, then follows the queued ends, in order, as far as this round may.
    package func holdingEnds(_ body: () -> Void) {
        if handlingEnds {
            body()
            return
        }
        handlingEnds = true
        defer { handlingEnds = false }
        body()
        while pendingEndsHead < pendingEnds.count && endsFollowed < BrokerCore.endsPerRound
            && batchEventBytes < BrokerCore.eventBytesPerRound
        {
            let ended = pendingEnds[pendingEndsHead]
            pendingEndsHead += 1
            endsFollowed += 1
            pendingEndIds.remove(ended.id)
            follow(ended)
        }
        if pendingEndsHead == pendingEnds.count {
            pendingEnds.removeAll(keepingCapacity: pendingEnds.count < 4096)
            pendingEndsHead = 0
        } else if pendingEndsHead > 4096 && pendingEndsHead * 2 > pendingEnds.count {
            pendingEnds.removeFirst(pendingEndsHead)
            pendingEndsHead = 0
        }
    }

    private func follow(_ ended: EndedJob) {
        // A job retried since (its end waited for a later round) keeps its dependents for the new attempt.
        let retried = jobs[ended.id].map { !$0.job.status.isTerminal } ?? false
        if !retried, let waiting = dependents.removeValue(forKey: ended.id) {
            for id in waiting {
                guard let record = jobs[id], record.job.status == .scheduled else { continue }
                if ended.status == .complete {
                    wake(record)
                } else {
                    // Its end is queued behind the ones being followed (this runs within holdingEnds).
                    fail(record, "predecessor \(ended.id) \(ended.how)")
                }
            }
        }
        if let parentId = ended.parentId { partEnded(status: ended.status, part: ended.part, parentId: parentId) }
    }
}

/// What the jobs that follow an ended job need to know of its end.
package struct EndedJob {
    package var id: String
    package var status: JobStatus
    package var parentId: String?
    package var part: Int?
    /// How the job ended, as its dependents' outcome says: `failed`, `canceled` or `deleted`.
    package var how: String

    package init(_ job: Job, status: JobStatus? = nil, how: String? = nil) {
        id = job.id
        self.status = status ?? job.status
        parentId = job.parentId
        part = job.part
        self.how = how ?? (self.status == .canceled ? "canceled" : "failed")
    }
}

/// The broker's version, reported by `broker.info`.
public enum JobwireVersion {
    public static let current = "0.1.0"
}

/// Who holds a lease, as fencing compares it: the owner (the `listenerId`, or the CURVE key) and the
/// `instanceId` of the copy of the listener that took the job.
package struct LeaseHolder: Hashable, Sendable, CustomStringConvertible {
    package var owner: String
    package var instanceId: String?

    package init(owner: String, instanceId: String?) {
        self.owner = owner
        self.instanceId = instanceId
    }

    package init(_ lease: Lease) {
        self.init(owner: lease.owner, instanceId: lease.instanceId)
    }

    /// The holder as a job's former owners keep it: the owner alone without an instance, so that records
    /// written before instances existed still match.
    package var key: String {
        guard let instanceId else { return owner }
        // U+001F cannot occur in an instanceId; it separates the two.
        return "\(owner)\u{1F}\(instanceId)"
    }

    package var description: String {
        guard let instanceId else { return owner }
        return "\(owner) (instance \(instanceId))"
    }

    /// Whether `id` is 1-64 characters of `[A-Za-z0-9._:-]`.
    package static func isValidInstanceId(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard (1...64).contains(utf8.count) else { return false }
        return utf8.allSatisfy { c in
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"),
                UInt8(ascii: "-"):
                true
            default: false
            }
        }
    }
}
