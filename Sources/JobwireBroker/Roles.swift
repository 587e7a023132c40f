import JobwireProtocol

/// What a CURVE client key may do. A key's roles come from its `.pub` file in the authorized-keys
/// folder (a `roles: produce,read` line); a key without such a line has every role.
public enum BrokerRole: String, CaseIterable, Sendable, Comparable {
    /// Create jobs and steer them from outside: create, cancel, retry, execute, ackOutcome, trigger actions.
    case produce
    /// Run jobs: claim, ack, update, complete, fail, release, split.
    case work
    /// Look: get, list, events.list, broker.info, actions.list, and subscribe to the events socket.
    case read
    /// Change what others rely on: delete jobs, mount and unmount actions.
    case admin

    /// Every role: what a key without a roles line has.
    public static let all = Set(allCases)

    /// The role a method needs; `nil` for a method the broker does not know (it answers `-32601`).
    public static func required(for method: String) -> BrokerRole? {
        switch method {
        case "jobs.create", "jobs.cancel", "jobs.retry", "jobs.execute", "jobs.ackOutcome", "actions.trigger":
            .produce
        case "jobs.claim", "jobs.ack", "jobs.update", "jobs.complete", "jobs.fail", "jobs.release", "jobs.split":
            .work
        case "jobs.get", "jobs.list", "events.list", "broker.info", "actions.list": .read
        case "jobs.delete", "actions.mount", "actions.unmount": .admin
        default:
            method.hasPrefix("jobs.") || method.hasPrefix("actions.") || method.hasPrefix("queues.")
                || method.hasPrefix("broker.") ? .admin : nil
        }
    }

    /// Reads a roles list such as `produce, read`.
    /// - Throws: a message naming the first word that is not a role.
    public static func parse(_ text: some StringProtocol) throws(RoleParseError) -> Set<BrokerRole> {
        var roles: Set<BrokerRole> = []
        for word in text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }) where !word.isEmpty {
            guard let role = BrokerRole(rawValue: word.lowercased()) else {
                throw RoleParseError(word: String(word))
            }
            roles.insert(role)
        }
        return roles
    }

    public static func < (lhs: BrokerRole, rhs: BrokerRole) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A roles list named something that is not a role.
public struct RoleParseError: Error, Sendable, CustomStringConvertible {
    public var word: String
    public var description: String {
        "\(word) is not a role (roles: \(BrokerRole.allCases.map(\.rawValue).joined(separator: ", ")))"
    }
}

extension BrokerConfiguration {
    /// The roles of an authenticated client key: those ``keyRoles`` names, or every role.
    func roles(of key: String) -> Set<BrokerRole> {
        keyRoles[key] ?? BrokerRole.all
    }

    /// The `-32006` error for a call outside the caller's roles, or `nil` when the call is allowed.
    func authorizationError(method: String, key: String?) -> ProtocolError? {
        guard let key, let role = BrokerRole.required(for: method), !roles(of: key).contains(role) else { return nil }
        return ProtocolError(
            .unauthorized, "\(method) needs the role \(role.rawValue), which this client key does not have",
            data: ["method": .string(method), "role": .string(role.rawValue)])
    }
}

extension BrokerConfiguration {
    /// The authorized keys that may subscribe to events: those with the `read` role.
    var readerKeys: Set<String> {
        Set(authorizedKeys.filter { roles(of: $0).contains(.read) })
    }
}
