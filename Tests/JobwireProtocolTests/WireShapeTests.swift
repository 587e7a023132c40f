import JobwireProtocol
import Testing

/// The envelope and the job's context ids are written in one place each; these pin their bytes.
@Suite struct WireShapeTests {
    static let createdAt = Timestamp(iso8601: "2026-11-29T02:00:00.123Z")!

    static func job() -> Job {
        var job = Job(
            id: "us_jb_1", type: "workbook", operation: "export", source: "us_wb_1", createdAt: createdAt)
        job.status = .ready
        job.attempt = 2
        job.context = JobContext(
            environmentId: "us_env_1", spaceId: "us_sp_1", workbookId: "us_wb_1", sheetId: "us_sh_1",
            fileId: "us_fl_1", documentId: "us_dc_1", actorId: "us_usr_1")
        return job
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test("a job event's envelope has PROTOCOL.md §2's members, the context ids in order with jobId before actorId")
    func jobEnvelope() {
        let bytes = Event.jobEnvelope(
            id: { $0.append(contentsOf: Array(#""us_evt_7""#.utf8)) }, seq: 7, epoch: "ep1", topic: "job:ready",
            job: Self.job(), createdAt: Self.createdAt)
        let expected =
            #"{"id":"us_evt_7","seq":7,"epoch":"ep1","topic":"job:ready","domain":"job","#
            + #""context":{"environmentId":"us_env_1","spaceId":"us_sp_1","workbookId":"us_wb_1","#
            + #""sheetId":"us_sh_1","fileId":"us_fl_1","documentId":"us_dc_1","jobId":"us_jb_1","actorId":"us_usr_1"},"#
            + #""payload":{"job":"workbook:export","domain":"workbook","operation":"export","status":"ready","#
            + #""isPart":false,"info":null,"input":{},"progress":0,"attempt":2,"mode":"background","priority":0},"#
            + #""createdAt":"2026-11-29T02:00:00.123Z"}"#
        #expect(Self.text(bytes) == expected)
    }

    @Test("a part's event carries its parent, part and partData; job:parts-completed carries the counts")
    func partEnvelope() {
        var job = Self.job()
        job.context = JobContext()
        job.parentId = "us_jb_0"
        job.part = 3
        job.partData = ["part": 3, "total": 4]
        let bytes = Event.jobEnvelope(
            id: { $0.append(contentsOf: Array(#""e""#.utf8)) }, seq: 9, epoch: "ep1", topic: "job:parts-completed",
            job: job, parts: .init(total: 4, completed: 2, failed: 1, canceled: 1), createdAt: Self.createdAt)
        let expected =
            #"{"id":"e","seq":9,"epoch":"ep1","topic":"job:parts-completed","domain":"job","#
            + #""context":{"jobId":"us_jb_1"},"#
            + #""payload":{"job":"workbook:export","domain":"workbook","operation":"export","status":"ready","#
            + #""isPart":true,"info":null,"input":{},"progress":0,"attempt":2,"mode":"background","priority":0,"#
            + #""parentId":"us_jb_0","part":3,"partData":{"part":3,"total":4},"#
            + #""parts":{"total":4,"completed":2,"failed":1,"canceled":1}},"#
            + #""createdAt":"2026-11-29T02:00:00.123Z"}"#
        #expect(Self.text(bytes) == expected)
    }

    @Test("an Event's envelope bytes are the codec's encoding of its members in wire order, and read back equal")
    func eventRoundTrip() throws {
        let event = Event(
            job: Self.job(), topic: "job:updated", id: "us_evt_x", seq: 12, epoch: "ep2", createdAt: Self.createdAt)
        var object = JSONObject()
        object.append("id", "us_evt_x")
        object.append("seq", 12)
        object.append("epoch", "ep2")
        object.append("topic", "job:updated")
        object.append("domain", "job")
        object.append("context", .object(event.context))
        object.append("payload", .object(event.payload))
        object.append("createdAt", "2026-11-29T02:00:00.123Z")
        #expect(event.envelopeBytes == JSONCodec.encode(.object(object)))
        #expect(try Event(envelope: event.frames[1]) == event)
        #expect(event.frames[0] == Array("job:updated/workbook:export/".utf8))
        #expect(event.context == Self.job().context.eventContext(jobId: "us_jb_1"))
    }

    @Test("an event made for a job found by listing (no id, no seq) has the context and payload the broker writes")
    func eventForListedJob() throws {
        let job = Self.job()
        let event = Event(job: job, topic: "job:ready", id: "", seq: nil, epoch: nil, createdAt: job.updatedAt)
        let published = try Event(
            envelope: Event.jobEnvelope(
                id: { $0.append(contentsOf: Array(#""e""#.utf8)) }, seq: 1, epoch: "ep", topic: "job:ready", job: job,
                createdAt: job.updatedAt))
        #expect(event.id == "")
        #expect(event.seq == nil)
        #expect(event.context == published.context)
        #expect(event.payload == published.payload)
    }

    @Test("a heartbeat's envelope has no seq, epoch or context ids")
    func heartbeat() {
        let event = Event(
            id: "us_evt_hb", seq: nil, epoch: nil, topic: "broker:heartbeat", domain: "broker", context: [:],
            payload: ["seq": 3, "epoch": "ep"], createdAt: Self.createdAt)
        #expect(
            Self.text(event.frames[1])
                == #"{"id":"us_evt_hb","topic":"broker:heartbeat","domain":"broker","context":{},"#
                + #""payload":{"seq":3,"epoch":"ep"},"createdAt":"2026-11-29T02:00:00.123Z"}"#)
    }

    @Test("a job's context ids are members of its JSON in key order, and read back")
    func jobContext() throws {
        let job = Self.job()
        let text = Self.text(job.jsonBytes)
        #expect(
            text.contains(
                #""environmentId":"us_env_1","spaceId":"us_sp_1","workbookId":"us_wb_1","sheetId":"us_sh_1","#
                    + #""fileId":"us_fl_1","documentId":"us_dc_1","actorId":"us_usr_1","createdAt""#))
        let read = try Job(json: JSONCodec.parse(job.jsonBytes))
        #expect(read.context == job.context)
        #expect(read == job)
        var keys: [String] = []
        job.context.visit { key, _ in keys.append("\(key)") }
        #expect(keys == JobContext.keys)
        for key in JobContext.keys { #expect(job.context[key] != nil, "\(key)") }
    }
}
