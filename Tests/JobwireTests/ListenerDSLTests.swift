import JobwireTestSupport
import Testing

@testable import Jobwire

@Suite struct ListenerDSLTests {
    /// An event as the broker publishes it.
    static func event(_ topic: String, job: String = "workbook:export", seq: Int64 = 1, context: JSONObject = [:])
        -> Event
    {
        var fullContext: JSONObject = ["jobId": "us_jb_1"]
        for (key, value) in context { fullContext[key] = value }
        let parts = job.split(separator: ":", maxSplits: 1).map(String.init)
        return Event(
            id: "us_evt_\(seq)", seq: seq, epoch: "e", topic: topic, domain: "job", context: fullContext,
            payload: [
                "job": .string(job), "domain": .string(parts[0]), "operation": .string(parts.count > 1 ? parts[1] : ""),
                "status": "ready", "isPart": false,
            ], createdAt: .now())
    }

    /// The names of the handlers that run for `event`, in the order they run.
    static func run(_ listener: Listener, _ event: Event, log: Locked<[String]>) async throws -> [String] {
        log.withLock { $0 = [] }
        let client = try JobsClient(commands: "inproc://nobody")
        let matching = listener.routes.filter { $0.matches(event) }
        await Runtime.runHandlers(
            matching, ListenerEvent(event: event, isReplay: false, client: client, runtime: nil),
            logger: listener.logger)
        return log.withLock { $0 }
    }

    struct Boom: Error {}

    @Test("topics, globs, job names and filters select handlers, in the order written")
    func matching() async throws {
        let log = Locked<[String]>([])
        func record(_ name: String) -> EventHandler { { _ in log.withLock { $0.append(name) } } }
        let listener = Listener(name: "dsl") {
            on("job:ready", record("ready"))
            on("job:*", record("job:*"))
            on("*:ready", record("*:ready"))
            on(["job:failed", "job:completed"], record("ended"))
            on("**", record("**"))
            on("*", record("*"))
            on("job:ready", job: "workbook:*", record("workbook:*"))
            on("job:ready", job: "sheet:validate", record("sheet"))
            on("job:ready", filter: ["job": "workbook:export", "isPart": false], record("filter"))
            on("job:ready", filter: ["isPart": true], record("parts"))
            on("job:ready") { _ in throw Boom() }
            on("job:ready", filter: ["payload.status": "ready"], record("after-error"))
        }
        #expect(
            try await Self.run(listener, Self.event("job:ready"), log: log) == [
                "ready", "job:*", "*:ready", "**", "workbook:*", "filter", "after-error",
            ])
        #expect(try await Self.run(listener, Self.event("job:completed"), log: log) == ["job:*", "ended", "**"])
        #expect(
            try await Self.run(listener, Self.event("job:ready", job: "sheet:validate"), log: log) == [
                "ready", "job:*", "*:ready", "**", "sheet", "after-error",
            ])
    }

    @Test("filter and namespace groups AND with their children, nested, and plugins run where used")
    func groups() async throws {
        let log = Locked<[String]>([])
        func record(_ name: String) -> EventHandler { { _ in log.withLock { $0.append(name) } } }
        func audit(_ listener: ListenerRoutes) {
            listener.on("job:*") { _ in log.withLock { $0.append("plugin") } }
            listener.filter(["spaceId": "us_sp_1"]) { space in
                space.on("job:ready") { _ in log.withLock { $0.append("plugin-space") } }
            }
        }
        let listener = Listener(name: "dsl") {
            on("job:ready", record("first"))
            use(audit)
            filter(["spaceId": "us_sp_1"]) {
                on("job:ready", record("space"))
                filter(["job": "workbook:*"]) {
                    on("job:ready", record("space+workbook"))
                }
                on("job:ready", filter: ["workbookId": "us_wb_9"], record("space+wb9"))
            }
            namespace("space:red") {
                on("job:ready", record("red"))
            }
            for name in ["loop-a", "loop-b"] {
                on("job:ready", record(name))
            }
            if Bool(true) { on("job:ready", record("if")) }
        }
        let inSpace = Self.event("job:ready", context: ["spaceId": "us_sp_1"])
        #expect(
            try await Self.run(listener, inSpace, log: log) == [
                "first", "plugin", "plugin-space", "space", "space+workbook", "loop-a", "loop-b", "if",
            ])
        let elsewhere = Self.event("job:ready", job: "sheet:validate", context: ["spaceId": "us_sp_2"])
        #expect(try await Self.run(listener, elsewhere, log: log) == ["first", "plugin", "loop-a", "loop-b", "if"])
        let red = Self.event("job:ready", job: "sheet:validate", context: ["namespaces": ["space:red"]])
        #expect(try await Self.run(listener, red, log: log).contains("red"))
    }

    @Test("the listener subscribes to the narrowest prefixes, heartbeats last")
    func prefixes() {
        let narrow = Listener(name: "p") {
            on("job:ready", job: "workbook:export") { _ in }
            on("job:completed", job: "workbook:*") { _ in }
            jobHandler("sheet:validate") { _, _ in nil }
        }
        #expect(
            narrow.subscriptionPrefixes == [
                "job:ready/workbook:export/", "job:completed/workbook:", "job:updated/sheet:validate/",
                "broker:heartbeat/",
            ])
        let wide = Listener(name: "p") {
            on("job:ready", job: "workbook:export") { _ in }
            on("job:*") { _ in }
        }
        #expect(wide.subscriptionPrefixes == ["job:", "broker:heartbeat/"])
        // A filtered jobHandler takes its jobs from job:ready events instead of jobs.claim.
        let filtered = Listener(name: "p") {
            jobHandler(filter: ["job": "sheet:*", "isPart": false]) { _, _ in nil }
            jobHandler(filter: ["job": "file:extract"]) { _, _ in nil }
        }
        #expect(filtered.claimWorkers.map(\.claimGlobs) == [["file:extract"]])
        #expect(filtered.routes.count == 1)
    }
}
