import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing

/// Leases belong to one instance of a listener: copies sharing a `listenerId` are told apart by `instanceId`.
@Suite struct InstanceTests {
    @Test(
        "same listenerId, two instanceIds: the second ack conflicts, the wrong instance cannot complete or release",
        .timeLimit(.minutes(1)))
    func twoInstancesOfOneListener() async throws {
        let harness = try await Harness()
        let id = try #require(try await harness.create().string("id"))
        let a: JSONObject = ["jobId": .string(id), "listenerId": "exports", "instanceId": "host-1-aaaaaa"]
        let b: JSONObject = ["jobId": .string(id), "listenerId": "exports", "instanceId": "host-2-bbbbbb"]

        let taken = try await harness.call("jobs.ack", a)
        #expect(taken["lease"]?["owner"] == "exports")
        #expect(taken["lease"]?["instanceId"] == "host-1-aaaaaa")
        let seq = try await harness.seq()

        // The second copy's ack is no renewal: it conflicts, as do its other verbs; nothing changes.
        #expect(try await harness.failure("jobs.ack", b).code == .conflict)
        for method in ["jobs.update", "jobs.complete", "jobs.fail", "jobs.release"] {
            #expect(try await harness.failure(method, b).code == .conflict, "\(method) by the other instance")
        }
        var splitB = b
        splitB["parts"] = 2
        #expect(try await harness.failure("jobs.split", splitB).code == .conflict)
        // A call with the listenerId but no instanceId is a third holder, not the owner.
        let bare: JSONObject = ["jobId": .string(id), "listenerId": "exports"]
        #expect(try await harness.failure("jobs.complete", bare).code == .conflict)
        #expect(try await harness.seq() == seq)
        #expect(try await harness.get(id)["lease"]?["instanceId"] == "host-1-aaaaaa")

        // The owner renews; its release retires the pair: a late call from it is lease_expired.
        try await harness.call("jobs.ack", a)
        try await harness.call("jobs.release", a)
        let second = try await harness.call("jobs.ack", b)
        #expect(second["lease"]?["instanceId"] == "host-2-bbbbbb")
        #expect(try await harness.failure("jobs.complete", a).code == .leaseExpired)
        try await harness.call("jobs.complete", b)
        #expect(try await harness.get(id).string("status") == "complete")
        await harness.close()
    }

    @Test("jobs.claim takes the lease for the claimer's instance", .timeLimit(.minutes(1)))
    func claimTakesInstance() async throws {
        let harness = try await Harness()
        let id = try #require(try await harness.create().string("id"))
        let claimed = try await harness.call(
            "jobs.claim", ["jobs": ["workbook:export"], "listenerId": "exports", "instanceId": "c-1"])
        #expect(claimed["job"]?["id"]?.stringValue == id)
        #expect(claimed["job"]?["lease"]?["instanceId"] == "c-1")
        let other: JSONObject = ["jobId": .string(id), "listenerId": "exports", "instanceId": "c-2"]
        #expect(try await harness.failure("jobs.complete", other).code == .conflict)
        try await harness.call("jobs.complete", ["jobId": .string(id), "listenerId": "exports", "instanceId": "c-1"])
        await harness.close()
    }

    @Test("without instanceIds, leases work as before; an operator still acts on any lease", .timeLimit(.minutes(1)))
    func withoutInstances() async throws {
        let harness = try await Harness()
        let id = try #require(try await harness.create().string("id"))
        let bare: JSONObject = ["jobId": .string(id), "listenerId": "exports"]
        let taken = try await harness.call("jobs.ack", bare)
        #expect(taken["lease"]?.objectValue?.keys.contains("instanceId") == false)
        try await harness.call("jobs.ack", bare)
        // A copy that sends an instanceId is not the holder of a lease taken without one.
        var copy = bare
        copy["instanceId"] = "x-1"
        #expect(try await harness.failure("jobs.update", copy).code == .conflict)
        try await harness.call("jobs.update", ["jobId": .string(id), "info": "operator"])
        try await harness.call("jobs.complete", bare)
        await harness.close()
    }

    @Test("an instanceId that is not 1-64 characters of [A-Za-z0-9._:-] is -32602 naming it", .timeLimit(.minutes(1)))
    func badInstanceIds() async throws {
        let harness = try await Harness()
        let id = try #require(try await harness.create().string("id"))
        let seq = try await harness.seq()
        let bad: [JSONValue] = ["", .string(String(repeating: "a", count: 65)), "has space", "é", "a/b", 7]
        for value in bad {
            for method in ["jobs.ack", "jobs.update", "jobs.complete", "jobs.release"] {
                let error = try await harness.failure(
                    method, ["jobId": .string(id), "listenerId": "exports", "instanceId": value])
                #expect(error.code == .invalidParams, "\(method) with \(value)")
                #expect(error.field == "instanceId", "\(method) with \(value)")
            }
            let claim = try await harness.failure(
                "jobs.claim", ["jobs": ["workbook:export"], "listenerId": "exports", "instanceId": value])
            #expect(claim.field == "instanceId")
        }
        #expect(try await harness.seq() == seq)
        let longest = String(repeating: "Az09._:-", count: 8)
        let ok = try await harness.call(
            "jobs.ack", ["jobId": .string(id), "listenerId": "exports", "instanceId": .string(longest)])
        #expect(ok["lease"]?["instanceId"]?.stringValue == longest)
        await harness.close()
    }
}
