internal import CZeroMQ

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// A file descriptor that another thread makes readable to wake a ``Poller``: an `eventfd` on
/// Linux, a pipe elsewhere. Non-blocking on both ends, so signalling never blocks.
///
/// `Sendable`: the descriptors are immutable, and `signal`/`drain` are single syscalls that the
/// kernel serialises.
final class WakeSignal: Sendable {
    /// Poll this for `.readable`.
    let fileDescriptor: Int32
    private let writeEnd: Int32

    init() throws(ZMQError) {
        #if os(Linux)
            let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
            guard fd >= 0 else { throw ZMQError(code: errno) }
            fileDescriptor = fd
            writeEnd = fd
        #else
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { throw ZMQError(code: errno) }
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            fileDescriptor = fds[0]
            writeEnd = fds[1]
        #endif
    }

    deinit {
        close(fileDescriptor)
        if writeEnd != fileDescriptor { close(writeEnd) }
    }

    /// Makes ``fileDescriptor`` readable. A full counter or pipe is already readable, so a failed
    /// write loses nothing.
    func signal() {
        #if os(Linux)
            var one: UInt64 = 1
            _ = write(writeEnd, &one, 8)
        #else
            var one: UInt8 = 1
            _ = write(writeEnd, &one, 1)
        #endif
    }

    /// Resets ``fileDescriptor`` to not readable.
    func drain() {
        var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while withUnsafeMutableBytes(of: &buffer, { read(fileDescriptor, $0.baseAddress, $0.count) }) > 0 {}
    }
}
