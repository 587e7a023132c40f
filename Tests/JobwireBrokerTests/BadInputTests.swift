import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

/// Bad requests over raw sockets: each gets its JSON-RPC error, changes nothing, and the broker keeps
/// serving everyone else.
@Suite struct BadInputTests {
    /// A broker with one job in flight, to show that nothing changes.
    struct Scene {
        let harness: Harness
        let dealer: RawDealer
        let jobId: String
        let job: JSONObject
        let info: JSONObject

        static func make(arguments: [String] = []) async throws -> Scene {
            let harness = try await Harness(arguments: arguments)
            let created = try await harness.create()
            let id = try #require(created.string("id"))
            let job = try await harness.call("jobs.ack", ["jobId": id.json, "listenerId": "w1", "progress": 10])
            let dealer = try RawDealer(context: harness.context, endpoint: harness.process.commands)
            return Scene(harness: harness, dealer: dealer, jobId: id, job: job, info: try await harness.info())
        }

        /// The broker still answers another client, and the job, counts and seq are as they were.
        func expectUnchanged(_ label: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let other = try harness.newClient()
            let info = try #require(try await other.result("broker.info").objectValue)
            #expect(info == self.info, "\(label): broker.info changed", sourceLocation: sourceLocation)
            let job = try await other.result("jobs.get", ["jobId": jobId.json])
            #expect(job.objectValue == self.job, "\(label): the job changed", sourceLocation: sourceLocation)
            await other.close()
        }

        func close() async {
            await dealer.close()
            await harness.close()
        }
    }

    static func request(_ method: String, _ params: JSONObject, id: JSONValue = 1) -> [UInt8] {
        RPCRequest(id: id, method: method, params: params).bytes
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var frames: @Sendable (_ jobId: String) -> [[UInt8]]
        var code: Int
        var field: String?
        /// Whether the reply echoes the request id 1 (else `null`).
        var echoesId = false
        /// Whether the reply comes without the delimiter frame (a DEALER that sent none).
        var bare = false
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "no delimiter frame", frames: { _ in [request("broker.info", [:])] }, code: -32600, bare: true),
        Case(
            name: "two body frames", frames: { _ in [[], request("broker.info", [:]), Array("{}".utf8)] }, code: -32600),
        Case(name: "empty body", frames: { _ in [[], []] }, code: -32700),
        Case(name: "a delimiter only", frames: { _ in [[]] }, code: -32700),
        Case(name: "non-UTF-8 bytes", frames: { _ in [[], [0x7B, 0xFF, 0xFE, 0x22, 0x7D]] }, code: -32700),
        Case(name: "not JSON", frames: { _ in [[], Array("jobs.get us_jb_1".utf8)] }, code: -32700),
        Case(
            name: "truncated JSON", frames: { _ in [[], Array(#"{"jsonrpc":"2.0","id":1,"method":"#.utf8)] },
            code: -32700),
        Case(
            name: "a JSON array",
            frames: { _ in [[], Array(#"[{"jsonrpc":"2.0","id":1,"method":"broker.info"}]"#.utf8)] },
            code: -32600),
        Case(
            name: "no jsonrpc version", frames: { _ in [[], Array(#"{"id":1,"method":"broker.info"}"#.utf8)] },
            code: -32600, echoesId: true),
        Case(
            name: "params an array",
            frames: { _ in [[], Array(#"{"jsonrpc":"2.0","id":1,"method":"jobs.get","params":[1]}"#.utf8)] },
            code: -32602, field: "params", echoesId: true),
        Case(
            name: "unknown method", frames: { _ in [[], request("jobs.explode", [:])] }, code: -32601, echoesId: true),
        Case(
            name: "unknown job", frames: { _ in [[], request("jobs.cancel", ["jobId": "us_jb_nope"])] }, code: -32001,
            echoesId: true),
        Case(
            name: "jobId a number", frames: { _ in [[], request("jobs.cancel", ["jobId": 5])] }, code: -32602,
            field: "jobId", echoesId: true),
        Case(
            name: "jobId missing", frames: { _ in [[], request("jobs.complete", ["listenerId": "w1"])] }, code: -32602,
            field: "jobId", echoesId: true),
        Case(
            name: "create without type",
            frames: { _ in [[], request("jobs.create", ["operation": "x", "source": "s"])] },
            code: -32602, field: "type", echoesId: true),
        Case(
            name: "create with a type of the wrong kind",
            frames: { _ in [[], request("jobs.create", ["type": ["x"], "operation": "x", "source": "s"])] },
            code: -32602, field: "type", echoesId: true),
        Case(
            name: "an unknown outcome.next.type",
            frames: { id in
                [
                    [],
                    request(
                        "jobs.complete",
                        [
                            "jobId": id.json, "listenerId": "w1",
                            "outcome": ["message": "m", "next": ["type": "teleport"]],
                        ]),
                ]
            }, code: -32602, field: "outcome.next.type", echoesId: true),
        Case(
            name: "progress 101",
            frames: { id in [[], request("jobs.update", ["jobId": id.json, "listenerId": "w1", "progress": 101])] },
            code: -32602, field: "progress", echoesId: true),
        Case(
            name: "progress -1 on ack",
            frames: { id in
                [[], request("jobs.ack", ["jobId": id.json, "listenerId": "w1", "progress": -1, "info": "x"])]
            },
            code: -32602, field: "progress", echoesId: true),
        Case(
            name: "progress a string",
            frames: { id in [[], request("jobs.update", ["jobId": id.json, "listenerId": "w1", "progress": "50"])] },
            code: -32602, field: "progress", echoesId: true),
        Case(
            name: "an illegal transition",
            frames: { id in [[], request("jobs.retry", ["jobId": id.json])] }, code: -32002, echoesId: true),
        Case(
            name: "another listener's call",
            frames: { id in [[], request("jobs.complete", ["jobId": id.json, "listenerId": "w2"])] },
            code: -32003, echoesId: true),
        Case(
            name: "update with status ready",
            frames: { id in [[], request("jobs.update", ["jobId": id.json, "listenerId": "w1", "status": "ready"])] },
            code: -32602, field: "status", echoesId: true),
        Case(
            name: "an unknown status filter", frames: { _ in [[], request("jobs.list", ["status": "done"])] },
            code: -32602, field: "status", echoesId: true),
        Case(
            name: "a mount without action.operation",
            frames: { _ in
                [[], request("actions.mount", ["domain": "workbook", "resourceId": "r", "action": ["label": "L"]])]
            },
            code: -32602, field: "action.operation", echoesId: true),
        Case(
            name: "events.list since a string", frames: { _ in [[], request("events.list", ["since": "0"])] },
            code: -32602, field: "since", echoesId: true),
        // Duplicate members: the last one no longer wins.
        Case(
            name: "method named twice",
            frames: { _ in
                [[], Array(#"{"jsonrpc":"2.0","id":1,"method":"jobs.delete","method":"broker.info"}"#.utf8)]
            },
            code: -32600, echoesId: true),
        Case(
            name: "jobId named twice in params",
            frames: { id in
                [
                    [],
                    Array(
                        #"{"jsonrpc":"2.0","id":1,"method":"jobs.cancel","params":{"jobId":"x","jobId":"\#(id)"}}"#
                            .utf8),
                ]
            },
            code: -32602, field: "jobId", echoesId: true),
        Case(
            name: "outcome.message named twice",
            frames: { id in
                [
                    [],
                    Array(
                        (#"{"jsonrpc":"2.0","id":1,"method":"jobs.complete","params":{"jobId":"\#(id)","#
                            + #""listenerId":"w1","outcome":{"message":"a","message":"b"}}}"#).utf8),
                ]
            },
            code: -32602, field: "outcome.message", echoesId: true),
        // Globs: a list, at most 32 patterns of at most 256 bytes.
        Case(
            name: "claim jobs a string", frames: { _ in [[], request("jobs.claim", ["jobs": "a:b"])] }, code: -32602,
            field: "jobs", echoesId: true),
        Case(
            name: "claim pattern of 257 bytes",
            frames: { _ in
                [[], request("jobs.claim", ["jobs": ["a:b", .string(String(repeating: "*", count: 257))]])]
            },
            code: -32602, field: "jobs.1", echoesId: true),
        Case(
            name: "claim with 33 patterns",
            frames: { _ in [[], request("jobs.claim", ["jobs": .array(Array(repeating: "a:*", count: 33))])] },
            code: -32602, field: "jobs", echoesId: true),
        Case(
            name: "events.list topic of 3000 stars",
            frames: { _ in
                [
                    [],
                    request(
                        "events.list",
                        ["topics": ["job:ready", "job:*", "*", .string(String(repeating: "*", count: 3000))]]),
                ]
            },
            code: -32602, field: "topics.3", echoesId: true),
        Case(
            name: "events.list with 33 topics",
            frames: { _ in [[], request("events.list", ["topics": .array(Array(repeating: "*", count: 33))])] },
            code: -32602, field: "topics", echoesId: true),
        // Names and ids: no control characters, at most 256 bytes.
        Case(
            name: "a NUL in type",
            frames: { _ in [[], request("jobs.create", ["type": "work\u{0}book", "operation": "x", "source": "s"])] },
            code: -32602, field: "type", echoesId: true),
        Case(
            name: "a DEL in source",
            frames: { _ in [[], request("jobs.create", ["type": "w", "operation": "x", "source": "s\u{7F}"])] },
            code: -32602, field: "source", echoesId: true),
        Case(
            name: "an operation of 257 bytes",
            frames: { _ in
                [
                    [],
                    request(
                        "jobs.create",
                        ["type": "w", "operation": .string(String(repeating: "o", count: 257)), "source": "s"]),
                ]
            },
            code: -32602, field: "operation", echoesId: true),
        Case(
            name: "a newline in a context id",
            frames: { _ in
                [[], request("jobs.create", ["type": "w", "operation": "x", "source": "s", "spaceId": "us_sp\n1"])]
            },
            code: -32602, field: "spaceId", echoesId: true),
        Case(
            name: "a control character in a predecessor id",
            frames: { _ in
                [
                    [],
                    request(
                        "jobs.create", ["type": "w", "operation": "x", "source": "s", "predecessorIds": ["a\u{1}"]]),
                ]
            },
            code: -32602, field: "predecessorIds.0", echoesId: true),
        Case(
            name: "a control character in listenerId",
            frames: { id in [[], request("jobs.ack", ["jobId": id.json, "listenerId": "w\u{1B}1"])] },
            code: -32602, field: "listenerId", echoesId: true),
        // Timestamps past 9999.
        Case(
            name: "runAt past 9999 by its offset",
            frames: { _ in
                [
                    [],
                    request(
                        "jobs.create",
                        ["type": "w", "operation": "x", "source": "s", "runAt": "9999-12-31T23:30:00-01:00"]),
                ]
            },
            code: -32602, field: "runAt", echoesId: true),
        Case(
            name: "estimatedCompletionAt past 9999 by a leap second",
            frames: { id in
                [
                    [],
                    request(
                        "jobs.update",
                        ["jobId": id.json, "listenerId": "w1", "estimatedCompletionAt": "9999-12-31T23:59:60Z"]),
                ]
            },
            code: -32602, field: "estimatedCompletionAt", echoesId: true),
        // Unknown parameters, at the top and nested.
        Case(
            name: "jobs.update config",
            frames: { id in [[], request("jobs.update", ["jobId": id.json, "listenerId": "w1", "config": [:]])] },
            code: -32602, field: "config", echoesId: true),
        Case(
            name: "outcome.trigger",
            frames: { id in
                [
                    [],
                    request(
                        "jobs.complete",
                        ["jobId": id.json, "listenerId": "w1", "outcome": ["message": "m", "trigger": "automatic"]]),
                ]
            },
            code: -32602, field: "outcome.trigger", echoesId: true),
        Case(
            name: "outcome.next.sheetIds of clearFilters",
            frames: { id in
                [
                    [],
                    request(
                        "jobs.fail",
                        [
                            "jobId": id.json, "listenerId": "w1",
                            "outcome": ["next": ["type": "clearFilters", "sheetIds": ["s"]]],
                        ]),
                ]
            },
            code: -32602, field: "outcome.next.sheetIds", echoesId: true),
        Case(
            name: "create with managed",
            frames: { _ in
                [[], request("jobs.create", ["type": "w", "operation": "x", "source": "s", "managed": true])]
            },
            code: -32602, field: "managed", echoesId: true),
        Case(
            name: "a misspelled list filter", frames: { _ in [[], request("jobs.list", ["spcaeId": "us_sp_1"])] },
            code: -32602, field: "spcaeId", echoesId: true),
        Case(
            name: "broker.info with a param", frames: { _ in [[], request("broker.info", ["verbose": true])] },
            code: -32602, field: "verbose", echoesId: true),
        Case(
            name: "an action with a schedule",
            frames: { _ in
                [
                    [],
                    request(
                        "actions.mount",
                        ["domain": "workbook", "resourceId": "r", "action": ["operation": "o", "schedule": "daily"]]),
                ]
            },
            code: -32602, field: "action.schedule", echoesId: true),
        Case(
            name: "an action operation with a control character",
            frames: { _ in
                [
                    [],
                    request(
                        "actions.mount", ["domain": "workbook", "resourceId": "r", "action": ["operation": "o\u{0}"]]),
                ]
            },
            code: -32602, field: "action.operation", echoesId: true),
        Case(
            name: "an input form field with an unknown member",
            frames: { _ in
                [
                    [],
                    request(
                        "actions.mount",
                        [
                            "domain": "workbook", "resourceId": "r",
                            "action": [
                                "operation": "o",
                                "inputForm": [
                                    "type": "simple", "fields": [["key": "k", "type": "string", "size": 3]],
                                ],
                            ],
                        ]),
                ]
            },
            code: -32602, field: "action.inputForm.fields.0.size", echoesId: true),
    ]

    @Test(
        "a bad request gets its JSON-RPC error, changes nothing, and the broker serves on",
        .timeLimit(.minutes(1)))
    func badRequests() async throws {
        // One broker for the whole table: every case must leave it as it was for the next one.
        let scene = try await Scene.make()
        for item in Self.cases {
            let (frames, response) = try await scene.dealer.exchange(item.frames(scene.jobId))
            #expect(frames.count == (item.bare ? 1 : 2), "\(item.name): reply framing \(frames.map(\.count))")
            if !item.bare { #expect(frames.first == [], "\(item.name): no delimiter in the reply") }
            #expect(response.id == (item.echoesId ? .int(1) : .null), "\(item.name): reply id")
            guard case .failure(let error) = response.result else {
                Issue.record("\(item.name) succeeded")
                continue
            }
            #expect(error.code.rawValue == item.code, "\(item.name): \(error)")
            if let field = item.field { #expect(error.field == field, "\(item.name): \(error)") }
            if error.code.rawValue <= -32001 && error.code.rawValue >= -32007 {
                #expect(error.type != nil, "\(item.name): no data.type")
            }
            try await scene.expectUnchanged(item.name)
        }
        // The same connection still works after all of that.
        let (_, fine) = try await scene.dealer.exchange([[], Self.request("jobs.get", ["jobId": scene.jobId.json])])
        #expect(try fine.result.get()["id"] == scene.jobId.json)
        await scene.close()
    }

    @Test("a request's id is echoed byte for byte, also beyond 2^53 and past Int64", .timeLimit(.minutes(1)))
    func idsEchoedExactly() async throws {
        let scene = try await Scene.make()
        for id in ["9007199254740993", "18446744073709551617", "1.0", "1e2", "-0", #""\u0041""#] {
            for body in [
                #"{"jsonrpc":"2.0","id":\#(id),"method":"broker.info"}"#,
                #"{"jsonrpc":"2.0","id":\#(id),"method":"jobs.nope"}"#,
                #"{"jsonrpc":"2.0","id":\#(id),"method":"jobs.claim","params":{"jobs":"a:b"}}"#,
                #"{"id":\#(id),"method":"broker.info"}"#,
            ] {
                let (frames, _) = try await scene.dealer.exchange([[], Array(body.utf8)])
                let reply = String(decoding: frames.last ?? [], as: UTF8.self)
                #expect(reply.hasPrefix(#"{"jsonrpc":"2.0","id":\#(id),"#), "\(body) -> \(reply)")
            }
        }
        await scene.close()
    }

    @Test("a request without an id is answered with id null", .timeLimit(.minutes(1)))
    func notification() async throws {
        let scene = try await Scene.make()
        let (_, response) = try await scene.dealer.exchange(
            [[], Array(#"{"jsonrpc":"2.0","method":"jobs.get","params":{"jobId":"\#(scene.jobId)"}}"#.utf8)])
        #expect(response.id == .null)
        #expect(try response.result.get()["id"] == scene.jobId.json)
        await scene.close()
    }

    @Test(
        "an oversize request gets -32600, a far larger one loses its connection; others are served",
        .timeLimit(.minutes(1)))
    func oversize() async throws {
        let scene = try await Scene.make(arguments: ["--max-message-size", "2048"])
        func padded(_ size: Int) -> [UInt8] {
            RPCRequest(
                id: 1, method: "jobs.update",
                params: [
                    "jobId": scene.jobId.json, "listenerId": "w1", "info": .string(String(repeating: "x", count: size)),
                ]
            ).bytes
        }
        // Just under the limit is fine (and is a change, so take a new baseline after).
        let (_, small) = try await scene.dealer.exchange([[], padded(1900)])
        #expect((try? small.result.get()) != nil)
        let scene2 = Scene(
            harness: scene.harness, dealer: scene.dealer, jobId: scene.jobId,
            job: try await scene.harness.get(scene.jobId), info: try await scene.harness.info())
        let (_, big) = try await scene2.dealer.exchange([[], padded(4096)])
        #expect(big.id == .null)
        guard case .failure(let error) = big.result else {
            Issue.record("a 4 KiB request passed a 2 KiB limit")
            return
        }
        #expect(error.code == .invalidRequest)
        try await scene2.expectUnchanged("4 KiB")
        // Far beyond the limit libzmq drops the peer: no reply, nothing changes, others are served.
        let huge = try RawDealer(context: scene.harness.context, endpoint: scene.harness.process.commands)
        huge.send([[], padded(200_000)])
        // The dealer reconnects; the first reply it gets answers a request sent after the huge one (sent again
        // until one is answered: one sent before libzmq dropped the connection is lost with it).
        var after: [[UInt8]]?
        for attempt in 0..<30 where after == nil {
            huge.send([[], RPCRequest(id: .int(Int64(attempt)), method: "broker.info", params: [:]).bytes])
            after = try await huge.next(timeout: .seconds(1))
        }
        let reply = try RPCResponse.decode(try #require(after, "no reply to 30 requests after the huge one").last ?? [])
        #expect(reply.id.intValue != nil, "the first reply answers a later request, not the huge one: \(reply.id)")
        try await scene2.expectUnchanged("200 KB")
        await huge.close()
        await scene2.close()
    }

    @Test("a flood of garbage from one client does not starve or crash the broker", .timeLimit(.minutes(1)))
    func garbageFlood() async throws {
        let scene = try await Scene.make()
        var rng = SystemRandomNumberGenerator()
        for n in 0..<300 {
            let length = Int(rng.next() % 64)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if n % 3 == 0 { bytes = Array(#"{"jsonrpc":"2.0","id":{"x":1},"method":"broker.info"}"#.utf8) }
            scene.dealer.send(n % 7 == 0 ? [bytes] : [[], bytes])
        }
        let other = try scene.harness.newClient()
        let info = try #require(try await other.result("broker.info").objectValue)
        #expect(info == scene.info)
        // The replies to one connection come in the order of its requests: a last, well-formed request's
        // reply closes the count, whatever the machine's pace (the bound on each wait only fails).
        scene.dealer.send([[], Array(#"{"jsonrpc":"2.0","id":"last","method":"broker.info"}"#.utf8)])
        var replies = 0
        while true {
            let reply = try #require(try await scene.dealer.next(timeout: .seconds(30)), "after \(replies) replies")
            if (try? RPCResponse.decode(reply.last ?? []))?.id == "last" { break }
            replies += 1
        }
        #expect(replies == 300, "every request gets exactly one reply")
        try await scene.expectUnchanged("garbage")
        await other.close()
        await scene.close()
    }
}
