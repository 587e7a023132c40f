package import JobwireProtocol

/// A claimer waiting for a job (`jobs.claim` with `wait`).
package struct WaitingClaim {
    package var caller: Caller
    /// The request's id, as JSON bytes to echo.
    package var requestId: [UInt8]
    package var owner: LeaseHolder
    package var patterns: [Glob]
    package var info: String?
    package var deadline: Timestamp
}

/// The claims waiting for a job, indexed so that a job becoming ready finds its claimer without looking
/// at every waiting claim.
///
/// Each claim gets an arrival number. A pattern without wildcards is a literal name: its claims queue
/// under the name's key (``JobNameKey``); a pattern with wildcards queues its claims under the pattern
/// itself, and a new ready job is matched against each distinct such pattern, of which there are at most
/// ``maxGlobPatterns``. Queues hold arrival numbers in order; an entry whose claim has gone (served
/// through another of its patterns, timed out, or its connection left) is skipped when met and the
/// queue is compacted once such entries outnumber the live ones.
package struct WaitingClaims {
    /// The most waiting claims one connection may have: above the claim slots a listener usually runs
    /// (one per unit of a handler's concurrency, all on one connection), far below what would cost memory.
    package static let maxPerConnection = 256
    /// The most distinct wildcard patterns all waiting claims together may use.
    package static let maxGlobPatterns = 1024

    package private(set) var claims: [Int64: WaitingClaim] = [:]
    private var nextNumber: Int64 = 0
    private var literal: [String: Queue] = [:]
    private var globs: [String: (glob: Glob, queue: Queue)] = [:]
    private var byRoute: [[UInt8]: Set<Int64>] = [:]
    private var deadlines = TimerHeap<Int64>()

    package struct Queue {
        package var numbers: [Int64] = []
        package var head = 0
        package var live = 0
    }

    package var count: Int { claims.count }
    package var isEmpty: Bool { claims.isEmpty }
    /// The earliest deadline of a waiting claim, or a little earlier (served claims leave theirs behind).
    package var nextDeadline: Timestamp? { deadlines.next }

    /// Whether a pattern names one job name exactly (no `*`, `?` or `\`, and in the form ``JobNameKey``
    /// gives), so that it can be looked up instead of matched.
    package static func isLiteral(_ pattern: String) -> Bool {
        !pattern.utf8.contains { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "\\") }
            && JobNameKey.of(pattern) == pattern
    }

    /// Why a new claim may not wait, or nil when it may.
    package func refusal(route: [UInt8], patterns: [Glob]) -> String? {
        if (byRoute[route]?.count ?? 0) >= WaitingClaims.maxPerConnection {
            return "this connection already has \(WaitingClaims.maxPerConnection) claims waiting; "
                + "wait for their answers before sending more"
        }
        let newGlobs = Set(patterns.map(\.pattern).filter { !WaitingClaims.isLiteral($0) && globs[$0] == nil })
        if globs.count + newGlobs.count > WaitingClaims.maxGlobPatterns {
            return "waiting claims use \(globs.count) distinct wildcard patterns, the most the broker keeps is "
                + "\(WaitingClaims.maxGlobPatterns); claim with job names or patterns already in use"
        }
        return nil
    }

    package mutating func add(_ claim: WaitingClaim) {
        nextNumber += 1
        let number = nextNumber
        claims[number] = claim
        byRoute[claim.caller.route, default: []].insert(number)
        deadlines.push(claim.deadline, number)
        for key in Set(claim.patterns.map(\.pattern)) {
            if WaitingClaims.isLiteral(key) {
                literal[key, default: Queue()].append(number)
            } else {
                if globs[key] == nil {
                    globs[key] = (claim.patterns.first { $0.pattern == key }!, Queue())
                }
                globs[key]!.queue.append(number)
            }
        }
    }

    /// Takes a claim out of every index.
    @discardableResult
    package mutating func remove(_ number: Int64) -> WaitingClaim? {
        guard let claim = claims.removeValue(forKey: number) else { return nil }
        let route = claim.caller.route
        byRoute[route]?.remove(number)
        if byRoute[route]?.isEmpty == true { byRoute[route] = nil }
        for key in Set(claim.patterns.map(\.pattern)) {
            if WaitingClaims.isLiteral(key) {
                if literal[key]?.left(claims) == true { literal[key] = nil }
            } else {
                if globs[key]?.queue.left(claims) == true { globs[key] = nil }
            }
        }
        return claim
    }

    /// The earliest waiting claim that a job named `name` satisfies.
    package mutating func earliest(matching name: String, globKeys: [String]) -> Int64? {
        var best = literal[JobNameKey.of(name)]?.first(claims)
        for key in globKeys {
            if let number = globs[key]?.queue.first(claims), best.map({ number < $0 }) ?? true { best = number }
        }
        return best
    }

    /// The wildcard patterns of waiting claims that match `name`.
    package func globKeys(matching name: String) -> [String] {
        globs.compactMap { $0.value.glob.matches(name) ? $0.key : nil }
    }

    /// Takes out every claim whose deadline has come.
    package mutating func removeDue(_ now: Timestamp) -> [WaitingClaim] {
        var due: [(Int64, WaitingClaim)] = []
        while let number = deadlines.popDue(now) {
            if let claim = claims[number], claim.deadline <= now { due.append((number, claim)) }
        }
        for (number, _) in due { remove(number) }
        return due.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// Takes out the claims sent over one connection.
    package mutating func removeAll(route: [UInt8]) -> Int {
        let numbers = byRoute[route] ?? []
        for number in numbers { remove(number) }
        return numbers.count
    }

    /// Takes out every claim, in arrival order.
    package mutating func removeAll() -> [WaitingClaim] {
        let all = claims.sorted { $0.key < $1.key }.map(\.value)
        self = WaitingClaims()
        return all
    }
}

extension WaitingClaims.Queue {
    package mutating func append(_ number: Int64) {
        numbers.append(number)
        live += 1
    }

    /// The first entry whose claim still waits.
    package mutating func first(_ claims: [Int64: WaitingClaim]) -> Int64? {
        while head < numbers.count {
            if claims[numbers[head]] != nil { return numbers[head] }
            head += 1
        }
        return nil
    }

    /// Counts one claim of the queue gone; compacts the queue when it is mostly gone ones.
    /// - Returns: whether no claim of the queue waits any more.
    package mutating func left(_ claims: [Int64: WaitingClaim]) -> Bool {
        live -= 1
        if live <= 0 { return true }
        if numbers.count - head > 2 * live + 32 {
            numbers = numbers[head...].filter { claims[$0] != nil }
            head = 0
        }
        return false
    }
}

/// What a literal claim pattern and a job name are compared by: the name with each run of `:` made one and
/// trailing `:` dropped. A pattern without wildcards matches exactly the names with its key (``Glob``: a
/// separator matches one or more, and trailing ones in the sample are allowed).
package enum JobNameKey {
    package static func of(_ name: String) -> String {
        let colon = UInt8(ascii: ":")
        let bytes = Array(name.utf8)
        var needsWork = bytes.last == colon
        if !needsWork {
            for index in bytes.indices.dropFirst() where bytes[index] == colon && bytes[index - 1] == colon {
                needsWork = true
                break
            }
        }
        guard needsWork else { return name }
        var key: [UInt8] = []
        key.reserveCapacity(bytes.count)
        for byte in bytes where !(byte == colon && key.last == colon) { key.append(byte) }
        while key.last == colon { key.removeLast() }
        return String(decoding: key, as: UTF8.self)
    }
}
