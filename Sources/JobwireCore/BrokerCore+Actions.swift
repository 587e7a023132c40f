package import JobwireProtocol

extension BrokerCore {
    package func mountAction(_ p: FieldReader) throws -> Action {
        let domain = try p.requiredIdentifier("domain")
        guard !domain.contains("/") else { throw FieldError(field: "domain", message: "domain must not contain '/'") }
        let resourceId = try p.requiredIdentifier("resourceId")
        guard let value = p.value("action") else { throw FieldError(field: "action", message: "action is required") }
        let action = try Action(
            json: value, path: "action", id: "us_ac_" + BrokerCore.randomString(length: 12), domain: domain,
            resourceId: resourceId, strict: true)
        actions[action.id] = action
        batch.actions.append(action)
        return action
    }

    package func listActions(_ p: FieldReader) throws -> JSONValue {
        let domain = try p.identifier("domain")
        let resourceId = try p.identifier("resourceId")
        let found = actions.values
            .filter { (domain == nil || $0.domain == domain) && (resourceId == nil || $0.resourceId == resourceId) }
            .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        return .array(found.map { .object($0.json) })
    }

    package func unmountAction(_ p: FieldReader) throws -> JSONValue {
        let id = try p.requiredIdentifier("actionId")
        guard actions.removeValue(forKey: id) != nil else { throw ProtocolError(.notFound, "action \(id) not found") }
        batch.deletedActions.append(id)
        return ["success": true]
    }

    /// Creates the job `<domain>:<operation>` for an action, as a user's click would.
    package func triggerAction(_ p: FieldReader, caller: Caller) throws -> Job {
        let action: Action
        var input: JSONValue
        let actorId: String?
        if let id = try p.identifier("actionId") {
            guard let found = actions[id] else { throw ProtocolError(.notFound, "action \(id) not found") }
            action = found
        } else {
            let domain = try p.requiredIdentifier("domain")
            let resourceId = try p.requiredIdentifier("resourceId")
            let operation = try p.requiredIdentifier("operation")
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
        actorId = try p.identifier("actorId")
        return try create(CreateFields(action: action, input: input, actorId: actorId, configuration: configuration))
    }

    /// `events.list`: the log after `since`, filtered by topic globs, one bounded page at a time.
    ///
    /// A call examines at most ``eventsScanBudget`` events and returns at most ``eventsPageBytes`` of them
    /// (at least one, however large), so no filter makes a call scan the whole log. `nextSince` is the last
    /// seq the page examined: the client goes on with `since: nextSince` until it reaches `lastSeq`.
    package func listEvents(_ p: FieldReader) throws -> ReplyBody {
        let since = try p.int("since", in: 0...Int64.max) ?? 0
        let limit = Int(try p.int("limit", in: 1...Int64.max) ?? 1000).clamped(to: 1...10_000)
        let names: [String]
        switch p.value("topics") {
        case nil: names = []
        case .string(let s)?: names = [s]
        case .array?: names = try p.stringArray("topics") ?? []
        case let other?:
            throw FieldError(field: "topics", message: "topics must be an array of strings, not \(other.typeName)")
        }
        try Glob.checkPatterns(names, field: "topics")
        let patterns = names.map { Glob($0) }
        try flush()
        let start = replayStart
        if since < start - 1 {
            throw ProtocolError(
                .gone, "events after \(since) are no longer kept; the log starts at seq \(start)",
                data: ["firstSeq": .int(start)])
        }
        // The log has a handful of topics: each is matched against the globs once per call.
        var topicMatches: [String: Bool] = [:]
        // The stored envelopes are spliced into the reply as they are: replay costs no parsing.
        var list: [UInt8] = [UInt8(ascii: "[")]
        var count = 0
        var examined = 0
        var cursor = since
        scan: while count < limit && examined < BrokerCore.eventsScanBudget && cursor < seq {
            let chunk = try storeRead {
                try store.events(since: cursor, limit: min(max(limit, 256), BrokerCore.eventsScanBudget - examined))
            }
            if chunk.isEmpty { break }
            for event in chunk {
                let matches: Bool
                if patterns.isEmpty {
                    matches = true
                } else if let known = topicMatches[event.topic] {
                    matches = known
                } else {
                    matches = patterns.contains { $0.matches(event.topic) }
                    topicMatches[event.topic] = matches
                }
                if matches {
                    // The byte budget ends the page before an event that would pass it, never at the first.
                    if count > 0 && list.count + event.body.count >= BrokerCore.eventsPageBytes { break scan }
                    if count > 0 { list.append(UInt8(ascii: ",")) }
                    list.append(contentsOf: event.body)
                    count += 1
                }
                cursor = event.seq
                examined += 1
                if count == limit || examined == BrokerCore.eventsScanBudget { break scan }
            }
        }
        list.append(UInt8(ascii: "]"))
        var w = JSONObjectWriter()
        w.raw("events", list)
        w.int("lastSeq", seq)
        w.string("epoch", epoch)
        w.int("nextSince", cursor)
        return .raw(w.finish())
    }

    /// The most events one `events.list` call examines, matching or not.
    package static let eventsScanBudget = 10_000
    /// The bytes of event JSON after which an `events.list` page ends.
    package static let eventsPageBytes = 1 << 20
}

extension Comparable {
    package func clamped(to range: ClosedRange<Self>) -> Self { min(max(self, range.lowerBound), range.upperBound) }
}
