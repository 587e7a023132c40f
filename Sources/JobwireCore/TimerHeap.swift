package import JobwireProtocol

/// A min-heap of (deadline, id): lease expiries, `runAt` times and the deadlines of waiting claims.
///
/// Entries are never updated in place: when one comes up, its owner checks the job's own deadline, which
/// may have moved on (a renewed lease is pushed again at its new expiry; a job that left `scheduled` is
/// skipped).
package struct TimerHeap<ID> {
    private var items: [(deadline: Timestamp, id: ID)] = []

    package var isEmpty: Bool { items.isEmpty }
    package var count: Int { items.count }
    package var next: Timestamp? { items.first?.deadline }

    package mutating func push(_ deadline: Timestamp, _ id: ID) {
        items.append((deadline, id))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].deadline < items[parent].deadline else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    package mutating func popDue(_ now: Timestamp) -> ID? {
        guard let first = items.first, first.deadline <= now else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < items.count, items[left].deadline < items[smallest].deadline { smallest = left }
                if right < items.count, items[right].deadline < items[smallest].deadline { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return first.id
    }

    package mutating func removeAll() { items.removeAll() }
}
