internal import CZeroMQ

/// The one checker for libzmq return codes: `-1` becomes `ZMQError(code: zmq_errno())`.
///
/// Anchored on swift-system's `valueOrErrno`: every call site reads the same way and no `-1` slips by.
@inline(__always)
@discardableResult
func check(_ result: Int32) throws(ZMQError) -> Int32 {
    if result == -1 { throw ZMQError(code: zmq_errno()) }
    return result
}

/// Like ``check(_:)``, but when `dontWait` is set `EAGAIN` becomes `nil`: the shape every
/// `ZMQ_DONTWAIT` call wants. Without `dontWait`, `EAGAIN` means a send or receive timeout
/// expired and is thrown as ``ZMQError/wouldBlock``.
@inline(__always)
func check(_ result: Int32, dontWait: Bool) throws(ZMQError) -> Int32? {
    do {
        return try check(result)
    } catch .wouldBlock where dontWait {
        return nil
    }
}
