/// An action to mount on a resource (the `action` of `actions.mount`): a button whose click creates the
/// job `<domain>:<operation>`, optionally after the user fills in an input form.
/// ```swift
/// let submit = ActionDefinition(
///     operation: "submit", label: "Submit", primary: true,
///     inputForm: InputForm(fields: [
///         InputField(key: "email", label: "Email", type: .string, required: true),
///         InputField(key: "notes", label: "Notes", type: .textarea),
///     ]))
/// let action = try await client.mountAction(domain: "workbook", resourceId: "us_wb_1", submit)
/// ```
public struct ActionDefinition: Sendable, Hashable {
    /// The job's operation, e.g. `submit` (the job is `<domain>:submit`); may contain `:`.
    public var operation: String
    /// The button's text.
    public var label: String
    /// The mode of the jobs it creates; the broker's default (`foreground`) when nil.
    public var mode: JobMode?
    /// The question of the confirm dialog.
    public var description: String?
    public var tooltip: String?
    /// The resource's main action.
    public var primary: Bool?
    /// Ask the user to confirm before the job is created.
    public var confirm: Bool?
    /// What the user fills in; the values arrive as the job's `input`.
    public var inputForm: InputForm?
    /// When the button is disabled.
    public var constraints: [ActionConstraint]

    public init(
        operation: String, label: String, mode: JobMode? = nil, description: String? = nil, tooltip: String? = nil,
        primary: Bool? = nil, confirm: Bool? = nil, inputForm: InputForm? = nil, constraints: [ActionConstraint] = []
    ) {
        self.operation = operation
        self.label = label
        self.mode = mode
        self.description = description
        self.tooltip = tooltip
        self.primary = primary
        self.confirm = confirm
        self.inputForm = inputForm
        self.constraints = constraints
    }

    /// The `action` object of `actions.mount`.
    public var json: JSONObject {
        var o: JSONObject = ["operation": .string(operation), "label": .string(label)]
        if let mode { o["mode"] = .string(mode.rawValue) }
        if let description { o["description"] = .string(description) }
        if let tooltip { o["tooltip"] = .string(tooltip) }
        if let primary { o["primary"] = .bool(primary) }
        if let confirm { o["confirm"] = .bool(confirm) }
        if let inputForm { o["inputForm"] = .object(inputForm.json) }
        if !constraints.isEmpty { o["constraints"] = .array(constraints.map { .object($0.json) }) }
        return o
    }
}

/// Flatfile's input form, `{type: "simple", fields: [...]}`: what a user fills in before an action runs.
public struct InputForm: Sendable, Hashable {
    /// `simple`, the one kind Flatfile has.
    public var type: String
    public var fields: [InputField]

    public init(type: String = "simple", fields: [InputField]) {
        self.type = type
        self.fields = fields
    }

    /// The keys of the fields the user must fill in (the broker rejects a trigger without them).
    public var requiredKeys: [String] { fields.filter(\.required).map(\.key) }

    /// The form as its wire JSON object.
    public var json: JSONObject {
        ["type": .string(type), "fields": .array(fields.map { .object($0.json) })]
    }

    /// Reads a form, e.g. an ``Action``'s `inputForm`; fields without a `key` are skipped.
    public init?(json value: JSONValue?) {
        guard let object = value?.objectValue else { return nil }
        type = object["type"]?.stringValue ?? "simple"
        fields = (object["fields"]?.arrayValue ?? []).compactMap(InputField.init(json:))
    }
}

/// One field of an ``InputForm``: `{key, label, description, type, defaultValue, config, constraints}`.
public struct InputField: Sendable, Hashable {
    /// A field's kind: `string`, `textarea`, `number`, `boolean` or `enum`.
    public struct FieldType: Sendable, Hashable, RawRepresentable, ExpressibleByStringLiteral {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { rawValue = value }

        public static let string = FieldType(rawValue: "string")
        public static let textarea = FieldType(rawValue: "textarea")
        public static let number = FieldType(rawValue: "number")
        public static let boolean = FieldType(rawValue: "boolean")
        /// A choice among ``InputField/options``.
        public static let `enum` = FieldType(rawValue: "enum")
    }

    /// A choice of an `enum` field.
    public struct Option: Sendable, Hashable {
        public var value: JSONValue
        public var label: String?
        public var description: String?

        public init(value: JSONValue, label: String? = nil, description: String? = nil) {
            self.value = value
            self.label = label
            self.description = description
        }
    }

    /// The key of the value in the job's `input`.
    public var key: String
    public var label: String
    public var type: FieldType
    public var description: String?
    public var defaultValue: JSONValue?
    /// The choices of an `enum` field (`config.options`).
    public var options: [Option]
    /// Carries the `required` constraint: a trigger without this key is rejected (`-32602`, `input.<key>`).
    public var required: Bool

    public init(
        key: String, label: String, type: FieldType = .string, description: String? = nil,
        defaultValue: JSONValue? = nil, options: [Option] = [], required: Bool = false
    ) {
        self.key = key
        self.label = label
        self.type = type
        self.description = description
        self.defaultValue = defaultValue
        self.options = options
        self.required = required
    }

    /// The field as its wire JSON object.
    public var json: JSONObject {
        var o: JSONObject = ["key": .string(key), "label": .string(label), "type": .string(type.rawValue)]
        if let description { o["description"] = .string(description) }
        if let defaultValue { o["defaultValue"] = defaultValue }
        if !options.isEmpty {
            o["config"] = [
                "options": .array(
                    options.map { option in
                        var entry: JSONObject = ["value": option.value]
                        if let label = option.label { entry["label"] = .string(label) }
                        if let description = option.description { entry["description"] = .string(description) }
                        return .object(entry)
                    })
            ]
        }
        if required { o["constraints"] = [["type": "required"]] }
        return o
    }

    init?(json value: JSONValue) {
        guard let key = value["key"]?.stringValue else { return nil }
        self.key = key
        label = value["label"]?.stringValue ?? key
        type = FieldType(rawValue: value["type"]?.stringValue ?? "string")
        description = value["description"]?.stringValue
        defaultValue = value["defaultValue"]
        options = (value["config"]?["options"]?.arrayValue ?? []).compactMap { option in
            guard let value = option["value"] else { return nil }
            return Option(
                value: value, label: option["label"]?.stringValue, description: option["description"]?.stringValue)
        }
        required = (value["constraints"]?.arrayValue ?? []).contains { $0["type"]?.stringValue == "required" }
    }
}

/// When an action's button is disabled (Flatfile's action constraints).
public struct ActionConstraint: Sendable, Hashable {
    public var type: String
    /// For `hasAllValid`: only the selected records count.
    public var ignoreSelection: Bool?

    public init(type: String, ignoreSelection: Bool? = nil) {
        self.type = type
        self.ignoreSelection = ignoreSelection
    }

    /// Disabled while some record is invalid.
    public static let hasAllValid = ActionConstraint(type: "hasAllValid")
    /// Disabled while no record is selected (sheets only).
    public static let hasSelection = ActionConstraint(type: "hasSelection")
    /// Disabled while there are no records.
    public static let hasData = ActionConstraint(type: "hasData")
    /// Disabled while the column is disabled or read-only.
    public static let hasColumnEnabled = ActionConstraint(type: "hasColumnEnabled")

    public var json: JSONObject {
        var o: JSONObject = ["type": .string(type)]
        if let ignoreSelection { o["ignoreSelection"] = .bool(ignoreSelection) }
        return o
    }
}

extension Action {
    /// The input form as a typed value, when it has one.
    public var form: InputForm? { InputForm(json: inputForm) }
}
