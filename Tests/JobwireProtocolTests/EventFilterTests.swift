import JobwireProtocol
import Testing

@Suite struct EventFilterTests {
    /// The envelope of PROTOCOL.md §2, with slugs, namespaces and a commit actor added.
    static let event = Event(
        id: "us_evt_4kq2x9", seq: 1042, epoch: "b7f3c2a1", topic: "job:ready", domain: "job",
        context: [
            "environmentId": "us_env_local", "spaceId": "us_sp_1", "workbookId": "us_wb_1", "jobId": "us_jb_8f2k",
            "actorId": "us_jb_7xk2", "slugs": ["sheet": "contacts", "workbook": "crm"],
            "namespaces": ["space:green", "workbook:red"],
        ],
        payload: [
            "job": "workbook:export", "domain": "workbook", "operation": "export", "status": "ready",
            "isPart": false, "info": nil, "input": ["status": "draft", "count": 1], "progress": 0, "attempt": 1,
        ],
        createdAt: Timestamp(iso8601: "2026-11-29T02:00:00.123Z")!)

    static func job(_ name: String, operation: String = "x", extra: JSONObject = [:]) -> Event {
        var payload: JSONObject = ["job": .string(name), "operation": .string(operation), "status": "ready"]
        for (key, value) in extra { payload[key] = value }
        return Event(
            id: "us_evt_1", seq: 1, epoch: nil, topic: "job:ready", domain: "job", context: [:], payload: payload,
            createdAt: Timestamp(milliseconds: 0))
    }

    @Test("An empty filter matches every event")
    func emptyFilter() {
        #expect(EventFilter([:]).matches(Self.event))
        #expect(EventFilter.all.matches(Self.job("a:b")))
        #expect(EventFilter.all.isEmpty)
    }

    @Test("A key without . or * matches at any depth, as a path suffix")
    func endsWith() {
        #expect(EventFilter(["job": "workbook:export"]).matches(Self.event))
        #expect(EventFilter(["sheet": "contacts"]).matches(Self.event))
        #expect(EventFilter(["jobId": "us_jb_8f2k"]).matches(Self.event))
        #expect(EventFilter(["topic": "job:ready"]).matches(Self.event))
        #expect(!EventFilter(["job": "workbook:import"]).matches(Self.event))
        // A suffix means a whole last segment, not the end of a name.
        #expect(!EventFilter(["Id": "us_sp_1"]).matches(Self.event))
    }

    @Test("{job: \"*\"} does not match space:configure; *:* and ** do")
    func starRespectsTheSeparator() {
        let event = Self.job("space:configure")
        #expect(!EventFilter(["job": "*"]).matches(event))
        #expect(EventFilter(["job": "*:*"]).matches(event))
        #expect(EventFilter(["job": "**"]).matches(event))
    }

    @Test("{job: \"file:extract*\"} matches the extract jobs")
    func prefixValueGlob() {
        let filter = EventFilter(["job": "file:extract*"])
        #expect(filter.matches(Self.job("file:extract-plugin-csv")))
        #expect(filter.matches(Self.job("file:extract")))
        #expect(!filter.matches(Self.job("file:delete")))
        #expect(!filter.matches(Self.job("workbook:extract")))
    }

    @Test("{operation: \"extract-plugin-csv\"} matches payload.operation")
    func operationSuffix() {
        let event = Self.job("file:extract-plugin-csv", operation: "extract-plugin-csv")
        #expect(EventFilter(["operation": "extract-plugin-csv"]).matches(event))
        #expect(!EventFilter(["operation": "extract-plugin-xlsx"]).matches(event))
    }

    @Test("A dotted key matches only that path from the top")
    func dottedKeyIsAnchored() {
        // payload.input.status is "draft", payload.status is "ready".
        #expect(EventFilter(["payload.status": "ready"]).matches(Self.event))
        #expect(!EventFilter(["payload.status": "draft"]).matches(Self.event))
        #expect(EventFilter(["status": "draft"]).matches(Self.event))
        #expect(!EventFilter(["input.status": "draft"]).matches(Self.event))
        #expect(EventFilter(["payload.input.status": "draft"]).matches(Self.event))
        #expect(EventFilter(["context.slugs.*": "crm"]).matches(Self.event))
        #expect(EventFilter(["**.status": "draft"]).matches(Self.event))
    }

    @Test("A nested filter object is flattened into dotted keys")
    func nestedFilterObject() {
        #expect(EventFilter(["payload": ["status": "ready"]]).matches(Self.event))
        #expect(!EventFilter(["payload": ["status": "draft"]]).matches(Self.event))
    }

    @Test("{isPart: false} matches false but not a missing isPart")
    func strictBooleans() {
        #expect(EventFilter(["isPart": false]).matches(Self.event))
        #expect(!EventFilter(["isPart": true]).matches(Self.event))
        #expect(!EventFilter(["isPart": false]).matches(Self.job("a:b")))
        // Strict: a boolean never equals the string "false".
        #expect(!EventFilter(["isPart": false]).matches(Self.job("a:b", extra: ["isPart": "false"])))
    }

    @Test("{actorId: \"us_jb*\"} matches changes a job made")
    func actorPrefix() {
        #expect(EventFilter(["actorId": "us_jb*"]).matches(Self.event))
        #expect(!EventFilter(["actorId": "us_usr*"]).matches(Self.event))
    }

    @Test("An array of filter values means any of them")
    func arrayFilterValues() {
        #expect(EventFilter(["job": ["sheet:validate", "workbook:export"]]).matches(Self.event))
        #expect(!EventFilter(["job": ["sheet:validate", "file:extract"]]).matches(Self.event))
        #expect(EventFilter(["progress": [5, 0]]).matches(Self.event))
        #expect(!EventFilter(["job": []]).matches(Self.event))
    }

    @Test("An array in the event matches when any element does")
    func arrayEventValues() {
        #expect(EventFilter(["namespaces": "space:green"]).matches(Self.event))
        #expect(EventFilter(["namespaces": "workbook:*"]).matches(Self.event))
        #expect(!EventFilter(["namespaces": "space:blue"]).matches(Self.event))
        let tagged = Self.job("a:b", extra: ["tags": [1, 2, 3]])
        #expect(EventFilter(["tags": 2]).matches(tagged))
        #expect(!EventFilter(["tags": 4]).matches(tagged))
        #expect(!EventFilter(["tags": nil]).matches(Self.job("a:b", extra: ["tags": []])))
    }

    @Test("A string filter value matches the string form of a number or boolean")
    func stringCoercion() {
        #expect(EventFilter(["attempt": "1"]).matches(Self.event))
        #expect(EventFilter(["foo": "1"]).matches(Self.job("a:b", extra: ["foo": 1])))
        #expect(EventFilter(["foo": "1"]).matches(Self.job("a:b", extra: ["foo": 1.0])))
        #expect(EventFilter(["foo": "0.5"]).matches(Self.job("a:b", extra: ["foo": 0.5])))
        #expect(EventFilter(["isPart": "false"]).matches(Self.event))
        #expect(EventFilter(["foo": "1e+21"]).matches(Self.job("a:b", extra: ["foo": 1e21])))
        #expect(EventFilter(["foo": "1?"]).matches(Self.job("a:b", extra: ["foo": 12])))
        // A number filter does not match a string, though.
        #expect(!EventFilter(["foo": 1]).matches(Self.job("a:b", extra: ["foo": "1"])))
        #expect(EventFilter(["foo": 1]).matches(Self.job("a:b", extra: ["foo": 1.0])))
    }

    @Test(
        "Numbers print as JavaScript prints them",
        arguments: [
            (1.0, "1"), (0.5, "0.5"), (-2.25, "-2.25"), (100.0, "100"), (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (0.000001, "0.000001"), (1e-7, "1e-7"), (123.456, "123.456"), (1.5e-10, "1.5e-10"), (-0.0, "0"),
        ])
    func javaScriptNumbers(number: Double, text: String) {
        #expect(EventFilter(["n": .string(text)]).matches(Self.job("a:b", extra: ["n": .double(number)])))
    }

    @Test("A null filter matches null and missing values, and nothing else")
    func nullFilter() {
        #expect(EventFilter(["info": nil]).matches(Self.event))
        #expect(EventFilter(["missingKey": nil]).matches(Self.event))
        #expect(!EventFilter(["status": nil]).matches(Self.event))
        #expect(!EventFilter(["info": "*"]).matches(Self.event))
        #expect(!EventFilter(["info": false]).matches(Self.event))
        #expect(!EventFilter(["missingKey": "**"]).matches(Self.event))
        #expect(EventFilter(["info": ["x", nil]]).matches(Self.event))
    }

    @Test("Every key must match")
    func and() {
        #expect(EventFilter(["domain": "job", "payload.job": "workbook:export"]).matches(Self.event))
        #expect(!EventFilter(["domain": "job", "payload.job": "space:configure"]).matches(Self.event))
        #expect(!EventFilter(["domain": "file", "payload.job": "workbook:export"]).matches(Self.event))
    }

    @Test("Matching is case-sensitive in keys and values")
    func caseSensitive() {
        #expect(!EventFilter(["job": "Workbook:Export"]).matches(Self.event))
        #expect(!EventFilter(["JOB": "workbook:export"]).matches(Self.event))
    }

    @Test("A primitive filter matches that value anywhere")
    func primitiveFilter() {
        #expect(EventFilter(.string("us_sp_1")).matches(Self.event))
        #expect(EventFilter(.string("us_wb_*")).matches(Self.event))
        #expect(!EventFilter(.string("us_sp_2")).matches(Self.event))
        #expect(EventFilter(.int(1042 - 1041)).matches(Self.event))
        #expect(EventFilter(.bool(false)).matches(Self.event))
        #expect(!EventFilter(.bool(true)).matches(Self.event))
    }

    @Test("An empty string in the event never matches a string filter; an empty string filter is **")
    func emptyStrings() {
        let event = Self.job("a:b", extra: ["note": ""])
        #expect(!EventFilter(["note": "**"]).matches(event))
        #expect(!EventFilter(["note": ""]).matches(event))
        #expect(EventFilter(["job": ""]).matches(event))
    }

    @Test("Combined filters match only what both match")
    func combined() {
        let space = EventFilter(["spaceId": "us_sp_1"])
        let export = EventFilter(["job": "workbook:export"])
        #expect(space.combined(with: export).matches(Self.event))
        #expect(!space.combined(with: EventFilter(["job": "file:*"])).matches(Self.event))
        #expect(!EventFilter(["spaceId": "us_sp_2"]).combined(with: export).matches(Self.event))
        #expect(EventFilter.all.combined(with: .all).isEmpty)
        #expect(space.combined(with: .all) == space)
    }

    @Test("The event's top-level fields are there to filter on")
    func topLevelFields() {
        #expect(EventFilter(["id": "us_evt_*"]).matches(Self.event))
        #expect(EventFilter(["domain": "job"]).matches(Self.event))
        // `:` separates value segments, so a time needs one `*` per segment.
        #expect(EventFilter(["createdAt": "2026-11-29T02:*:*"]).matches(Self.event))
        #expect(!EventFilter(["createdAt": "2026-11-29T*"]).matches(Self.event))
        #expect(EventFilter(["context.environmentId": "us_env_local"]).matches(Self.event))
    }

    @Test("One flattened event serves many filters")
    func flattenOnce() {
        let flat = FlatJSONObject(Self.event)
        #expect(flat.entries.contains { $0.path == "context.slugs.sheet" && $0.value == "contacts" })
        #expect(flat.entries.contains { $0.path == "payload.input.count" && $0.value == 1 })
        #expect(EventFilter(["job": "workbook:*"]).matches(flat))
        #expect(!EventFilter(["job": "sheet:*"]).matches(flat))
    }

    @Test("Arrays and empty objects are leaves when flattening")
    func flattenLeaves() {
        let flat = FlatJSONObject(["a": ["b": [1, ["c": 2]], "e": [:]]])
        #expect(flat.entries.map(\.path) == ["a.b", "a.e"])
        #expect(EventFilter(["e": "[object Object]"]).matches(["a": ["e": [:]]] as JSONObject))
    }
}
