import Foundation
import JobwireCore
import JobwireProtocol
import Testing

@testable import JobwireBroker

/// Leases belong to one instance of a listener: copies sharing a `listenerId` are told apart by `instanceId`.
@Suite struct InstanceTests {
    @Test(
        "same listenerId, two instanceIds: the second ack conflicts, the wrong instance cannot complete or release",
        arguments: CoreHarness.StoreKind.allCases)
    func twoInstancesOfOneListener(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let id = try #require(try harness.create().string("id"))
        let a: JSONObject = ["jobId": .string(id), "listenerId": "exports", "instanceId": "host-1-aaaaaa"]
        let b: JSONObject = ["jobId": .string(id), "listenerId": "exports", "instanceId": "host-2-bbbbbb"]

        let taken = try harness.call("jobs.ack", a)
        #expect(taken["lease"]?["owner"] == "exports")
        #expect(taken["lease"]?["instanceId"] == "host-1-aaaaaa")
        let seq = try harness.seq()

        // The second copy's ack is no renewal: it conflicts, as do its other verbs; nothing changes.
        #expect(try harness.failure("jobs.ack", b).code == .conflict)
        for method in ["jobs.update", "jobs.complete", "jobs.fail", "jobs.release"] {
            #expect(try harness.failure(method, b).code == .conflict, "\(method) by the other instance")
        }
        var splitB = b
        splitB["parts"] = 2
        #expect(try harness.failure("jobs.split", splitB).code == .conflict)
        // A call with the listenerId but no instanceId is a third holder, not the owner.
        let bare: JSONObject = ["jobId": .string(id), "listenerId": "exports"]
        #expect(try harness.failure("jobs.complete", bare).code == .conflict)
        #expect(try harness.seq() == seq)
        #expect(try harness.get(id)["lease"]?["instanceId"] == "host-1-aaaaaa")

        // The owner renews; its release retires the pair: a late call from it is lease_expired.
        try harness.call("jobs.ack", a)
        try harness.call("jobs.release", a)
        let second = try harness.call("jobs.ack", b)
        #expect(second["lease"]?["instanceId"] == "host-2-bbbbbb")
        #expect(try harness.failure("jobs.complete", a).code == .leaseExpired)
        try harness.call("jobs.complete", b)
        #expect(try harness.get(id).string("status") == "complete")
    }

    @Test("jobs.claim takes the lease for the claimer's instance", arguments: CoreHarness.StoreKind.allCases)
    func claimTakesInstance(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let id = try #require(try harness.create().string("id"))
        let claimed = try harness.call(
            "jobs.claim", ["jobs": ["workbook:export"], "listenerId": "exports", "instanceId": "c-1"])
        #expect(claimed["job"]?["id"]?.stringValue == id)
        #expect(claimed["job"]?["lease"]?["instanceId"] == "c-1")
        let other: JSONObject = ["jobId": .string(id), "listenerId": "exports", "instanceId": "c-2"]
        #expect(try harness.failure("jobs.complete", other).code == .conflict)
        try harness.call("jobs.complete", ["jobId": .string(id), "listenerId": "exports", "instanceId": "c-1"])
    }

    @Test(
        "without instanceIds, leases work as before; an operator still acts on any lease",
        arguments: CoreHarness.StoreKind.allCases)
    func withoutInstances(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let id = try #require(try harness.create().string("id"))
        let bare: JSONObject = ["jobId": .string(id), "listenerId": "exports"]
        let taken = try harness.call("jobs.ack", bare)
        #expect(taken["lease"]?.objectValue?.keys.contains("instanceId") == false)
        try harness.call("jobs.ack", bare)
        // A copy that sends an instanceId is not the holder of a lease taken without one.
        var copy = bare
        copy["instanceId"] = "x-1"
        #expect(try harness.failure("jobs.update", copy).code == .conflict)
        try harness.call("jobs.update", ["jobId": .string(id), "info": "operator"])
        try harness.call("jobs.complete", bare)
    }

    @Test(
        "an instanceId that is not 1-64 characters of [A-Za-z0-9._:-] is -32602 naming it",
        arguments: CoreHarness.StoreKind.allCases)
    func badInstanceIds(store: CoreHarness.StoreKind) throws {
        let harness = try CoreHarness(store: store)
        defer { harness.close() }
        let id = try #require(try harness.create().string("id"))
        let seq = try harness.seq()
        let bad: [JSONValue] = ["", .string(String(repeating: "a", count: 65)), "has space", "é", "a/b", 7]
        for value in bad {
            for method in ["jobs.ack", "jobs.update", "jobs.complete", "jobs.release"] {
                let error = try harness.failure(
                    method, ["jobId": .string(id), "listenerId": "exports", "instanceId": value])
                #expect(error.code == .invalidParams, "\(method) with \(value)")
                #expect(error.field == "instanceId", "\(method) with \(value)")
            }
            let claim = try harness.failure(
                "jobs.claim", ["jobs": ["workbook:export"], "listenerId": "exports", "instanceId": value])
            #expect(claim.field == "instanceId")
        }
        #expect(try harness.seq() == seq)
        let longest = String(repeating: "Az09._:-", count: 8)
        let ok = try harness.call(
            "jobs.ack", ["jobId": .string(id), "listenerId": "exports", "instanceId": .string(longest)])
        #expect(ok["lease"]?["instanceId"]?.stringValue == longest)
    }
}
