package import JobwireProtocol

extension BrokerCore {
    /// The most parts one `jobs.split` makes: each is a job created, stored and published in one request.
    package static let maxParts = 1000

    /// `jobs.split`: parts of an executing job, ready at once or one after the other.
    package func split(_ p: FieldReader, caller: Caller) throws -> JSONValue {
        var parent = try record(try p.requiredIdentifier("jobId"))
        let listener = try callerIdentity(p, caller)
        let partData: [JSONValue]
        let most = BrokerCore.maxParts
        switch p.value("parts") {
        case .int(let n)?:
            guard (1...Int64(most)).contains(n) else {
                throw FieldError(field: "parts", message: "parts must be from 1 to \(most), not \(n)")
            }
            partData = (0..<Int(n)).map { ["part": .int(Int64($0)), "total": .int(n)] }
        case .array(let list)?:
            guard (1...most).contains(list.count) else {
                throw FieldError(
                    field: "parts", message: "parts must have from 1 to \(most) entries, not \(list.count)")
            }
            partData = list
        case nil: throw FieldError(field: "parts", message: "parts is required: a count or an array of partData")
        case let other?:
            throw FieldError(
                field: "parts", message: "parts must be a count or an array of partData, not \(other.typeName)")
        }
        let parallel = try p.bool("runInParallel") ?? true
        try checkOwner(parent, listener: listener, verb: "split", attempt: try p.int("attempt"))
        if parts[parent.job.id] != nil {
            throw ProtocolError(.invalidTransition, "cannot split \(parent.job.id): its parts are still running")
        }
        parent.job.partExecution = parallel ? .parallel : .sequential
        renewLease(&parent)
        save(&parent, previous: .executing)
        emit("job:updated", parent.job)
        parts[parent.job.id] = PartCounts(total: partData.count, sequential: !parallel)
        var created: [Job] = []
        created.reserveCapacity(partData.count)
        for (index, data) in partData.enumerated() {
            var job = Job(
                id: newJobId(), type: parent.job.type, operation: parent.job.operation,
                source: parent.job.source, trigger: .immediate, mode: parent.job.mode, createdAt: now,
                maxAttempts: parent.job.maxAttempts, leaseSeconds: parent.job.leaseSeconds)
            job.parentId = parent.job.id
            job.part = index
            job.partData = data
            job.partExecution = parent.job.partExecution
            job.input = parent.job.input
            job.config = parent.job.config
            job.destination = parent.job.destination
            job.context = parent.job.context
            var record = JobRecord(job: job)
            save(&record, previous: nil)
            activeParts[parent.job.id, default: [:]][index] = job.id
            emit("job:created", record.job)
            created.append(enqueue(record).job)
        }
        return ["parts": .array(created.map { .object($0.json) })]
    }

    /// Whether a sequential part must wait for the one before it.
    package func previousPartRunning(parentId: String, part: Int) -> Bool {
        guard part > 0, let id = activeParts[parentId]?[part - 1], let record = jobs[id] else { return false }
        return !record.job.status.isTerminal
    }

    /// Counts a part's end; starts the next sequential part; fires `job:parts-completed` after the last.
    package func partEnded(status: JobStatus, part: Int?, parentId: String) {
        guard var counts = parts[parentId] else { return }
        switch status {
        case .complete: counts.completed += 1
        case .failed: counts.failed += 1
        case .canceled: counts.canceled += 1
        default: return
        }
        parts[parentId] = counts
        if let part {
            activeParts[parentId]?[part] = nil
            if counts.sequential, let next = activeParts[parentId]?[part + 1], let record = jobs[next],
                record.job.status == .scheduled
            {
                enqueue(record)
            }
        }
        guard counts.ended >= counts.total, var parent = try? record(parentId) else { return }
        parts[parentId] = nil
        activeParts[parentId] = nil
        if parent.job.status == .executing {
            // The parent's own lease starts again now that its parts have ended.
            renewLease(&parent)
            save(&parent, previous: .executing)
        }
        emit("job:parts-completed", parent.job, parts: counts)
    }
}
