/// A bound on how many events one handler runs at once: an event-driven `jobHandler`'s `concurrency`.
struct HandlerLimit: Sendable, Hashable {
    /// Tells the handlers apart.
    var id: Int
    var slots: Int
}

/// Which events may start their handlers now: at most `maxRunning` events at once, and no more at once for a
/// handler than its ``HandlerLimit`` allows. The others wait, in arrival order, until an event ends.
///
/// ``Listener/run()``'s dispatcher keeps one, so that no handler task waits for a slot another one holds.
struct EventQueue<Item> {
    let maxRunning: Int
    private(set) var running = 0
    private var free: [Int: Int] = [:]
    private var waiting: [(item: Item, limits: [HandlerLimit])] = []

    init(maxRunning: Int) {
        self.maxRunning = max(1, maxRunning)
    }

    var waitingCount: Int { waiting.count }

    /// An event arrived.
    /// - Returns: the items to start now: this one, or none when it must wait.
    mutating func add(_ item: Item, limits: [HandlerLimit]) -> [Item] {
        if canStart(limits) {
            take(limits)
            return [item]
        }
        waiting.append((item, limits))
        return []
    }

    /// An event's handlers ended.
    /// - Returns: the waiting items to start now, in arrival order.
    mutating func finished(limits: [HandlerLimit]) -> [Item] {
        running -= 1
        for limit in limits { free[limit.id, default: limit.slots] += 1 }
        var started: [Item] = []
        var index = 0
        while index < waiting.count && running < maxRunning {
            if canStart(waiting[index].limits) {
                let next = waiting.remove(at: index)
                take(next.limits)
                started.append(next.item)
            } else {
                index += 1
            }
        }
        return started
    }

    /// Drops the waiting items: on shutdown, no new event starts.
    mutating func dropWaiting() {
        waiting.removeAll()
    }

    private func canStart(_ limits: [HandlerLimit]) -> Bool {
        running < maxRunning && limits.allSatisfy { (free[$0.id] ?? $0.slots) > 0 }
    }

    private mutating func take(_ limits: [HandlerLimit]) {
        running += 1
        for limit in limits { free[limit.id, default: limit.slots] -= 1 }
    }
}
