import Foundation
import JobwireProtocol
import Testing

@testable import JobwireBroker

/// Waiting claims, indexed by job name and pattern, capped per connection, and dropped with their
/// connection; and the caps on the work one request may ask for.
@Suite struct WaitingClaimTests {
    static func route(_ n: Int) -> Caller { Caller(route: [UInt8(n & 0xFF), UInt8(n >> 8)], authenticatedKey: nil) }

    @discardableResult
    func claim(_ harness: CoreHarness, _ patterns: [String], from caller: Caller, wait: Int64 = 60) -> JSONValue {
        harness.send(
            "jobs.claim", ["listenerId": "w", "jobs": .array(patterns.map { .string($0) }), "wait": .int(wait)],
            from: caller)
    }

    func create(_ harness: CoreHarness, _ type: String, _ operation: String) throws -> String {
        try #require(
            try harness.call("jobs.create", ["type": .string(type), "operation": .string(operation), "source": "s"])[
                "id"]?.stringValue)
    }

    /// The id of the job a waiting claim was answered with; nil while it waits, `""` for `{job: null}`.
    func claimed(_ harness: CoreHarness, _ request: JSONValue) throws -> String? {
        guard let reply = harness.response(to: request) else { return nil }
        let result = try reply.result.get()
        return result["job"]?["id"]?.stringValue ?? ""
    }

    @Test(
        "a connection may have 256 claims waiting; the next gets -32007 overloaded, other connections still wait",
        arguments: CoreHarness.StoreKind.allCases)
    func perConnectionCap(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let a = WaitingClaimTests.route(1)
        for _ in 0..<WaitingClaims.maxPerConnection { claim(harness, ["cap:job"], from: a) }
        harness.commit()
        let most = WaitingClaims.maxPerConnection
        #expect(harness.core.waitingClaims.count == most)
        let error = try harness.failure("jobs.claim", ["listenerId": "w", "jobs": ["cap:job"], "wait": 5], from: a)
        #expect(error.code == .overloaded)
        #expect(error.message.contains("\(most) claims waiting"))
        claim(harness, ["cap:job"], from: WaitingClaimTests.route(2))
        harness.commit()
        #expect(harness.core.waitingClaims.count == most + 1)
        // A claim answered leaves room for another.
        _ = try create(harness, "cap", "job")
        claim(harness, ["cap:job"], from: a)
        harness.commit()
        #expect(harness.core.waitingClaims.count == most + 1)
    }

    @Test(
        "waiting claims use at most 1024 distinct wildcard patterns; the next new one gets -32007",
        arguments: CoreHarness.StoreKind.allCases)
    func globPatternCap(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        var pattern = 0
        for connection in 0..<(WaitingClaims.maxGlobPatterns / 32) {
            let patterns = (0..<32).map { _ in
                pattern += 1
                return "glob\(pattern):*"
            }
            claim(harness, patterns, from: WaitingClaimTests.route(connection))
        }
        harness.commit()
        let caller = WaitingClaimTests.route(999)
        let error = try harness.failure(
            "jobs.claim", ["listenerId": "w", "jobs": ["new:*"], "wait": 5], from: caller)
        #expect(error.code == .overloaded)
        // Patterns in use already, and literal names, may still wait.
        claim(harness, ["glob1:*", "plain:name"], from: caller)
        harness.commit()
        #expect(harness.core.waitingClaims.count == WaitingClaims.maxGlobPatterns / 32 + 1)
    }

    @Test(
        "the claims of a gone connection are dropped: the next job goes to a claimer still there",
        arguments: CoreHarness.StoreKind.allCases)
    func droppedWithTheirConnection(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let gone = WaitingClaimTests.route(1)
        let staying = WaitingClaimTests.route(2)
        let lost = (0..<3).map { _ in claim(harness, ["drop:job"], from: gone) }
        let kept = claim(harness, ["drop:*"], from: staying)
        harness.commit()
        #expect(harness.core.waitingClaims.count == 4)
        harness.core.dropWaitingClaims(route: gone.route)
        #expect(harness.core.waitingClaims.count == 1)
        #expect(try harness.call("broker.info")["waitingClaims"] == 1)
        let job = try create(harness, "drop", "job")
        #expect(try claimed(harness, kept) == job)
        for request in lost { #expect(try claimed(harness, request) == nil) }
        #expect(harness.core.waitingClaims.isEmpty)
    }

    @Test("literal and wildcard claims are served together in arrival order", arguments: CoreHarness.StoreKind.allCases)
    func arrivalOrderAcrossIndexes(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let first = claim(harness, ["mix:*"], from: WaitingClaimTests.route(1))
        let second = claim(harness, ["mix:job"], from: WaitingClaimTests.route(2))
        let third = claim(harness, ["other:job", "mix:job"], from: WaitingClaimTests.route(3))
        let fourth = claim(harness, ["mix:*"], from: WaitingClaimTests.route(4))
        harness.commit()
        let jobs = try (0..<3).map { _ in try create(harness, "mix", "job") }
        #expect(try claimed(harness, first) == jobs[0])
        #expect(try claimed(harness, second) == jobs[1])
        #expect(try claimed(harness, third) == jobs[2])
        #expect(try claimed(harness, fourth) == nil)
        let last = try create(harness, "mix", "other")
        #expect(try claimed(harness, fourth) == last)
    }

    @Test(
        "jobs made ready together go oldest first to the waiting claimers, in arrival order",
        arguments: CoreHarness.StoreKind.allCases)
    func oldestReadyFirstInARound(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let parent = try create(harness, "round", "parent")
        try harness.call("jobs.claim", ["listenerId": "w", "jobs": ["round:parent"]])
        let first = claim(harness, ["round:*"], from: WaitingClaimTests.route(1))
        let second = claim(harness, ["round:parent"], from: WaitingClaimTests.route(2))
        harness.commit()
        // The parts of a parallel split become ready in one request, so one round hands them out.
        let split = try harness.call("jobs.split", ["jobId": .string(parent), "listenerId": "w", "parts": 3])
        let parts = (split["parts"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        #expect(try claimed(harness, first) == parts[0])
        #expect(try claimed(harness, second) == parts[1])
        #expect(harness.core.statusCounts[.ready] == 1)
    }

    @Test(
        "claims whose wait runs out are answered {job: null} and no longer counted",
        arguments: CoreHarness.StoreKind.allCases)
    func timeouts(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let short = claim(harness, ["time:out"], from: WaitingClaimTests.route(1), wait: 1)
        let long = claim(harness, ["time:*"], from: WaitingClaimTests.route(1), wait: 30)
        harness.commit()
        harness.pass(.milliseconds(999))
        #expect(try claimed(harness, short) == nil, "answered before its wait ran out")
        harness.pass(.milliseconds(1))
        #expect(try claimed(harness, short) == "")
        #expect(try claimed(harness, long) == nil)
        #expect(harness.core.waitingClaims.count == 1)
        let job = try create(harness, "time", "out")
        #expect(try claimed(harness, long) == job)
    }

    @Test("a literal pattern matches exactly the names with its key, as the glob does")
    func literalKeysAgreeWithGlobs() {
        let names = ["a:b", "a::b", "a:b:", "a:b::", ":a:b", "::a:b", "a", "a:", "ab", "a:bc", "a:b:c", "a:::b:"]
        for pattern in names + ["x:y"] {
            let glob = Glob(pattern)
            for name in names {
                if WaitingClaims.isLiteral(pattern) {
                    #expect(glob.matches(name) == (JobNameKey.of(name) == pattern), "\(pattern) vs \(name)")
                }
            }
        }
        #expect(WaitingClaims.isLiteral("a:b"))
        #expect(!WaitingClaims.isLiteral("a::b"))
        #expect(!WaitingClaims.isLiteral("a:*"))
        #expect(!WaitingClaims.isLiteral("a\\:b"))
    }

    // MARK: Request caps

    @Test(
        "a create may name 1000 predecessors; 1001 get -32602 naming predecessorIds",
        arguments: CoreHarness.StoreKind.allCases)
    func predecessorCap(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        var ids: [JSONValue] = []
        for _ in 0..<1000 { ids.append(.string(try create(harness, "pred", "job"))) }
        let error = try harness.failure(
            "jobs.create",
            ["type": "many", "operation": "preds", "source": "s", "predecessorIds": .array(ids + [ids[0]])])
        #expect(error.code == .invalidParams)
        #expect(error.data["field"] == "predecessorIds")
        let job = try harness.call(
            "jobs.create", ["type": "many", "operation": "preds", "source": "s", "predecessorIds": .array(ids)])
        #expect(job["status"] == "scheduled")
    }

    @Test("a split makes at most 1000 parts; 1001 get -32602 naming parts", arguments: [false, true])
    func partsCap(asArray: Bool) throws {
        let harness = try CoreHarness()
        defer { harness.close() }
        let parent = try create(harness, "split", "cap")
        try harness.call("jobs.claim", ["listenerId": "w", "jobs": ["split:cap"]])
        let parts: JSONValue = asArray ? .array(Array(repeating: .object([:]), count: 1001)) : 1001
        let error = try harness.failure("jobs.split", ["jobId": .string(parent), "listenerId": "w", "parts": parts])
        #expect(error.code == .invalidParams)
        #expect(error.data["field"] == "parts")
        #expect(harness.core.statusCounts[.ready, default: 0] == 0)
    }

    @Test(
        "a manual job executed after its predecessor was deleted fails: predecessor <id> deleted",
        arguments: CoreHarness.StoreKind.allCases)
    func deletedPredecessorOfManualJob(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let first = try create(harness, "pre", "done")
        let dependent = try #require(
            try harness.call(
                "jobs.create",
                [
                    "type": "dep", "operation": "job", "source": "s", "trigger": "manual",
                    "predecessorIds": [.string(first)],
                ])["id"]?.stringValue)
        try harness.call("jobs.cancel", ["jobId": .string(first)])
        try harness.call("jobs.delete", ["jobId": .string(first)])
        let executed = try harness.call("jobs.execute", ["jobId": .string(dependent)])
        #expect(executed["status"] == "failed")
        #expect(executed["outcome"]?["message"] == .string("predecessor \(first) deleted"))
    }

    @Test(
        "a job waiting for two predecessors fails when one completed and was deleted and the other completes",
        arguments: CoreHarness.StoreKind.allCases)
    func deletedCompletedPredecessor(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let a = try create(harness, "pre", "a")
        let b = try create(harness, "pre", "b")
        let waiting = try #require(
            try harness.call(
                "jobs.create",
                ["type": "dep", "operation": "job", "source": "s", "predecessorIds": [.string(a), .string(b)]])["id"]?
                .stringValue)
        for id in [a, b] { try harness.call("jobs.ack", ["jobId": .string(id), "listenerId": "w"]) }
        try harness.call("jobs.complete", ["jobId": .string(a), "listenerId": "w"])
        try harness.call("jobs.delete", ["jobId": .string(a)])
        #expect(try harness.job(waiting).status == .scheduled)
        try harness.call("jobs.complete", ["jobId": .string(b), "listenerId": "w"])
        let job = try harness.job(waiting)
        #expect(job.status == .failed)
        #expect(job.outcome?.message == "predecessor \(a) deleted")
    }
}
