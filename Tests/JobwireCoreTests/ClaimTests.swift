import Foundation
import JobwireCore
import JobwireProtocol
import Testing

@testable import JobwireBroker

/// `jobs.claim`: who gets which ready job, in what order, and how a late call of an attempt that is over
/// is fenced off.
@Suite struct ClaimTests {
    static func caller(_ n: Int) -> Caller { Caller(route: [0xC0, UInt8(n)], authenticatedKey: nil) }

    @Test(
        "a create's reply shows the job ready, though a waiting claimer takes it at once",
        arguments: CoreHarness.StoreKind.allCases)
    func createReplyBeforeClaim(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let waiting = harness.send(
            "jobs.claim", ["listenerId": "w", "jobs": ["claim:first"], "wait": 10], from: ClaimTests.caller(1))
        harness.commit()
        #expect(harness.response(to: waiting) == nil)
        #expect(try harness.info()["waitingClaims"] == 1)
        let created = try harness.call("jobs.create", ["type": "claim", "operation": "first", "source": "s"])
        #expect(created["status"] == "ready")
        let claimed = try #require(harness.response(to: waiting)).result.get()
        #expect(claimed["job"]?["id"] == created["id"])
        #expect(claimed["job"]?["status"] == "executing")
        #expect(try harness.get(try #require(created.string("id"))).string("status") == "executing")
    }

    @Test(
        "jobs.claim hands each ready job to exactly one of several waiting claimers",
        arguments: CoreHarness.StoreKind.allCases)
    func claims(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        // Whether a claim arrives before or after a job becomes ready, each job goes to one claimer.
        var requests: [JSONValue] = []
        var ids: [String] = []
        for n in 0..<6 {
            requests.append(
                harness.send(
                    "jobs.claim", ["listenerId": .string("c\(n)"), "jobs": ["file:*"], "wait": 20],
                    from: ClaimTests.caller(n)))
            if n % 2 == 0 { harness.commit() }
            ids.append(try #require(try harness.create(type: "file", operation: "import").string("id")))
        }
        var got: [String] = []
        for (n, request) in requests.enumerated() {
            let reply = try #require(harness.response(to: request), "claimer c\(n) got no reply")
            let job = try reply.result.get()["job"]
            got.append(try #require(job?.string("id")))
            #expect(job?["lease"]?["owner"] == .string("c\(n)"))
        }
        #expect(Set(got) == Set(ids), "every job claimed exactly once")
        #expect(got.count == 6)
        #expect(try harness.info()["waitingClaims"] == 0)
        // A claim with nothing ready and no wait answers null at once.
        let none = try harness.call("jobs.claim", ["jobs": ["nothing:*"]])
        #expect(none["job"] == .null)
    }

    @Test(
        "waiting claimers are served in arrival order, oldest ready job first",
        arguments: CoreHarness.StoreKind.allCases)
    func arrivalOrder(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let first = try harness.call("jobs.create", ["type": "order", "operation": "a", "source": "s"])
        let second = try harness.call("jobs.create", ["type": "order", "operation": "b", "source": "s"])
        let one = try harness.call("jobs.claim", ["listenerId": "one", "jobs": ["order:*"]])
        let two = try harness.call("jobs.claim", ["listenerId": "two", "jobs": ["order:*"]])
        #expect(one["job"]?["id"] == first["id"])
        #expect(two["job"]?["id"] == second["id"])
        // Waiting claimers: the first to wait gets the first job to become ready.
        let a = harness.send(
            "jobs.claim", ["listenerId": "a", "jobs": ["later:*"], "wait": 30], from: ClaimTests.caller(1))
        let b = harness.send(
            "jobs.claim", ["listenerId": "b", "jobs": ["later:*"], "wait": 30], from: ClaimTests.caller(2))
        harness.commit()
        let third = try harness.call("jobs.create", ["type": "later", "operation": "x", "source": "s"])
        #expect(try harness.response(to: a)?.result.get()["job"]?["id"] == third["id"])
        #expect(harness.response(to: b) == nil)
        let fourth = try harness.call("jobs.create", ["type": "later", "operation": "y", "source": "s"])
        #expect(try harness.response(to: b)?.result.get()["job"]?["id"] == fourth["id"])
    }

    @Test(
        "naming the attempt fences off a late call from an attempt that is over, under the same listenerId",
        arguments: CoreHarness.StoreKind.allCases)
    func attemptFencing(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let created = try harness.call("jobs.create", ["type": "fence", "operation": "x", "source": "s"])
        let id = try #require(created.string("id"))
        let first = try harness.call("jobs.ack", ["jobId": id.json, "listenerId": "shared"])
        #expect(first.int("attempt") == 1)
        // The first attempt ends (released here; a lease expiry does the same); the same name takes the job
        // again, now attempt 2.
        try harness.call("jobs.release", ["jobId": id.json, "listenerId": "shared"])
        let second = try harness.call("jobs.ack", ["jobId": id.json, "listenerId": "shared"])
        #expect(second.int("attempt") == 2)
        let seq = try harness.seq()
        for method in ["jobs.complete", "jobs.fail", "jobs.update", "jobs.release", "jobs.ack"] {
            let late = try harness.failure(method, ["jobId": id.json, "listenerId": "shared", "attempt": 1])
            #expect(late.code == .leaseExpired, "\(method) from attempt 1: \(late)")
        }
        #expect(try harness.seq() == seq, "a fenced-off call changed nothing")
        let done = try harness.call(
            "jobs.complete", ["jobId": id.json, "listenerId": "shared", "attempt": 2, "outcome": ["message": "two"]])
        #expect(done.string("status") == "complete")
    }

    @Test(
        "a renewal from an attempt that is over does not take the job back once it is ready again",
        arguments: CoreHarness.StoreKind.allCases)
    func staleRenewalOfReadyJob(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let created = try harness.call("jobs.create", ["type": "fence", "operation": "x", "source": "s"])
        let id = try #require(created.string("id"))
        try harness.call("jobs.ack", ["jobId": id.json, "listenerId": "l", "attempt": 1])
        // The listener releases the job (shutting down) while its lease renewer still has an ack of attempt 1 to send.
        try harness.call("jobs.release", ["jobId": id.json, "listenerId": "l", "attempt": 1])
        let seq = try harness.seq()
        let late = try harness.failure("jobs.ack", ["jobId": id.json, "listenerId": "l", "attempt": 1])
        #expect(late.code == .leaseExpired)
        #expect(try harness.seq() == seq, "the late renewal changed nothing")
        #expect(try harness.job(id).status == .ready)
        #expect(try harness.job(id).attempt == 2)
        // An ack that names the job's current attempt (or none) takes it as usual.
        let taken = try harness.call("jobs.ack", ["jobId": id.json, "listenerId": "m", "attempt": 2])
        #expect(taken.string("status") == "executing")
    }
}
