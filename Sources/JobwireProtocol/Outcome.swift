/// What a finished job tells its user (Flatfile's `JobOutcome`).
public struct Outcome: Sendable, Hashable {
    public var message: String?
    public var heading: String?
    /// `true` shows a modal the user must dismiss (which fires `job:outcome-acknowledged`); otherwise a toast.
    public var acknowledge: Bool?
    public var buttonText: String?
    public var hideDefaultButton: Bool?
    public var next: OutcomeNext?

    public init(
        message: String? = nil, heading: String? = nil, acknowledge: Bool? = nil, buttonText: String? = nil,
        hideDefaultButton: Bool? = nil, next: OutcomeNext? = nil
    ) {
        self.message = message
        self.heading = heading
        self.acknowledge = acknowledge
        self.buttonText = buttonText
        self.hideDefaultButton = hideDefaultButton
        self.next = next
    }
}

/// Where the user goes after a job's outcome (Flatfile's `JobOutcomeNext`).
public enum OutcomeNext: Sendable, Hashable {
    /// A file the user can reference in an outcome's `files` list.
    public struct FileReference: Sendable, Hashable {
        public var fileId: String
        public var label: String?
        public init(fileId: String, label: String? = nil) {
            self.fileId = fileId
            self.label = label
        }
    }

    case id(id: String, label: String? = nil, path: String? = nil, query: String? = nil)
    case url(url: String, label: String? = nil)
    case download(url: String, label: String? = nil, fileName: String? = nil)
    case files(files: [FileReference], label: String? = nil)
    case snapshot(snapshotId: String, sheetId: String, label: String? = nil)
    case view(sheetId: String, hiddenColumns: [String]? = nil, label: String? = nil)
    case retry(label: String? = nil)
    /// Keep the user waiting; Flatfile's extra fields (`fade`, `confetti`, …) pass through as they are.
    case wait(JSONObject = [:])
    case clearFilters(label: String? = nil)

    /// The wire name of this variant, `next.type`.
    public var type: String {
        switch self {
        case .id: "id"
        case .url: "url"
        case .download: "download"
        case .files: "files"
        case .snapshot: "snapshot"
        case .view: "view"
        case .retry: "retry"
        case .wait: "wait"
        case .clearFilters: "clearFilters"
        }
    }

    /// Every `next.type` the protocol knows.
    public static let types = ["id", "url", "download", "files", "snapshot", "view", "retry", "wait", "clearFilters"]
}

extension Outcome {
    /// The outcome as its wire JSON object.
    public var json: JSONObject {
        var o = JSONObject()
        if let message { o.append("message", .string(message)) }
        if let heading { o.append("heading", .string(heading)) }
        if let acknowledge { o.append("acknowledge", .bool(acknowledge)) }
        if let buttonText { o.append("buttonText", .string(buttonText)) }
        if let hideDefaultButton { o.append("hideDefaultButton", .bool(hideDefaultButton)) }
        if let next { o.append("next", .object(next.json)) }
        return o
    }

    /// Reads an outcome, naming wrong fields by their path under `outcome`.
    /// - Parameters:
    ///   - value: The outcome object.
    ///   - path: The dotted path of the object, for errors.
    ///   - strict: Whether a member the protocol does not know (`trigger`, a typo) is an error, as it is for
    ///     what a client sends the broker; a client reading the broker's replies reads leniently.
    public init(json value: JSONValue, path: String = "outcome", strict: Bool = false) throws(FieldError) {
        try self.init(reader: try FieldReader(value, path: path), strict: strict)
    }

    static let keys: Set<String> = ["message", "heading", "acknowledge", "buttonText", "hideDefaultButton", "next"]

    init(reader r: FieldReader, strict: Bool = false) throws(FieldError) {
        if strict { try r.rejectUnknown(allowing: Outcome.keys) }
        message = try r.string("message")
        heading = try r.string("heading")
        acknowledge = try r.bool("acknowledge")
        buttonText = try r.string("buttonText")
        hideDefaultButton = try r.bool("hideDefaultButton")
        next = try r.object("next").map { reader throws(FieldError) in try OutcomeNext(reader: reader, strict: strict) }
    }
}

extension OutcomeNext {
    /// The variant as its wire JSON object, with `type` first.
    public var json: JSONObject {
        var o: JSONObject = ["type": .string(type)]
        func put(_ key: String, _ value: String?) { if let value { o[key] = .string(value) } }
        switch self {
        case .id(let id, let label, let path, let query):
            put("id", id)
            put("label", label)
            put("path", path)
            put("query", query)
        case .url(let url, let label):
            put("url", url)
            put("label", label)
        case .download(let url, let label, let fileName):
            put("url", url)
            put("label", label)
            put("fileName", fileName)
        case .files(let files, let label):
            o["files"] = .array(
                files.map { file in
                    var f: JSONObject = ["fileId": .string(file.fileId)]
                    if let label = file.label { f["label"] = .string(label) }
                    return .object(f)
                })
            put("label", label)
        case .snapshot(let snapshotId, let sheetId, let label):
            put("snapshotId", snapshotId)
            put("sheetId", sheetId)
            put("label", label)
        case .view(let sheetId, let hiddenColumns, let label):
            put("sheetId", sheetId)
            if let hiddenColumns { o["hiddenColumns"] = .array(hiddenColumns.map(JSONValue.string)) }
            put("label", label)
        case .retry(let label):
            put("label", label)
        case .wait(let extra):
            for (key, value) in extra where key != "type" { o[key] = value }
        case .clearFilters(let label):
            put("label", label)
        }
        return o
    }

    /// The members each `next.type` takes; `wait` takes any (Flatfile's `fade`, `confetti`, …).
    static let keys: [String: Set<String>] = [
        "id": ["type", "id", "label", "path", "query"], "url": ["type", "url", "label"],
        "download": ["type", "url", "label", "fileName"], "files": ["type", "files", "label"],
        "snapshot": ["type", "snapshotId", "sheetId", "label"], "view": ["type", "sheetId", "hiddenColumns", "label"],
        "retry": ["type", "label"], "clearFilters": ["type", "label"],
    ]

    init(reader r: FieldReader, strict: Bool = false) throws(FieldError) {
        let type = try r.requiredString("type")
        if strict, let keys = OutcomeNext.keys[type] { try r.rejectUnknown(allowing: keys) }
        switch type {
        case "id":
            self = .id(
                id: try r.requiredString("id"), label: try r.string("label"), path: try r.string("path"),
                query: try r.string("query"))
        case "url":
            self = .url(url: try r.requiredString("url"), label: try r.string("label"))
        case "download":
            self = .download(
                url: try r.requiredString("url"), label: try r.string("label"), fileName: try r.string("fileName"))
        case "files":
            guard let list = try r.array("files") else { throw .missing(r.fieldPath("files")) }
            var files: [FileReference] = []
            for (index, element) in list.enumerated() {
                let f = try FieldReader(element, path: "\(r.fieldPath("files")).\(index)")
                if strict { try f.rejectUnknown(allowing: ["fileId", "label"]) }
                files.append(FileReference(fileId: try f.requiredString("fileId"), label: try f.string("label")))
            }
            self = .files(files: files, label: try r.string("label"))
        case "snapshot":
            self = .snapshot(
                snapshotId: try r.requiredString("snapshotId"), sheetId: try r.requiredString("sheetId"),
                label: try r.string("label"))
        case "view":
            self = .view(
                sheetId: try r.requiredString("sheetId"), hiddenColumns: try r.stringArray("hiddenColumns"),
                label: try r.string("label"))
        case "retry":
            self = .retry(label: try r.string("label"))
        case "wait":
            var extra = r.object
            extra["type"] = nil
            self = .wait(extra)
        case "clearFilters":
            self = .clearFilters(label: try r.string("label"))
        default:
            throw FieldError(
                field: r.fieldPath("type"),
                message:
                    "\(r.fieldPath("type")) must be one of \(OutcomeNext.types.joined(separator: ", ")), not \"\(type)\""
            )
        }
    }
}

extension Outcome: Codable {
    public init(from decoder: any Decoder) throws { try self.init(json: try JSONValue(from: decoder)) }
    public func encode(to encoder: any Encoder) throws { try JSONValue.object(json).encode(to: encoder) }
}
