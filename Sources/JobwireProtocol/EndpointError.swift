/// An endpoint value that a client cannot connect to: one element of a comma-separated list that is not
/// `tcp://HOST:PORT`, `ipc://PATH` or `inproc://NAME`, an empty element, or one listed twice.
public struct EndpointError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The whole value as given, e.g. `tcp://a:7401,tcp//b:7401`.
    public var value: String
    /// The element at fault, e.g. `tcp//b:7401` (empty for an empty element).
    public var endpoint: String
    /// Why it is refused, for people.
    public var reason: String

    public init(value: String, endpoint: String, reason: String) {
        self.value = value
        self.endpoint = endpoint
        self.reason = reason
    }

    public var description: String {
        let shown = endpoint.isEmpty ? "an empty endpoint" : "\"\(endpoint)\""
        return "\(shown) in \"\(value)\" \(reason)"
    }
}
