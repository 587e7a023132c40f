import JobwireProtocol

extension BrokerCore {
    func mountAction(_ p: FieldReader) throws -> Action {
        let domain = try p.requiredString("domain")
        guard !domain.contains("/") else { throw FieldError(field: "domain", message: "domain must not contain '/'") }
        let resourceId = try p.requiredString("resourceId")
        guard let value = p.value("action") else { throw FieldError(field: "action", message: "action is required") }
        let action = try Action(
            json: value, path: "action", id: "us_ac_" + BrokerCore.randomString(length: 12), domain: domain,
            resourceId: resourceId)
        actions[action.id] = action
        batch.actions.append(action)
        return action
    }

    func listActions(_ p: FieldReader) throws -> JSONValue {
        let domain = try p.string("domain")
        let resourceId = try p.string("resourceId")
        let found = actions.values
            .filter { (domain == nil || $0.domain == domain) && (resourceId == nil || $0.resourceId == resourceId) }
            .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        return .array(found.map { .object($0.json) })
    }

    func unmountAction(_ p: FieldReader) throws -> JSONValue {
        let id = try p.requiredString("actionId")
        guard actions.removeValue(forKey: id) != nil else { throw ProtocolError(.notFound, "action \(id) not found") }
        batch.deletedActions.append(id)
        return ["success": true]
    }

    /// Creates the job `<domain>:<operation>` for an action, as a user's click would.
    func triggerAction(_ p: FieldReader, caller: Caller) throws -> Job {
        let action: Action
        var input: JSONValue
        let actorId: String?
        if let id = try p.string("actionId") {
            guard let found = actions[id] else { throw ProtocolError(.notFound, "action \(id) not found") }
            action = found
        } else {
            let domain = try p.requiredString("domain")
            let resourceId = try p.requiredString("resourceId")
            let operation = try p.requiredString("operation")
            guard
                let found = actions.values.first(where: {
                    $0.domain == domain && $0.resourceId == resourceId && $0.operation == operation
                })
            else {
                throw ProtocolError(.notFound, "no action \(operation) is mounted on \(domain) \(resourceId)")
            }
            action = found
        }
        input = p.value("input") ?? .object([:])
        guard case .object(let fields) = input else {
            throw FieldError(field: "input", message: "input must be an object, not \(input.typeName)")
        }
        for key in action.requiredInputKeys where fields[key] == nil || fields[key]!.isNull {
            throw FieldError(field: "input.\(key)", message: "input.\(key) is required by the action's form")
        }
        actorId = try p.string("actorId")
        var params: JSONObject = [
            "type": .string(action.domain), "operation": .string(action.operation),
            "source": .string(action.resourceId), "trigger": "immediate", "mode": .string(action.mode.rawValue),
            "input": input,
        ]
        let contextKey: String? =
            switch action.domain {
            case "workbook": "workbookId"
            case "sheet": "sheetId"
            case "file": "fileId"
            case "document": "documentId"
            case "space": "spaceId"
            default: nil
            }
        if let contextKey { params[contextKey] = .string(action.resourceId) }
        if let actorId { params["actorId"] = .string(actorId) }
        return try create(FieldReader(params), caller: caller)
    }

    /// `events.list`: the log after `since`, filtered by topic globs.
    func listEvents(_ p: FieldReader) throws -> ReplyBody {
        let since: Int64
        let limit: Int
        let patterns: [Glob]
        since = try p.int("since", in: 0...Int64.max) ?? 0
        limit = Int(try p.int("limit", in: 1...Int64.max) ?? 1000).clamped(to: 1...10_000)
        switch p.value("topics") {
        case nil: patterns = []
        case .string(let s)?: patterns = [Glob(s)]
        case .array?: patterns = (try p.stringArray("topics") ?? []).map { Glob($0) }
        case let other?:
            throw FieldError(field: "topics", message: "topics must be an array of strings, not \(other.typeName)")
        }
        try flush()
        let start = replayStart
        if since < start - 1 {
            throw ProtocolError(
                .gone, "events after \(since) are no longer kept; the log starts at seq \(start)",
                data: ["firstSeq": .int(start)])
        }
        // The stored envelopes are spliced into the reply as they are: replay costs no parsing.
        var list: [UInt8] = [UInt8(ascii: "[")]
        var count = 0
        var cursor = since
        while count < limit && cursor < seq {
            let chunk = try storeRead { try store.events(since: cursor, limit: max(limit, 256)) }
            guard let last = chunk.last else { break }
            cursor = last.seq
            for event in chunk where patterns.isEmpty || patterns.contains(where: { $0.matches(event.topic) }) {
                if count > 0 { list.append(UInt8(ascii: ",")) }
                list.append(contentsOf: event.body)
                count += 1
                if count == limit { break }
            }
        }
        list.append(UInt8(ascii: "]"))
        var w = JSONObjectWriter()
        w.raw("events", list)
        w.int("lastSeq", seq)
        w.string("epoch", epoch)
        return .raw(w.finish())
    }
}

extension Comparable {
    func clamped(to range: ClosedRange<Self>) -> Self { min(max(self, range.lowerBound), range.upperBound) }
}
