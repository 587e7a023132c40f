import Foundation
import Jobwire
import JobwireTestSupport
import Testing

@Suite struct InstanceIdTests {
    @Test(
        "two clients with one listenerId are two instances: the second cannot take or end the first's job",
        .timeLimit(.minutes(1)))
    func clientsAreInstances() async throws {
        try await withBroker { broker in
            let first = try JobsClient(commands: broker.commands, configuration: .init(listenerId: "exports"))
            let second = try JobsClient(commands: broker.commands, configuration: .init(listenerId: "exports"))
            try await withClient(first) { first in
                try await withClient(second) { second in
                    let job = try await first.create(type: "workbook", operation: "export", source: "us_wb_1")

                    let held = try await first.ack(jobId: job.id)
                    #expect(held.lease?.owner == "exports")
                    #expect(held.lease?.instanceId == first.configuration.instanceId)
                    #expect(await protocolCode { try await second.ack(jobId: job.id) } == .conflict)
                    #expect(await protocolCode { try await second.complete(jobId: job.id) } == .conflict)
                    #expect(await protocolCode { try await second.release(jobId: job.id) } == .conflict)
                    // The holder renews and releases; the other instance then takes the job as a new attempt.
                    _ = try await first.ack(jobId: job.id)
                    _ = try await first.release(jobId: job.id)
                    let taken = try #require(try await second.claim(jobs: ["workbook:export"], wait: .seconds(5)))
                    #expect(taken.lease?.instanceId == second.configuration.instanceId)
                    #expect(await protocolCode { try await first.complete(jobId: job.id) } == .leaseExpired)
                    #expect(try await second.complete(jobId: job.id).status == .complete)
                }
            }
        }
    }

    @Test("an instanceId is host-pid-random, 1-64 characters of [A-Za-z0-9._:-], new for each listener")
    func instanceIdShape() {
        let id = JobsClient.makeInstanceId()
        #expect((1...64).contains(id.count))
        #expect(id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || ".-_:".contains($0)) }, "\(id)")
        #expect(id.contains("-\(ProcessInfo.processInfo.processIdentifier)-"), "\(id)")
        let a = Listener(name: "exports") {}
        let b = Listener(name: "exports") {}
        #expect(a.instanceId != b.instanceId)
        #expect(
            JobsClient.Configuration(listenerId: "x").instanceId != JobsClient.Configuration(listenerId: "x").instanceId
        )
    }
}
