@_exported public import JobwireProtocol

/// A failure of the transport between a ``JobsClient`` and the broker.
///
/// Errors the broker answers (JSON-RPC errors) are thrown as ``ProtocolError``, so a caller matches them
/// by code: `catch ProtocolError.Code.conflict { … }`.
public struct JobwireError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kinds of transport failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let rawValue: Int
        /// No reply came within the request's timeout, though the broker answered earlier.
        public static let timeout = Code(rawValue: 1)
        /// The broker never answered on this connection: it is down or the endpoint is wrong.
        public static let brokerUnreachable = Code(rawValue: 2)
        /// The client was closed.
        public static let closed = Code(rawValue: 3)
        /// The broker sent something that is not a valid reply.
        public static let invalidReply = Code(rawValue: 4)

        public var description: String {
            switch self {
            case .timeout: "timeout"
            case .brokerUnreachable: "brokerUnreachable"
            case .closed: "closed"
            case .invalidReply: "invalidReply"
            default: "\(rawValue)"
            }
        }

        /// Lets `catch JobwireError.Code.timeout` match.
        public static func ~= (pattern: Code, value: any Error) -> Bool {
            (value as? JobwireError)?.code == pattern
        }
    }

    /// What went wrong.
    public var code: Code
    /// A sentence for people, with the endpoint and the method.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "JobwireError.\(code): \(message)" }
}
