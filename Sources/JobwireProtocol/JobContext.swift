/// The resource ids a job carries (PROTOCOL.md §2 and §3): members of the job itself, and the `context` of its
/// events, where the job's own id comes before `actorId`.
///
/// This is the one list of them and of their wire order: the job's JSON, the event envelope, `jobs.create`'s
/// params and the store all read and write them through it.
public struct JobContext: Sendable, Hashable {
    public var environmentId: String?
    public var spaceId: String?
    public var workbookId: String?
    public var sheetId: String?
    public var fileId: String?
    public var documentId: String?
    public var actorId: String?

    public init(
        environmentId: String? = nil, spaceId: String? = nil, workbookId: String? = nil, sheetId: String? = nil,
        fileId: String? = nil, documentId: String? = nil, actorId: String? = nil
    ) {
        self.environmentId = environmentId
        self.spaceId = spaceId
        self.workbookId = workbookId
        self.sheetId = sheetId
        self.fileId = fileId
        self.documentId = documentId
        self.actorId = actorId
    }

    /// The keys, in wire order (an event's `context` adds `jobId` before `actorId`).
    public static let keys: [String] = [
        "environmentId", "spaceId", "workbookId", "sheetId", "fileId", "documentId", "actorId",
    ]

    /// The id under one of ``keys``; nil for any other key.
    public subscript(key: String) -> String? {
        get {
            switch key {
            case "environmentId": environmentId
            case "spaceId": spaceId
            case "workbookId": workbookId
            case "sheetId": sheetId
            case "fileId": fileId
            case "documentId": documentId
            case "actorId": actorId
            default: nil
            }
        }
        set {
            switch key {
            case "environmentId": environmentId = newValue
            case "spaceId": spaceId = newValue
            case "workbookId": workbookId = newValue
            case "sheetId": sheetId = newValue
            case "fileId": fileId = newValue
            case "documentId": documentId = newValue
            case "actorId": actorId = newValue
            default: break
            }
        }
    }

    /// Calls `body` with each id present, in wire order, and with `jobId` (when given) before `actorId`.
    public func visit(jobId: String? = nil, _ body: (StaticString, String) -> Void) {
        if let environmentId { body("environmentId", environmentId) }
        if let spaceId { body("spaceId", spaceId) }
        if let workbookId { body("workbookId", workbookId) }
        if let sheetId { body("sheetId", sheetId) }
        if let fileId { body("fileId", fileId) }
        if let documentId { body("documentId", documentId) }
        if let jobId { body("jobId", jobId) }
        if let actorId { body("actorId", actorId) }
    }

    /// Writes the ids present as members of `writer`, `jobId` (when given) before `actorId`.
    public func write(into writer: inout JSONObjectWriter, jobId: String? = nil) {
        visit(jobId: jobId) { key, value in writer.string(key, value) }
    }

    /// An event's `context` object: the ids present and the job's id.
    public func eventContext(jobId: String) -> JSONObject {
        var object = JSONObject()
        visit(jobId: jobId) { key, value in object.append("\(key)", .string(value)) }
        return object
    }

    /// Reads the ids of ``keys`` from an object (a job, or an event's `context`).
    init(reader r: FieldReader) throws(FieldError) {
        self.init()
        for key in JobContext.keys { self[key] = try r.string(key) }
    }
}

extension Job {
    /// The resource ids the job carries into its events' `context`.
    public var context: JobContext {
        get {
            JobContext(
                environmentId: environmentId, spaceId: spaceId, workbookId: workbookId, sheetId: sheetId,
                fileId: fileId,
                documentId: documentId, actorId: actorId)
        }
        set {
            environmentId = newValue.environmentId
            spaceId = newValue.spaceId
            workbookId = newValue.workbookId
            sheetId = newValue.sheetId
            fileId = newValue.fileId
            documentId = newValue.documentId
            actorId = newValue.actorId
        }
    }
}
