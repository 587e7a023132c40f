/// A button mounted on a resource; triggering it creates the job `<domain>:<operation>` (PROTOCOL.md §4).
public struct Action: Sendable, Hashable {
    /// `us_ac_…`, assigned by the broker.
    public var id: String
    /// The domain of the resource it is mounted on: `workbook`, `sheet`, `document`, `file`, …
    public var domain: String
    public var resourceId: String
    public var operation: String
    public var label: String
    public var mode: JobMode
    public var description: String?
    public var tooltip: String?
    public var primary: Bool?
    public var confirm: Bool?
    /// Flatfile's input form: `{type: "simple", fields: [{key, label, type, constraints: [{type: "required"}]}]}`.
    public var inputForm: JSONValue?
    public var constraints: JSONValue?
    public var messages: JSONValue?
    public var createdAt: Timestamp

    public init(
        id: String, domain: String, resourceId: String, operation: String, label: String,
        mode: JobMode = .foreground, createdAt: Timestamp = .now()
    ) {
        self.id = id
        self.domain = domain
        self.resourceId = resourceId
        self.operation = operation
        self.label = label
        self.mode = mode
        self.createdAt = createdAt
    }

    /// The keys of the input form's fields that carry a `required` constraint.
    public var requiredInputKeys: [String] {
        guard case .array(let fields)? = inputForm?["fields"] else { return [] }
        return fields.compactMap { field in
            guard let key = field["key"]?.stringValue, case .array(let constraints)? = field["constraints"],
                constraints.contains(where: { $0["type"]?.stringValue == "required" })
            else { return nil }
            return key
        }
    }
}

extension Action {
    /// The action as its wire JSON object.
    public var json: JSONObject {
        var o: JSONObject = [
            "id": .string(id), "domain": .string(domain), "resourceId": .string(resourceId),
            "operation": .string(operation), "label": .string(label), "mode": .string(mode.rawValue),
        ]
        if let description { o["description"] = .string(description) }
        if let tooltip { o["tooltip"] = .string(tooltip) }
        if let primary { o["primary"] = .bool(primary) }
        if let confirm { o["confirm"] = .bool(confirm) }
        if let inputForm { o["inputForm"] = inputForm }
        if let constraints { o["constraints"] = constraints }
        if let messages { o["messages"] = messages }
        o["createdAt"] = JSONValue(createdAt)
        return o
    }

    /// Reads the `action` object of `actions.mount`, or a stored action when `id` is present.
    /// - Parameter strict: Whether a member the protocol does not know (`schedule`, `icon`, a typo) is an
    ///   error, as it is in `actions.mount`; so are unknown members of `inputForm`, its fields and options,
    ///   and of `constraints` and `messages` entries.
    public init(
        json value: JSONValue, path: String = "action", id: String? = nil, domain: String? = nil,
        resourceId: String? = nil, strict: Bool = false
    ) throws(FieldError) {
        let r = try FieldReader(value, path: path)
        if strict { try Action.checkKeys(r) }
        if let id { self.id = id } else { self.id = try r.requiredString("id") }
        if let domain { self.domain = domain } else { self.domain = try r.requiredString("domain") }
        if let resourceId { self.resourceId = resourceId } else { self.resourceId = try r.requiredString("resourceId") }
        operation = try r.requiredString("operation")
        guard !operation.contains("/") else {
            throw FieldError(
                field: r.fieldPath("operation"), message: "\(r.fieldPath("operation")) must not contain '/'")
        }
        label = try r.string("label") ?? operation
        mode = try r.enumeration("mode", as: JobMode.self) ?? .foreground
        description = try r.string("description")
        tooltip = try r.string("tooltip")
        primary = try r.bool("primary")
        confirm = try r.bool("confirm")
        inputForm = r.value("inputForm")
        if let form = inputForm, form.objectValue == nil {
            throw FieldError.wrongType(r.fieldPath("inputForm"), expected: "an object", got: form)
        }
        constraints = r.value("constraints")
        messages = r.value("messages")
        createdAt = try r.timestamp("createdAt") ?? .now()
    }
}

extension Action {
    /// Rejects members of an `actions.mount` action that the protocol does not know, at any depth it models,
    /// and an operation that is not a valid name.
    static func checkKeys(_ r: FieldReader) throws(FieldError) {
        try r.rejectUnknown(allowing: [
            "operation", "label", "mode", "description", "tooltip", "primary", "confirm", "inputForm", "constraints",
            "messages",
        ])
        // The operation becomes the name of the jobs the action creates.
        if let operation = try r.string("operation") {
            try FieldReader.checkIdentifier(operation, field: r.fieldPath("operation"))
        }
        if let form = try r.object("inputForm") {
            try form.rejectUnknown(allowing: ["type", "fields"])
            for (index, field) in (try form.array("fields") ?? []).enumerated() {
                let f = try FieldReader(field, path: "\(form.fieldPath("fields")).\(index)")
                try f.rejectUnknown(allowing: [
                    "key", "label", "description", "type", "defaultValue", "config", "constraints",
                ])
                if let config = try f.object("config") {
                    try config.rejectUnknown(allowing: ["options"])
                    try each(config, "options", allowing: ["value", "label", "description", "color", "icon", "meta"])
                }
                try each(f, "constraints", allowing: ["type"])
            }
        }
        try each(r, "constraints", allowing: ["type", "ignoreSelection"])
        try each(r, "messages", allowing: ["type", "content"])
    }

    /// Checks the keys of each object in the array `key` of `r`.
    private static func each(_ r: FieldReader, _ key: String, allowing keys: Set<String>) throws(FieldError) {
        for (index, element) in (try r.array(key) ?? []).enumerated() {
            try FieldReader(element, path: "\(r.fieldPath(key)).\(index)").rejectUnknown(allowing: keys)
        }
    }
}

extension Action: Codable {
    public init(from decoder: any Decoder) throws { try self.init(json: try JSONValue(from: decoder), path: "") }
    public func encode(to encoder: any Encoder) throws { try JSONValue.object(json).encode(to: encoder) }
}
