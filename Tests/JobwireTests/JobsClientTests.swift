import Jobwire
import JobwireTestSupport
import Testing

@Suite struct JobsClientTests {
    @Test("creates, claims and completes a job, and names broker errors by code", .timeLimit(.minutes(1)))
    func lifecycle() async throws {
        try await withBroker { broker in
            let client = try JobsClient(commands: broker.commands, configuration: .init(listenerId: "tests"))
            try await withClient(client) { client in

                let job = try await client.create(type: "workbook", operation: "export", source: "us_wb_1")
                #expect(job.status == .ready)
                let again = try await client.create(
                    JobCreateRequest(type: "workbook", operation: "export", source: "us_wb_1", idempotencyKey: "k1"))
                let same = try await client.create(
                    JobCreateRequest(type: "workbook", operation: "export", source: "us_wb_1", idempotencyKey: "k1"))
                #expect(again.id == same.id)

                let claimed = try #require(try await client.claim(jobs: ["workbook:*"], wait: .seconds(1)))
                #expect(claimed.id == job.id)
                #expect(claimed.lease?.owner == "tests")
                let done = try await client.complete(jobId: job.id, outcome: Outcome(message: "ok"))
                #expect(done.status == .complete)
                #expect(done.outcome?.message == "ok")

                #expect(await protocolCode { try await client.complete(jobId: job.id) } == .invalidTransition)
                #expect(await protocolCode { try await client.get(jobId: "us_jb_nope") } == .notFound)
                let other = try JobsClient(commands: broker.commands, configuration: .init(listenerId: "other"))
                _ = try await client.ack(jobId: again.id)
                #expect(await protocolCode { try await other.ack(jobId: again.id) } == .conflict)
                await other.close()

                let page = try await client.list(JobQuery(status: .complete))
                #expect(page.totalCount == 1)
                let info = try await client.brokerInfo()
                #expect(info.jobs[.complete] == 1)
                let events = try await client.events(since: 0, topics: ["job:completed"])
                #expect(events.events.map(\.topic) == ["job:completed"])
                #expect(events.lastSeq == info.seq)
            }
        }
    }

    @Test("pipelines a long claim with other calls on one connection", .timeLimit(.minutes(1)))
    func pipelining() async throws {
        try await withBroker { broker in
            let client = try JobsClient(commands: broker.commands, configuration: .init(listenerId: "tests"))
            try await withClient(client) { client in
                async let waiting = client.claim(jobs: ["sheet:validate"], wait: .seconds(20))
                // The claim is in flight; a create on the same connection is answered meanwhile and feeds it.
                let created = try await client.create(type: "sheet", operation: "validate", source: "us_sh_1")
                let claimed = try await waiting
                #expect(claimed?.id == created.id)
            }
        }
    }

    @Test("a broker that does not answer is reported with its endpoint", .timeLimit(.minutes(1)))
    func unreachable() async throws {
        let client = try JobsClient(
            commands: "tcp://127.0.0.1:9", configuration: .init(requestTimeout: .milliseconds(300), attempts: 1))
        do {
            _ = try await client.brokerInfo()
            Issue.record("a broker answered on a closed port")
        } catch let error as JobwireError {
            #expect(error.code == .brokerUnreachable)
            #expect(error.message.contains("tcp://127.0.0.1:9"))
        }
        await client.close()
    }
}

/// The code of the ``ProtocolError`` that `body` throws, or nil.
func protocolCode<R>(_ body: () async throws -> R) async -> ProtocolError.Code? {
    do {
        _ = try await body()
        return nil
    } catch let error as ProtocolError {
        return error.code
    } catch {
        return nil
    }
}

@Suite struct EventPageTests {
    @Test("EventPage carries nextSince; a page cut short by the byte budget is not complete", .timeLimit(.minutes(1)))
    func nextSince() async throws {
        try await withBroker { broker in
            let client = try JobsClient(commands: broker.commands)
            let input: JSONValue = ["blob": .string(String(repeating: "x", count: 300_000))]
            for index in 0..<4 {
                _ = try await client.create(
                    JobCreateRequest(type: "workbook", operation: "export", source: "us_wb_\(index)", input: input))
            }
            let first = try await client.events(since: 0)
            #expect(!first.isComplete)
            #expect(first.events.count < 8)
            #expect(first.nextSince == first.events.last?.seq)
            var seqs = first.events.compactMap(\.seq)
            var page = first
            while !page.isComplete {
                page = try await client.events(since: page.nextSince)
                seqs += page.events.compactMap(\.seq)
            }
            #expect(seqs == Array(1...8))
            #expect(page.nextSince == page.lastSeq)
            await client.close()
        }
    }
}
