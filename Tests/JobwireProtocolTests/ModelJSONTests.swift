import JobwireProtocol
import Testing

/// Round trips of the wire model against literal JSON, compared after a trip through the codec so that
/// `0` and `0.0` count as the same number.
@Suite struct ModelJSONTests {
    func json(_ text: String) throws -> JSONValue { try JSONCodec.parse(text) }
    func normalized(_ object: JSONObject) throws -> JSONValue { try JSONCodec.parse(JSONCodec.encode(.object(object))) }

    static let envelope = """
        { "id": "us_evt_4kq2x9", "seq": 1042, "epoch": "b7f3c2a1",
          "topic": "job:ready", "domain": "job",
          "context": { "environmentId": "us_env_local", "spaceId": "us_sp_1", "workbookId": "us_wb_1",
                       "jobId": "us_jb_8f2k", "actorId": "us_usr_1" },
          "payload": { "job": "workbook:export", "domain": "workbook", "operation": "export",
                       "status": "ready", "isPart": false, "info": null, "input": {}, "progress": 0,
                       "attempt": 1 },
          "createdAt": "2026-11-29T02:00:00.123Z" }
        """

    @Test("The envelope of PROTOCOL.md §2 parses into an Event and re-encodes to an equal value")
    func envelope() throws {
        let value = try json(Self.envelope)
        let event = try Event(json: value)
        #expect(event.seq == 1042)
        #expect(event.epoch == "b7f3c2a1")
        #expect(event.subject == "workbook:export")
        #expect(event.payload["info"] == .null)
        #expect(event.context["actorId"] == "us_usr_1")
        #expect(event.createdAt.iso8601 == "2026-11-29T02:00:00.123Z")
        #expect(JSONValue.object(event.json) == value)
        #expect(event.frames[0] == Array("job:ready/workbook:export/".utf8))
        #expect(try Event(envelope: event.frames[1]) == event)
    }

    @Test("A heartbeat has no seq and an empty subject")
    func heartbeat() throws {
        let event = try Event(
            json: json(
                """
                {"id":"us_evt_h","topic":"broker:heartbeat","domain":"broker",
                 "payload":{"seq":7,"epoch":"e","startedAt":"2026-11-29T00:00:00.000Z"},"createdAt":"2026-11-29T02:00:00.000Z"}
                """))
        #expect(event.seq == nil)
        #expect(event.json["seq"] == nil)
        #expect(event.frames[0] == Array("broker:heartbeat//".utf8))
        #expect(TopicFrame.decode(event.frames[0])! == ("broker:heartbeat", ""))
    }

    @Test("A bad envelope names the field")
    func badEnvelope() throws {
        #expect(throws: FieldError(field: "createdAt", message: "createdAt is required")) {
            try Event(json: json(#"{"id":"e","topic":"t"}"#))
        }
        let error = try #require(throws: ProtocolError.self) {
            try Event(envelope: Array(#"{"id":"e","topic":"t","createdAt":"nope"}"#.utf8))
        }
        #expect(error.code == .invalidParams)
        #expect(error.field == "createdAt")
        #expect(throws: ProtocolError.self) { try Event(envelope: Array("{".utf8)) }
    }

    static let fullJob = """
        {"id":"us_jb_8f2k","type":"workbook","operation":"contacts:submit","source":"us_wb_1",
         "destination":"us_sh_2","trigger":"manual","mode":"toolbarBlocking","status":"executing","progress":42.5,
         "estimatedCompletionAt":"2026-11-29T02:05:00.000Z","info":"Halfway","input":{"dryRun":true},
         "config":{"sheet":"contacts"},"subject":{"type":"resource","id":"us_wb_1"},"metadata":{"k":[1,2]},
         "outcome":{"message":"Done","heading":"Export","acknowledge":true,"buttonText":"OK",
                    "hideDefaultButton":false,"next":{"type":"url","url":"https://example.com/x","label":"Open"}},
         "parentId":"us_jb_parent","part":3,"partData":{"part":3,"total":8},"partExecution":"sequential",
         "predecessorIds":["us_jb_a","us_jb_b"],"runAt":"2026-11-29T02:00:00.000Z","isPart":true,"attempt":2,
         "maxAttempts":5,"leaseSeconds":60,"priority":-7,
         "backoff":{"type":"exponential","delaySeconds":2,"maxDelaySeconds":60},"timeoutSeconds":300,
         "lease":{"owner":"exports-1","expiresAt":"2026-11-29T02:01:00.500Z","timesOutAt":"2026-11-29T02:05:01.000Z"},
         "environmentId":"us_env_local","spaceId":"us_sp_1","workbookId":"us_wb_1","sheetId":"us_sh_1",
         "fileId":"us_fl_1","documentId":"us_dc_1","actorId":"us_usr_1",
         "createdAt":"2026-11-29T01:59:00.000Z","updatedAt":"2026-11-29T02:00:30.000Z",
         "startedAt":"2026-11-29T02:00:01.000Z","finishedAt":"2026-11-29T02:04:00.000Z",
         "outcomeAcknowledgedAt":"2026-11-29T02:04:30.000Z"}
        """

    @Test("A job with every field round-trips")
    func fullJob() throws {
        let value = try json(Self.fullJob)
        let job = try Job(json: value)
        #expect(job.name == "workbook:contacts:submit")
        #expect(job.status == .executing)
        #expect(
            job.lease
                == Lease(
                    owner: "exports-1", expiresAt: Timestamp(iso8601: "2026-11-29T02:01:00.500Z")!,
                    timesOutAt: Timestamp(iso8601: "2026-11-29T02:05:01.000Z")!))
        #expect(job.priority == -7)
        #expect(job.backoff == Backoff(type: .exponential, delaySeconds: 2, maxDelaySeconds: 60))
        #expect(job.timeoutSeconds == 300)
        #expect(job.partExecution == .sequential)
        #expect(job.outcome?.next == .url(url: "https://example.com/x", label: "Open"))
        #expect(job.predecessorIds == ["us_jb_a", "us_jb_b"])
        #expect(try normalized(job.json) == value)
        #expect(try Job(json: .object(job.json)) == job)
    }

    @Test("A minimal job gets its defaults and writes explicit nulls")
    func minimalJob() throws {
        let job = try Job(
            json: json(
                #"{"id":"j","type":"file","operation":"extract","status":"ready","createdAt":"2026-11-29T02:00:00.000Z"}"#
            ))
        #expect(job.trigger == .immediate)
        #expect(job.mode == .background)
        #expect(job.attempt == 1 && job.maxAttempts == 3 && job.leaseSeconds == 30)
        #expect(job.updatedAt == job.createdAt)
        #expect(job.json["lease"] == .null)
        #expect(job.json["outcome"] == .null)
        #expect(job.json["isPart"] == false)
        #expect(job.priority == 0 && job.json["priority"] == 0)
        #expect(job.backoff == nil && job.json["backoff"] == nil)
        #expect(job.timeoutSeconds == nil && job.json["timeoutSeconds"] == nil)
    }

    @Test("JobStatus accepts cancelled on input and writes canceled")
    func cancelled() throws {
        #expect(JobStatus(wire: "cancelled") == .canceled)
        #expect(JobStatus(wire: "canceled") == .canceled)
        #expect(JobStatus(wire: "Canceled") == nil)
        var text = Self.fullJob.replacing(#""status":"executing""#, with: #""status":"cancelled""#)
        var job = try Job(json: json(text))
        #expect(job.status == .canceled)
        #expect(job.json["status"] == "canceled")
        text = text.replacing(#""status":"cancelled""#, with: #""status":"paused""#)
        #expect(throws: FieldError.self) { job = try Job(json: json(text)) }
    }

    @Test(
        "Wrong fields are named by their dotted path",
        arguments: [
            (#""next":{"type":"url""#, #""next":{"kind":"url""#, "outcome.next.type"),
            (#""next":{"type":"url""#, #""next":{"type":"teleport""#, "outcome.next.type"),
            (#""next":{"type":"url""#, #""next":{"type":7"#, "outcome.next.type"),
            (#""expiresAt":"2026-11-29T02:01:00.500Z""#, #""expiresAt":"soon""#, "lease.expiresAt"),
            (#""expiresAt":"2026-11-29T02:01:00.500Z""#, #""expiry":"2026-11-29T02:01:00.500Z""#, "lease.expiresAt"),
            (#""owner":"exports-1""#, #""owner":1"#, "lease.owner"),
            (#""acknowledge":true"#, #""acknowledge":"yes""#, "outcome.acknowledge"),
            (#""mode":"toolbarBlocking""#, #""mode":"loud""#, "mode"),
            (#""part":3"#, #""part":3.5"#, "part"),
            (#""predecessorIds":["us_jb_a","us_jb_b"]"#, #""predecessorIds":["us_jb_a",2]"#, "predecessorIds.1"),
            (#""progress":42.5"#, #""progress":"half""#, "progress"),
            (#""lease":{"#, #""lease":7,"x":{"#, "lease"),
        ])
    func fieldErrors(original: String, replacement: String, field: String) throws {
        let text = Self.fullJob.replacing(original, with: replacement)
        #expect(text != Self.fullJob)
        let error = try #require(throws: FieldError.self) { try Job(json: json(text)) }
        #expect(error.field == field)
        #expect(error.message.contains(field))
    }

    @Test(
        "Every outcome next variant round-trips",
        arguments: [
            #"{"type":"id","id":"us_sh_1","label":"Go","path":"/sheets","query":"a=1"}"#,
            #"{"type":"url","url":"https://example.com","label":"Open"}"#,
            #"{"type":"download","url":"https://example.com/f.csv","label":"Get","fileName":"f.csv"}"#,
            #"{"type":"files","files":[{"fileId":"us_fl_1","label":"A"},{"fileId":"us_fl_2"}],"label":"Files"}"#,
            #"{"type":"snapshot","snapshotId":"us_ss_1","sheetId":"us_sh_1","label":"Restore"}"#,
            #"{"type":"view","sheetId":"us_sh_1","hiddenColumns":["a","b"],"label":"View"}"#,
            #"{"type":"retry","label":"Again"}"#,
            #"{"type":"wait","fade":true,"confetti":true}"#,
            #"{"type":"wait"}"#,
            #"{"type":"clearFilters","label":"Clear"}"#,
        ])
    func outcomeNext(next: String) throws {
        let value = try json(
            #"{"message":"m","heading":"h","acknowledge":false,"buttonText":"b","hideDefaultButton":true,"next":"#
                + next + "}")
        let outcome = try Outcome(json: value)
        #expect(outcome.next.map { OutcomeNext.types.contains($0.type) } == true)
        #expect(try normalized(outcome.json) == value)
        #expect(try Outcome(json: .object(outcome.json)) == outcome)
    }

    @Test("A files outcome names the broken file by index")
    func filesIndex() throws {
        let value = try json(#"{"next":{"type":"files","files":[{"fileId":"a"},{"label":"x"}]}}"#)
        let error = try #require(throws: FieldError.self) { try Outcome(json: value) }
        #expect(error.field == "outcome.next.files.1.fileId")
    }

    @Test("An action round-trips and lists its required inputs")
    func action() throws {
        let value = try json(
            """
            {"id":"us_ac_1","domain":"workbook","resourceId":"us_wb_1","operation":"export","label":"Export",
             "mode":"foreground","description":"Export it","tooltip":"tip","primary":true,"confirm":false,
             "inputForm":{"type":"simple","fields":[{"key":"email","label":"Email","type":"string",
               "constraints":[{"type":"required"}]},{"key":"note","type":"string"}]},
             "constraints":[{"type":"hasData"}],"messages":[{"type":"info","content":"hi"}],
             "createdAt":"2026-11-29T02:00:00.000Z"}
            """)
        let action = try Action(json: value)
        #expect(action.requiredInputKeys == ["email"])
        #expect(try normalized(action.json) == value)
        #expect(try Action(json: .object(action.json)) == action)
        let error = try #require(throws: FieldError.self) {
            try Action(json: json(#"{"operation":"a/b"}"#), id: "x", domain: "d", resourceId: "r")
        }
        #expect(error.field == "action.operation")
        let formError = try #require(throws: FieldError.self) {
            try Action(json: json(#"{"operation":"a","inputForm":[1]}"#), id: "x", domain: "d", resourceId: "r")
        }
        #expect(formError.field == "action.inputForm")
    }
}
