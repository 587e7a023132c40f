/// What a client knows of the broker's event log (PROTOCOL.md §5): which events it already has, and when it must
/// ask `events.list` for the ones it may have missed.
///
/// It takes the `(epoch, seq)` of each event a client receives, live or replayed, and of each heartbeat, and says
/// what to do with it. It does no I/O and reads no clock: the client sends the `events.list` it asks for and
/// reports each page back.
///
/// A subscriber that filters topics sees gaps in the seqs as a matter of course (the events in between went to
/// other topics), so a gap is a reason to replay, never a proof of a loss. Events up to ``confirmed`` were all
/// delivered or examined by a replay; events above it that were delivered live are remembered until a replay or
/// the events in between move ``confirmed`` past them, so that each event is delivered once.
public struct EventCursor: Sendable, Hashable {
    /// What to do with a received event.
    public enum Decision: Sendable, Hashable {
        /// Deliver it: it is new and nothing before it is unaccounted for.
        case deliver
        /// Drop it: it was delivered already.
        case duplicate
        /// Deliver it, then ask `events.list` for events after `since`: some before this one were not seen (a
        /// filtered subscriber also sees this when the events in between went to other topics).
        case gap(since: Int64)
        /// The broker's store changed: the cursor starts over at seq 0 of this epoch. Replay from 0; the
        /// event is part of that replay, so do not deliver it now.
        case newEpoch(String)
    }

    /// What a heartbeat says about the cursor.
    public enum Check: Sendable, Hashable {
        /// Every event up to the broker's latest seq was delivered or examined (or the cursor has no start yet).
        case current
        /// The log moved past the cursor: ask `events.list` for events after `since`.
        case behind(since: Int64)
        /// The broker's store changed: the cursor starts over at seq 0 of this epoch; replay from 0.
        case newEpoch(String)
    }

    /// The epoch of the store the seqs belong to; nil until the first event or ``start(epoch:at:)``.
    public private(set) var epoch: String?
    /// Every event up to this seq was delivered or examined by a replay; nil while the cursor has no start.
    public private(set) var confirmed: Int64?
    /// Seqs above `confirmed` already delivered.
    private var ahead: Set<Int64> = []

    /// The most seqs ``ahead`` keeps while no replay succeeds (a filtered subscriber's every event lands there
    /// until one does). Past it the oldest half is forgotten: a later replay may deliver those events again,
    /// which an at-least-once handler takes, rather than the cursor growing for as long as the broker fails.
    public static let maxAhead = 65_536

    /// A cursor at a known position, or with no start yet (`confirmed` nil): then every new event is delivered
    /// until ``start(epoch:at:)`` gives it one.
    public init(epoch: String? = nil, confirmed: Int64? = nil) {
        self.epoch = epoch
        self.confirmed = confirmed
    }

    /// Gives a cursor with no start its position, such as `broker.info`'s seq: events at or below it count as
    /// seen. A different epoch than the one the cursor knows starts over.
    public mutating func start(epoch: String, at seq: Int64) {
        if self.epoch != epoch { ahead = [] }
        self.epoch = epoch
        confirmed = seq
        settle()
    }

    /// Starts over at seq 0 of `epoch`: every event of that store is new.
    public mutating func reset(epoch: String) {
        self.epoch = epoch
        confirmed = 0
        ahead = []
    }

    /// Forgets the position (when the broker no longer keeps the events after it), keeping what was delivered
    /// since, until ``start(epoch:at:)`` gives it a new one.
    public mutating func forget() {
        confirmed = nil
    }

    /// A live event from the events socket.
    /// - Parameters:
    ///   - seq: the event's seq.
    ///   - epoch: the event's epoch, nil if it carries none.
    /// - Returns: what to do with the event.
    public mutating func live(seq: Int64, epoch: String?) -> Decision {
        if let epoch {
            if let known = self.epoch, known != epoch {
                reset(epoch: epoch)
                return .newEpoch(epoch)
            }
            self.epoch = epoch
        }
        guard let confirmed else {
            return remember(seq) ? .deliver : .duplicate
        }
        if seq <= confirmed || ahead.contains(seq) { return .duplicate }
        if seq == confirmed + 1 {
            self.confirmed = seq
            settle(pruning: false)
            return .deliver
        }
        remember(seq)
        return .gap(since: confirmed)
    }

    /// An event of an `events.list` page: delivered unless it was already. The page's end is reported with
    /// ``replayed(through:)``.
    public mutating func replayed(seq: Int64) -> Decision {
        if let confirmed, seq <= confirmed { return .duplicate }
        return remember(seq) ? .deliver : .duplicate
    }

    /// Whether an `events.list` page of `epoch` belongs to the cursor's store; if not, the cursor starts over at
    /// seq 0 of it and the replay must start again from 0.
    /// - Returns: false when the cursor started over.
    public mutating func accepts(pageOf epoch: String) -> Bool {
        guard let known = self.epoch, known != epoch else {
            self.epoch = epoch
            return true
        }
        reset(epoch: epoch)
        return false
    }

    /// A replay examined every event up to `seq` (the page's `nextSince`): they are all accounted for.
    public mutating func replayed(through seq: Int64) {
        confirmed = max(confirmed ?? seq, seq)
        settle()
    }

    /// A heartbeat with the broker's latest seq and its epoch.
    public mutating func heartbeat(latest seq: Int64, epoch: String?) -> Check {
        if let epoch, let known = self.epoch, known != epoch {
            reset(epoch: epoch)
            return .newEpoch(epoch)
        }
        guard let confirmed, seq > confirmed else { return .current }
        return .behind(since: confirmed)
    }

    /// Adds `seq` to the delivered ones ahead; returns false if it was there. Keeps at most ``maxAhead``.
    @discardableResult
    private mutating func remember(_ seq: Int64) -> Bool {
        guard ahead.insert(seq).inserted else { return false }
        if ahead.count > Self.maxAhead {
            ahead = Set(ahead.sorted().suffix(Self.maxAhead / 2))
        }
        return true
    }

    /// The number of seqs remembered above ``confirmed``.
    public var aheadCount: Int { ahead.count }

    /// Moves `confirmed` over the events delivered right after it, and forgets those at or below it (only a
    /// jump of `confirmed` leaves any: `pruning` says whether there was one).
    private mutating func settle(pruning: Bool = true) {
        guard var confirmed else { return }
        while ahead.remove(confirmed + 1) != nil { confirmed += 1 }
        self.confirmed = confirmed
        if pruning { ahead = ahead.filter { $0 > confirmed } }
    }
}
