internal import CZeroMQ

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// An error reported by libzmq: an `errno` value and libzmq's text for it.
///
/// Match a specific failure with the named statics, which work as `catch` patterns:
/// ```swift
/// do { try socket.send([[1]]) } catch ZMQError.hostUnreachable { … }
/// ```
public struct ZMQError: Error, Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The `errno` value libzmq reported (its own codes such as `EFSM` live above `ZMQ_HAUSNUMERO`).
    public let code: Int32

    /// Wraps an `errno` value.
    /// - Parameter code: the value of `errno` (or `zmq_errno()`) after a failed call.
    public init(code: Int32) {
        self.code = code
    }

    /// libzmq's human-readable text for ``code``.
    ///
    /// The corresponding libzmq call is `zmq_strerror`.
    public var message: String {
        guard let text = zmq_strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }

    public var description: String {
        "ZMQError(\(code)): \(message)"
    }

    /// Lets `catch ZMQError.wouldBlock` match an untyped `any Error`.
    public static func ~= (pattern: ZMQError, value: any Error) -> Bool {
        guard let error = value as? ZMQError else { return false }
        return error == pattern
    }

    /// `EAGAIN`: a non-blocking call found nothing to do, or a timeout expired.
    public static let wouldBlock = ZMQError(code: EAGAIN)
    /// `ETERM`: the context was shut down or terminated; close the socket.
    public static let contextTerminated = ZMQError(code: ETERM)
    /// `EHOSTUNREACH`: a ROUTER with `routerMandatory` had no peer with that routing id.
    public static let hostUnreachable = ZMQError(code: EHOSTUNREACH)
    /// `EINTR`: a signal interrupted a blocking call.
    public static let interrupted = ZMQError(code: EINTR)
    /// `EINVAL`: a malformed argument, e.g. an endpoint without `://`.
    public static let invalidArgument = ZMQError(code: EINVAL)
    /// `ENOTSUP`: the operation is not supported by this socket type (e.g. `send` on SUB).
    public static let notSupported = ZMQError(code: ENOTSUP)
    /// `EADDRINUSE`: the address is already bound.
    public static let addressInUse = ZMQError(code: EADDRINUSE)
    /// `EADDRNOTAVAIL`: the address is not local.
    public static let addressNotAvailable = ZMQError(code: EADDRNOTAVAIL)
    /// `ENODEV`: the interface in the endpoint does not exist.
    public static let noDevice = ZMQError(code: ENODEV)
    /// `EMSGSIZE`: a message is larger than allowed.
    public static let messageTooLarge = ZMQError(code: EMSGSIZE)
    /// `EPROTONOSUPPORT`: the endpoint's transport is unknown (e.g. `foo://x`).
    public static let protocolNotSupported = ZMQError(code: EPROTONOSUPPORT)
    /// `ENOCOMPATPROTO`: the transport does not fit this socket type.
    public static let incompatibleProtocol = ZMQError(code: ENOCOMPATPROTO)
    /// `EFSM`: the call does not fit the socket's state (e.g. REQ sending twice in a row).
    public static let stateMismatch = ZMQError(code: EFSM)
    /// `EMTHREAD`: no I/O thread is available.
    public static let noIOThread = ZMQError(code: EMTHREAD)
    /// `ENOTSOCK`: the socket was already closed.
    public static let notASocket = ZMQError(code: ENOTSOCK)
    /// `ENOENT`: e.g. `unbind`/`disconnect` of an endpoint that was never bound or connected.
    public static let noEntry = ZMQError(code: ENOENT)
    /// `EMFILE`: too many open sockets or files.
    public static let tooManyOpenFiles = ZMQError(code: EMFILE)
    /// `EFAULT`: an invalid handle or buffer.
    public static let fault = ZMQError(code: EFAULT)
}
