package import JobwireProtocol
package import Logging

/// Who sent a request: the ROUTER identity to answer to and, with CURVE, the authenticated key.
package struct Caller: Sendable {
    package var route: [UInt8]
    /// The client's public key (Z85) when CURVE authenticated it; it then owns the leases it takes.
    package var authenticatedKey: String?

    package init(route: [UInt8], authenticatedKey: String?) {
        self.route = route
        self.authenticatedKey = authenticatedKey
    }
}

/// A reply waiting for the group commit.
package struct OutgoingReply {
    package var route: [UInt8]
    package var body: [UInt8]
    /// The job a claim hands out with this reply, to take back if the claimer is gone (owner: the
    /// claimer's `LeaseHolder.key`).
    package var claimed: (jobId: String, owner: String, attempt: Int)? = nil
    /// Whether the reply goes out after an empty delimiter frame, as a reply to a REQ or to a DEALER that
    /// sent one does; a DEALER that sent none is answered in its own framing.
    package var delimited = true

    package init(
        route: [UInt8], body: [UInt8], claimed: (jobId: String, owner: String, attempt: Int)? = nil,
        delimited: Bool = true
    ) {
        self.route = route
        self.body = body
        self.claimed = claimed
        self.delimited = delimited
    }
}

/// The result of a command: a value, or JSON bytes written without a value tree.
package enum ReplyBody {
    case value(JSONValue)
    case raw([UInt8])
    case job(Job)
}

/// The broker's state machine and its in-memory indexes over the store.
///
/// Not thread-safe: the broker's own thread owns it. A batch of requests is applied in memory, then
/// ``commit()`` writes every change and event of the batch in one transaction; only then are the
/// replies sent and the events published, so nothing a client was told is lost on a crash.
package final class BrokerCore {
    package let configuration: CoreConfiguration
    package let store: any JobStore
    /// Where the core reads the time: once a round, into ``now``.
    package let clock: any BrokerClock
    package let logger: Logger
    package let epoch: String
    /// `"us_evt_<epoch>`: the start of every event id, as JSON bytes.
    package let eventIdPrefix: [UInt8]
    package let startedAt: Timestamp
    package private(set) var seq: Int64
    /// The oldest seq the store still holds (pruning lags the retention window by up to 1024 events).
    package private(set) var firstSeq: Int64

    /// The oldest seq `events.list` replays: exactly the last `eventRetention` events, so that whether
    /// an ask is `gone` does not depend on when the store last pruned.
    package var replayStart: Int64 { max(firstSeq, seq - Int64(configuration.eventRetention) + 1) }

    /// Every job that has not ended, and any job touched by the current batch.
    package var jobs: [String: JobRecord] = [:]
    package var statusCounts: [JobStatus: Int] = [:]
    package var actions: [String: Action] = [:]

    /// Ready jobs by name, in the order they became ready; stale entries are skipped lazily.
    package var readyQueues: [String: ReadyQueue] = [:]
    package var readyOrder: [String: Int64] = [:]
    package var readyCounter: Int64 = 0
    /// A job became ready since waiting claimers were last served.
    package var readyAdded = false
    /// The names of the jobs that became ready since waiting claimers were last served.
    package var readyNamesAdded: Set<String> = []
    /// The names that have a ready queue, by ``JobNameKey``: what a literal claim pattern looks up.
    package var readyNamesByKey: [String: [String]] = [:]
    private var lastIdMillis: Int64 = 0
    private var idCounter = 0
    /// The random tail of job ids: unique already by time and counter, so a fast generator seeded once
    /// will do (the system's costs a getrandom call per character).
    private var idRandom = SplitMix64()
    package static let idAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    package var waitingClaims = WaitingClaims()
    package var globCache: [String: Glob] = [:]
    /// Lease expiries: one entry per leased job, at or before its lease's expiry (a renewal moves the lease,
    /// not the entry; ``expireDueLeases()`` pushes an entry that came up early again at the new expiry).
    package var leases = TimerHeap<String>()
    /// The jobs with an entry in ``leases``.
    package var leaseTimers: Set<String> = []
    package var runAts = TimerHeap<String>()
    /// Scheduled jobs waiting on each predecessor.
    package var dependents: [String: [String]] = [:]
    /// Jobs that ended and whose followers (dependents, parts, parent) are still to be told, in order,
    /// from `pendingEndsHead` on.
    package var pendingEnds: [EndedJob] = []
    /// The ids of the jobs in `pendingEnds` not followed yet.
    package var pendingEndIds: Set<String> = []
    package var pendingEndsHead = 0
    /// Whether ``jobEnded(_:)`` is working through ``pendingEnds`` already.
    package var handlingEnds = false
    /// How many ends this round has followed; at ``endsPerRound`` the rest waits for the next round.
    package var endsFollowed = 0
    /// The most ends followed in one round: a chain of 100,000 jobs ends over many rounds, each a commit,
    /// with other clients' requests between them.
    package static let endsPerRound = 1000
    /// The event bytes after which a round follows no more ends: events carry the job's input, so 1,000
    /// ends of jobs with large inputs would otherwise make a round of a GB.
    package static let eventBytesPerRound = 16 << 20
    /// The bytes of the events made in this round.
    package var batchEventBytes = 0
    /// Scheduled jobs found at load whose wait is over or can never be (a predecessor ended without
    /// completing, or is gone): the first tick enqueues them. A cascade cut off by a crash goes on so.
    package var wakeAtStart: [String] = []
    /// Whether ended jobs or jobs found at load still wait to be followed: the loop then goes round at once.
    package var hasPendingEnds: Bool { pendingEndsHead < pendingEnds.count || !wakeAtStart.isEmpty }
    /// Part counts of parents whose parts have not all ended.
    package var parts: [String: PartCounts] = [:]
    /// The unfinished parts of each split parent, by part number.
    package var activeParts: [String: [Int: String]] = [:]

    // The batch in flight.
    /// Ended jobs read from the store during the batch; dropped from memory after the commit.
    package var loadedFromStore: [String] = []
    /// Idempotency keys of the jobs created since the last commit (the store knows the older ones).
    package var pendingKeys: [String: String] = [:]
    package var dirty: [String] = []
    package var dirtySet: Set<String> = []
    package var deleted: [String] = []
    package var deletedSet: Set<String> = []
    package var batch = StoreBatch()
    package var outbox: [OutgoingReply] = []
    package var publishQueue: [[[UInt8]]] = []
    /// How much of the outbox and the publish queue the store has made durable.
    /// The seq of a commit not yet recorded in `jobwire.seq`.
    package var unmarkedSeq: Int64?
    package var outboxCommitted = 0
    package var publishCommitted = 0
    /// The time of the current round, read from ``clock`` by ``readClock()`` and ``tick()``.
    package private(set) var now: Timestamp

    package struct PartCounts {
        package var total: Int
        package var completed = 0
        package var failed = 0
        package var canceled = 0
        package var sequential: Bool
        package var ended: Int { completed + failed + canceled }
    }

    /// The ready jobs of one name: a lane per priority, each in the order its jobs became ready.
    package struct ReadyQueue {
        package var lanes: [Int: Lane] = [:]
        /// The priorities that have a lane, highest first.
        package var priorities: [Int] = []

        package struct Lane {
            package var entries: [(order: Int64, id: String)] = []
            package var head = 0
            package var isEmpty: Bool { head >= entries.count }
            package mutating func compact() {
                if head > 1024 && head * 2 > entries.count {
                    entries.removeFirst(head)
                    head = 0
                }
            }
        }

        package mutating func append(_ entry: (order: Int64, id: String), priority: Int) {
            if lanes[priority] == nil {
                let index = priorities.firstIndex { $0 < priority } ?? priorities.endIndex
                priorities.insert(priority, at: index)
            }
            lanes[priority, default: Lane()].entries.append(entry)
        }
    }

    package init(configuration: CoreConfiguration, store: any JobStore, clock: any BrokerClock, logger: Logger) throws {
        self.configuration = configuration
        self.store = store
        self.clock = clock
        now = clock.now()
        self.logger = logger
        let identity = try store.identity(newEpoch: { BrokerCore.randomString(length: 8, alphabet: "0123456789abcdef") }
        )
        epoch = identity.epoch
        eventIdPrefix = Array("\"us_evt_\(identity.epoch)".utf8)
        seq = identity.seq
        firstSeq = identity.firstSeq
        startedAt = now
        if let lost = store.lostChanges {
            logger.error(
                "the store lost committed changes (\(lost)); going on at seq \(seq) of epoch \(epoch) (--accept-lost-changes)"
            )
            store.markCommitted(epoch: epoch, seq: seq)
        }
        do {
            try loadState()
        } catch let damage as StoreDamage {
            throw StoreError(message: "\(damage); restore the store from a backup")
        }
    }

    /// Builds every in-memory index from the store: at start, and after a failed commit.
    package func loadState() throws {
        jobs = [:]
        readyQueues = [:]
        readyOrder = [:]
        readyNamesByKey = [:]
        readyNamesAdded = []
        pendingEnds = []
        pendingEndIds = []
        pendingEndsHead = 0
        handlingEnds = false
        wakeAtStart = []
        leases.removeAll()
        leaseTimers.removeAll()
        runAts.removeAll()
        dependents = [:]
        parts = [:]
        activeParts = [:]
        statusCounts = try store.statusCounts()
        actions = [:]
        for action in try store.actions() { actions[action.id] = action }
        // Sorted in place and walked once: with 100,000 open jobs every copy of this array is tens of MB.
        var active = try store.activeJobs()
        active.sort { ($0.job.updatedAt, $0.job.createdAt) < ($1.job.updatedAt, $1.job.createdAt) }
        for record in active {
            jobs[record.job.id] = record
            if let parentId = record.job.parentId, let part = record.job.part {
                activeParts[parentId, default: [:]][part] = record.job.id
            }
            let job = record.job
            switch job.status {
            case .ready: pushReady(job.id, name: job.name, priority: job.priority)
            case .executing:
                if let lease = job.lease {
                    leases.push(lease.expiresAt, job.id)
                    leaseTimers.insert(job.id)
                }
                if job.partExecution != nil { try loadParts(of: job) }
            case .scheduled:
                if let runAt = job.runAt { runAts.push(runAt, job.id) }
                for predecessor in job.predecessorIds { dependents[predecessor, default: []].append(job.id) }
            default: break
            }
        }
        // A scheduled job none of whose predecessors is still active either may run or never can:
        // the store was left between two rounds of a cascade.
        var endedStatus: [String: JobStatus?] = [:]
        for record in active where record.job.status == .scheduled && !record.job.predecessorIds.isEmpty {
            var waits = false
            var blocked = false
            for predecessor in record.job.predecessorIds {
                let status: JobStatus?
                if let active = jobs[predecessor] {
                    status = active.job.status
                } else if let known = endedStatus[predecessor] {
                    status = known
                } else {
                    status = try store.job(id: predecessor)?.job.status
                    endedStatus[predecessor] = status
                }
                switch status {
                case .complete?: continue
                case .failed?, .canceled?, nil: blocked = true
                default: waits = true
                }
            }
            if blocked || !waits { wakeAtStart.append(record.job.id) }
        }
    }

    private func loadParts(of parent: Job) throws {
        let counts = try store.partStatuses(parentId: parent.id)
        let total = counts.values.reduce(0, +)
        guard total > 0 else { return }
        var p = PartCounts(total: total, sequential: parent.partExecution == .sequential)
        p.completed = counts[.complete] ?? 0
        p.failed = counts[.failed] ?? 0
        p.canceled = counts[.canceled] ?? 0
        if p.ended < p.total { parts[parent.id] = p }
    }

    // MARK: Lookups and changes

    /// The job with `id`, from memory or the store.
    package func record(_ id: String) throws -> JobRecord {
        if let record = jobs[id] { return record }
        if deletedSet.contains(id) { throw ProtocolError(.notFound, "job \(id) not found") }
        do {
            if let record = try store.job(id: id) {
                // Kept until the batch commits (a verb may change it), then let go if it has ended.
                jobs[id] = record
                loadedFromStore.append(id)
                return record
            }
        } catch {
            throw ProtocolError(.internalError, "store read failed: \(error)")
        }
        throw ProtocolError(.notFound, "job \(id) not found")
    }

    /// Records a changed job for the batch, keeping the status counts and ready queues right.
    package func save(_ record: inout JobRecord, previous: JobStatus?) {
        let id = record.job.id
        record.job.updatedAt = now
        record.body = nil
        if previous != record.job.status {
            if let previous { statusCounts[previous, default: 1] -= 1 }
            statusCounts[record.job.status, default: 0] += 1
            if record.job.status == .ready { pushReady(id, name: record.job.name, priority: record.job.priority) }
            if previous == .ready { readyOrder[id] = nil }
        }
        jobs[id] = record
        if dirtySet.insert(id).inserted { dirty.append(id) }
    }

    package func remove(_ job: Job) {
        statusCounts[job.status, default: 1] -= 1
        jobs[job.id] = nil
        readyOrder[job.id] = nil
        // Its entry in `dirty` stays; the commit skips ids no longer in `jobs`.
        dirtySet.remove(job.id)
        deleted.append(job.id)
        deletedSet.insert(job.id)
    }

    package func pushReady(_ id: String, name: String, priority: Int) {
        readyAdded = true
        readyNamesAdded.insert(name)
        readyCounter += 1
        readyOrder[id] = readyCounter
        if readyQueues[name] == nil { readyNamesByKey[JobNameKey.of(name), default: []].append(name) }
        readyQueues[name, default: ReadyQueue()].append((readyCounter, id), priority: priority)
    }

    /// The ready job to hand out next whose name matches one of `patterns`: the highest priority, then
    /// the oldest; nil when none is ready.
    ///
    /// A literal pattern looks its names up; only a wildcard pattern is matched against every name that
    /// has ready jobs.
    package func oldestReady(matching patterns: [Glob]) -> String? {
        var names: [String] = []
        var wildcards: [Glob] = []
        for pattern in patterns {
            if WaitingClaims.isLiteral(pattern.pattern) {
                names += readyNamesByKey[pattern.pattern] ?? []
            } else {
                wildcards.append(pattern)
            }
        }
        if !wildcards.isEmpty {
            names += readyQueues.keys.filter { name in wildcards.contains { $0.matches(name) } }
        }
        var best: (priority: Int, order: Int64, id: String)?
        for name in names {
            guard let entry = oldestReady(named: name) else { continue }
            if let current = best, (-current.priority, current.order) <= (-entry.priority, entry.order) { continue }
            best = entry
        }
        return best?.id
    }

    /// The ready job named `name` to hand out next: the oldest of the highest priority. Drops the entries
    /// of jobs that are no longer ready, and the lanes they empty, on the way.
    ///
    /// Reads the lanes in place and writes only what moved: a claim calls it for every name it matches.
    package func oldestReady(named name: String) -> (priority: Int, order: Int64, id: String)? {
        while let priority = readyQueues[name]?.priorities.first {
            let (head, count, entry) = readyQueues[name]!.lanes[priority].map { lane in
                var head = lane.head
                while head < lane.entries.count && readyOrder[lane.entries[head].id] != lane.entries[head].order {
                    head += 1
                }
                return (head, lane.entries.count, head < lane.entries.count ? lane.entries[head] : nil)
            }!
            guard let entry else {
                readyQueues[name]!.lanes[priority] = nil
                readyQueues[name]!.priorities.removeFirst()
                continue
            }
            if head != readyQueues[name]!.lanes[priority]!.head {
                readyQueues[name]!.lanes[priority]!.head = head
                if head > 1024 && head * 2 > count { readyQueues[name]!.lanes[priority]!.compact() }
            }
            return (priority, entry.order, entry.id)
        }
        if readyQueues.removeValue(forKey: name) != nil {
            let key = JobNameKey.of(name)
            readyNamesByKey[key]?.removeAll { $0 == name }
            if readyNamesByKey[key]?.isEmpty == true { readyNamesByKey[key] = nil }
        }
        return nil
    }

    // MARK: Events

    /// Appends a job event to the log and the publish queue.
    ///
    /// The envelope is written straight to bytes (``Event/jobEnvelope(id:seq:epoch:topic:job:parts:createdAt:)``):
    /// every state change publishes one, so it is on the hot path.
    package func emit(_ topic: String, _ job: Job, parts: PartCounts? = nil) {
        seq += 1
        let seq = seq
        let body = Event.jobEnvelope(
            id: { bytes in
                // "us_evt_<epoch><seq in base 36>", written in place: one event per change.
                bytes.append(contentsOf: eventIdPrefix)
                BrokerCore.appendBase36(seq, to: &bytes)
                bytes.append(UInt8(ascii: "\""))
            }, seq: seq, epoch: epoch, topic: topic, job: job,
            parts: parts.map {
                Event.PartCounts(total: $0.total, completed: $0.completed, failed: $0.failed, canceled: $0.canceled)
            }, createdAt: now)
        batchEventBytes += body.count
        batch.events.append(StoredEvent(seq: seq, topic: topic, body: body))
        publishQueue.append([TopicFrame.encode(topic: topic, subject: job.name), body])
    }

    /// Appends `value` (not negative) in base 36, lowercase: what `String(value, radix: 36)` spells.
    package static func appendBase36(_ value: Int64, to bytes: inout [UInt8]) {
        var width = 1
        var scale: UInt64 = 1
        let number = UInt64(value)
        while number / scale >= 36 {
            scale *= 36
            width += 1
        }
        var rest = number
        for _ in 0..<width {
            let digit = UInt8(rest / scale)
            bytes.append(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
            rest %= scale
            scale /= 36
        }
    }

    /// The heartbeat frames: not part of the log, no seq of their own.
    package func heartbeat() -> [[UInt8]] {
        let event = Event(
            id: "us_evt_hb\(BrokerCore.randomString(length: 10))", seq: nil, epoch: nil, topic: "broker:heartbeat",
            domain: "broker", context: [:],
            payload: ["seq": .int(seq), "epoch": .string(epoch), "startedAt": JSONValue(startedAt)],
            createdAt: clock.now())
        return event.frames
    }

    // MARK: The batch

    /// Puts a reply in the outbox, where it waits for the round's commit: every reply of the core goes
    /// through here.
    /// - Parameter claimed: the job a claim hands out with this reply (see ``OutgoingReply/claimed``).
    private func answer(
        _ caller: Caller, _ body: [UInt8], claimed: (jobId: String, owner: String, attempt: Int)? = nil
    ) {
        outbox.append(OutgoingReply(route: caller.route, body: body, claimed: claimed))
    }

    package func reply(_ caller: Caller, id: JSONValue, _ result: Result<JSONValue, ProtocolError>) {
        answer(caller, RPCResponse(id: id, result: result).bytes)
    }

    /// Replies to the id `rawID`, JSON bytes as the request had them.
    package func reply(_ caller: Caller, rawID: [UInt8], _ result: Result<JSONValue, ProtocolError>) {
        answer(caller, RPCResponse.bytes(rawID: rawID, result: result))
    }

    /// Replies with a result already written as JSON bytes.
    package func reply(_ caller: Caller, rawID: [UInt8], rawResult: [UInt8]) {
        answer(caller, RPCResponse.success(rawID: rawID, rawResult: rawResult))
    }

    /// Answers a claim with the job it took for `owner`, or with `{"job": null}`.
    package func replyToClaim(_ caller: Caller, rawID: [UInt8], job: Job?, owner: LeaseHolder) {
        let result = BrokerCore.claimResult(jobBody: job.map(replyBody(of:)))
        answer(
            caller, RPCResponse.success(rawID: rawID, rawResult: result),
            claimed: job.map { ($0.id, owner.key, $0.attempt) })
    }

    package var hasPendingWrites: Bool { !dirty.isEmpty || !deleted.isEmpty || !batch.isEmpty }

    /// Writes the batch's changes and events in one transaction.
    ///
    /// On failure the in-memory state is rebuilt from the store, every reply of the batch becomes an
    /// internal error and no event is published: a failed commit changes nothing.
    /// - Returns: whether the batch was written.
    @discardableResult
    package func commit() -> Bool {
        guard hasPendingWrites else {
            outboxCommitted = outbox.count
            publishCommitted = publishQueue.count
            return true
        }
        batch.jobs.reserveCapacity(dirty.count)
        for id in dirty {
            if let index = jobs.index(forKey: id) { batch.jobs.append(JobRow(jobs.values[index])) }
        }
        batch.deletedJobs = deleted
        batch.seq = seq
        // Rows are deleted in steps of 1024, not on every commit, to keep the hot path to inserts; the
        // window that `events.list` answers from is `replayStart`, exact whatever was deleted so far.
        if seq - firstSeq + 1 > Int64(configuration.eventRetention) + 1024 {
            let through = seq - Int64(configuration.eventRetention)
            batch.pruneThrough = through
        }
        do {
            try store.commit(batch)
            if !batch.events.isEmpty { unmarkedSeq = seq }
            if let through = batch.pruneThrough { firstSeq = through + 1 }
            for id in dirty {
                guard let index = jobs.index(forKey: id) else { continue }
                if jobs.values[index].job.status.isTerminal && parts[id] == nil {
                    jobs.remove(at: index)
                } else {
                    jobs.values[index].storedStatus = jobs.values[index].job.status
                }
            }
            for id in loadedFromStore where jobs[id]?.job.status.isTerminal == true && parts[id] == nil {
                jobs[id] = nil
            }
        } catch {
            logger.error("commit failed; the batch is undone", metadata: ["error": "\(error)"])
            let failedSeqStart = seq - Int64(batch.events.count)
            seq = failedSeqStart
            publishQueue.removeSubrange(publishCommitted...)
            let failure = ProtocolError(.internalError, "the store could not write the change: \(error)")
            for index in outboxCommitted..<outbox.count {
                let id = RPCResponse.rawID(of: outbox[index].body) ?? Array("null".utf8)
                outbox[index].body = RPCResponse.bytes(rawID: id, result: .failure(failure))
            }
            outboxCommitted = outbox.count
            do {
                try loadState()
            } catch {
                logger.critical("cannot reload the store after a failed commit", metadata: ["error": "\(error)"])
            }
            clearBatch()
            return false
        }
        clearBatch()
        outboxCommitted = outbox.count
        publishCommitted = publishQueue.count
        return true
    }

    /// Records the last commit's seq beside the store (``JobStore/markCommitted(epoch:seq:)``). The server
    /// calls it once the batch's events and replies are out: the mark may lag a commit, never lead it,
    /// and a client should not wait for its system call.
    package func writeCommitMark() {
        guard let seq = unmarkedSeq else { return }
        unmarkedSeq = nil
        store.markCommitted(epoch: epoch, seq: seq)
    }

    /// Hands the committed replies and events to the server and empties both queues.
    package func takeOutput() -> (replies: [OutgoingReply], events: [[[UInt8]]]) {
        let output = (outbox, publishQueue)
        outbox.removeAll(keepingCapacity: true)
        publishQueue.removeAll(keepingCapacity: true)
        outboxCommitted = 0
        publishCommitted = 0
        return output
    }

    private func clearBatch() {
        endsFollowed = 0
        batchEventBytes = 0
        loadedFromStore.removeAll(keepingCapacity: true)
        pendingKeys.removeAll(keepingCapacity: true)
        dirty.removeAll(keepingCapacity: true)
        dirtySet.removeAll(keepingCapacity: true)
        deleted.removeAll(keepingCapacity: true)
        deletedSet.removeAll(keepingCapacity: true)
        batch = StoreBatch()
    }

    /// Writes what is pending so that a read of the store sees it.
    package func flush() throws {
        guard hasPendingWrites else { return }
        // Replies of this batch stay in the outbox; only the store catches up.
        if !commit() { throw ProtocolError(.internalError, "the store could not write pending changes") }
    }

    /// Starts a round: reads the clock once, so that every change of the round carries the same time.
    package func readClock() {
        now = max(now, clock.now())
    }

    /// The next time the core has something to do on its own (lease expiry, runAt, claim timeout).
    package var nextDeadline: Timestamp? {
        if hasPendingEnds { return now }
        var next = leases.next
        if let r = runAts.next { next = next.map { min($0, r) } ?? r }
        if let claim = waitingClaims.nextDeadline { next = next.map { min($0, claim) } ?? claim }
        return next
    }

    // MARK: Helpers

    package static func randomString(length: Int, alphabet: String = "0123456789abcdefghijklmnopqrstuvwxyz") -> String {
        var generator = SystemRandomNumberGenerator()
        return randomString(length: length, alphabet: alphabet, using: &generator)
    }

    package static func randomString(length: Int, alphabet: String, using generator: inout some RandomNumberGenerator)
        -> String
    {
        let characters = Array(alphabet.utf8)
        let bytes = (0..<length).map { _ in characters[Int(generator.next() % UInt64(characters.count))] }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A new job id that sorts by creation: milliseconds and a counter in base 36, then random letters,
    /// so that `jobs.list`'s order by `createdAt` then `id` is the order of creation.
    package func newJobId() -> String {
        let ms = max(now.milliseconds, lastIdMillis)
        if ms == lastIdMillis { idCounter += 1 } else { idCounter = 0 }
        lastIdMillis = ms
        let time = String(ms, radix: 36)
        let counter = String(idCounter, radix: 36)
        return "us_jb_" + time + String(repeating: "0", count: max(0, 3 - counter.count)) + counter
            + BrokerCore.randomString(length: 6, alphabet: BrokerCore.idAlphabet, using: &idRandom)
    }
}

extension ProtocolError {
    /// Any error of a command as the JSON-RPC error to answer with.
    package static func from(_ error: any Error) -> ProtocolError {
        switch error {
        case let error as ProtocolError: error
        case let error as FieldError: ProtocolError(error)
        default: ProtocolError(.internalError, "internal error: \(error)")
        }
    }
}

/// SplitMix64, seeded from the system's generator: fast, not for secrets.
package struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    package init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
