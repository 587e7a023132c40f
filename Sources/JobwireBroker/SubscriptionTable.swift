import JobwireProtocol

/// The prefixes subscribers want, as the XPUB reports them, in a byte trie with a count per prefix.
///
/// ``wants(_:)`` walks the topic frame's bytes once, so it costs the frame's length whatever the
/// number of prefixes. A prefix longer than ``maxPrefixLength`` counts as its first
/// ``maxPrefixLength`` bytes (every topic frame it matches starts with those); past
/// ``maxPrefixes`` distinct prefixes the table stops tracking and ``wants(_:)`` says yes to
/// everything until the untracked prefixes are gone again.
///
/// Nodes live in flat arrays (first child, next sibling, parent, byte, count): about 14 bytes a node,
/// a node per byte of the distinct prefixes, so at most `maxPrefixes × maxPrefixLength` nodes.
struct SubscriptionTable {
    let maxPrefixLength: Int
    let maxPrefixes: Int

    private var firstChild: [Int32] = [-1]
    private var nextSibling: [Int32] = [-1]
    private var parent: [Int32] = [-1]
    private var byte: [UInt8] = [0]
    /// How many reported prefixes end at a node.
    private var count: [Int32] = [0]
    private var free: [Int32] = []
    /// Nodes whose count is not zero.
    private(set) var prefixCount = 0
    /// Subscribes the table refused for lack of room and whose unsubscribe has not come yet.
    private(set) var untracked = 0

    init(maxPrefixLength: Int, maxPrefixes: Int) {
        self.maxPrefixLength = maxPrefixLength
        self.maxPrefixes = maxPrefixes
    }

    /// Whether the table tracks every subscription; when not, every event is wanted.
    var isComplete: Bool { untracked == 0 }

    /// Counts a subscribe.
    /// - Returns: `false` when the table is full and did not track the prefix.
    @discardableResult
    mutating func add(_ prefix: some Collection<UInt8>) -> Bool {
        if let node = find(prefix.prefix(maxPrefixLength)), count[node] > 0 {
            count[node] += 1
            return true
        }
        guard prefixCount < maxPrefixes else {
            untracked += 1
            return false
        }
        var node = 0
        for b in prefix.prefix(maxPrefixLength) { node = child(of: node, b, create: true)! }
        count[node] += 1
        prefixCount += 1
        return true
    }

    /// Counts an unsubscribe of a prefix reported before.
    mutating func remove(_ prefix: some Collection<UInt8>) {
        guard let node = find(prefix.prefix(maxPrefixLength)), count[node] > 0 else {
            if untracked > 0 { untracked -= 1 }
            return
        }
        count[node] -= 1
        guard count[node] == 0 else { return }
        prefixCount -= 1
        prune(node)
    }

    /// Whether any subscriber's prefix starts this topic frame.
    func wants(_ topicFrame: some Collection<UInt8>) -> Bool {
        if untracked > 0 || count[0] > 0 { return true }
        var node = 0
        for b in topicFrame {
            guard let next = child(of: node, b) else { return false }
            if count[next] > 0 { return true }
            node = next
        }
        return false
    }

    private func find(_ prefix: some Collection<UInt8>) -> Int? {
        var node = 0
        for b in prefix {
            guard let next = child(of: node, b) else { return nil }
            node = next
        }
        return node
    }

    private func child(of node: Int, _ b: UInt8) -> Int? {
        var c = firstChild[node]
        while c >= 0 {
            if byte[Int(c)] == b { return Int(c) }
            c = nextSibling[Int(c)]
        }
        return nil
    }

    private mutating func child(of node: Int, _ b: UInt8, create: Bool) -> Int? {
        if let existing = child(of: node, b) { return existing }
        let new: Int
        if let reused = free.popLast() {
            new = Int(reused)
            firstChild[new] = -1
            count[new] = 0
        } else {
            new = byte.count
            firstChild.append(-1)
            nextSibling.append(-1)
            parent.append(-1)
            byte.append(0)
            count.append(0)
        }
        byte[new] = b
        parent[new] = Int32(node)
        nextSibling[new] = firstChild[node]
        firstChild[node] = Int32(new)
        return new
    }

    /// Frees a node that ends no prefix and has no children, then its parents while they become so.
    private mutating func prune(_ start: Int) {
        var node = start
        while node != 0, count[node] == 0, firstChild[node] < 0 {
            let up = Int(parent[node])
            // Unlink from the parent's child list.
            if firstChild[up] == Int32(node) {
                firstChild[up] = nextSibling[node]
            } else {
                var c = Int(firstChild[up])
                while nextSibling[c] != Int32(node) { c = Int(nextSibling[c]) }
                nextSibling[c] = nextSibling[node]
            }
            free.append(Int32(node))
            node = up
        }
    }
}

/// The bounds of the events socket's subscriptions.
enum SubscriptionLimits {
    /// The longest prefix the broker tracks; see ``Subscription/maxPrefixLength``.
    static let maxPrefixLength = Subscription.maxPrefixLength
    /// `ZMQ_MAXMSGSIZE` of the XPUB: a subscribe message of the longest topic frame a job can have
    /// (two names of 256 bytes), with room for the ZMTP 3.1 `SUBSCRIBE` command form, CURVE's
    /// encryption and its handshake commands.
    static let maxMessageSize = 1024
}
