internal import CZeroMQ

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// One frame owned by libzmq, for zero-copy sends and receives of large payloads.
///
/// The `zmq_msg_t` lives on the heap behind a pointer and is never copied by value (a copy of the
/// 64-byte struct corrupts libzmq's reference counts). Write into a ``Message/init(size:)`` buffer
/// with ``withUnsafeMutableBytes(_:)`` and libzmq sends that very buffer; a received message is
/// read in place with ``withUnsafeBytes(_:)``.
///
/// Not `Sendable`: its bytes can be mutated in place.
public final class Message {
    let pointer: UnsafeMutablePointer<zmq_msg_t>

    /// An empty message, e.g. to ``Socket/receive(into:dontWait:)``.
    ///
    /// The corresponding libzmq call is `zmq_msg_init`.
    public init() {
        pointer = .allocate(capacity: 1)
        zmq_msg_init(pointer)
    }

    /// A message of `size` uninitialised bytes, to fill with ``withUnsafeMutableBytes(_:)``.
    ///
    /// The corresponding libzmq call is `zmq_msg_init_size`.
    /// - Throws: ``ZMQError`` when the memory cannot be allocated.
    public init(size: Int) throws(ZMQError) {
        pointer = .allocate(capacity: 1)
        do {
            try check(zmq_msg_init_size(pointer, size))
        } catch {
            pointer.deallocate()
            throw error
        }
    }

    /// A message holding a copy of `bytes`.
    ///
    /// The corresponding libzmq call is `zmq_msg_init_size`.
    /// - Throws: ``ZMQError`` when the memory cannot be allocated.
    public convenience init(bytes: some Collection<UInt8>) throws(ZMQError) {
        try self.init(size: bytes.count)
        withUnsafeMutableBytes { buffer in
            buffer.copyBytes(from: bytes)
        }
    }

    /// A message that adopts `buffer` without copying; libzmq calls `deallocate` once it no
    /// longer needs the bytes, possibly on one of its I/O threads.
    ///
    /// The caller must not touch `buffer` after this call.
    /// The corresponding libzmq call is `zmq_msg_init_data`.
    /// - Parameters:
    ///   - buffer: memory that stays valid until `deallocate` runs.
    ///   - deallocate: frees `buffer`; runs exactly once.
    /// - Throws: ``ZMQError``; `deallocate` has then already run.
    public init(
        adopting buffer: UnsafeMutableRawBufferPointer,
        deallocate: @escaping @Sendable (UnsafeMutableRawBufferPointer) -> Void
    ) throws(ZMQError) {
        pointer = .allocate(capacity: 1)
        let box = Unmanaged.passRetained(FreeBox(buffer: buffer, free: deallocate)).toOpaque()
        let rc = zmq_msg_init_data(pointer, buffer.baseAddress, buffer.count, messageFree, box)
        if rc == -1 {
            let error = ZMQError(code: zmq_errno())
            Unmanaged<FreeBox>.fromOpaque(box).takeRetainedValue().run()
            pointer.deallocate()
            throw error
        }
    }

    deinit {
        zmq_msg_close(pointer)
        pointer.deallocate()
    }

    /// The size in bytes.
    ///
    /// The corresponding libzmq call is `zmq_msg_size`.
    public var count: Int { zmq_msg_size(pointer) }

    /// Whether more frames of the same multipart message follow this received one.
    ///
    /// The corresponding libzmq call is `zmq_msg_more`.
    public var more: Bool { zmq_msg_more(pointer) != 0 }

    /// A copy of the bytes.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Reads the bytes in place.
    ///
    /// The corresponding libzmq call is `zmq_msg_data`.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: zmq_msg_data(pointer), count: zmq_msg_size(pointer)))
    }

    /// Writes the bytes in place, e.g. after ``init(size:)``.
    ///
    /// The corresponding libzmq call is `zmq_msg_data`.
    public func withUnsafeMutableBytes<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try body(UnsafeMutableRawBufferPointer(start: zmq_msg_data(pointer), count: zmq_msg_size(pointer)))
    }

    /// A metadata property of the connection this message came in on, e.g. `"User-Id"`.
    ///
    /// The corresponding libzmq call is `zmq_msg_gets`.
    /// - Returns: the value, or `nil` if the connection has no such property.
    public func metadata(_ property: String) -> String? {
        zmq_msg_gets(pointer, property).map { String(cString: $0) }
    }
}

extension Socket {
    /// Sends a message without copying its bytes. On success libzmq takes the content and
    /// `message` is left empty (size 0), ready for reuse.
    ///
    /// The corresponding libzmq call is `zmq_msg_send`.
    /// - Parameters:
    ///   - message: the frame.
    ///   - more: more frames of the same message follow (`ZMQ_SNDMORE`).
    ///   - dontWait: return `false` instead of blocking (`ZMQ_DONTWAIT`); the message is then unchanged.
    /// - Returns: `true` once queued; `false` only when `dontWait` is set and libzmq said `EAGAIN`.
    /// - Throws: ``ZMQError``.
    @discardableResult
    public func send(_ message: Message, more: Bool = false, dontWait: Bool = false) throws(ZMQError) -> Bool {
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        return try check(zmq_msg_send(message.pointer, handle, flags), dontWait: dontWait) != nil
    }

    /// Receives one frame into `message`, replacing what it held, without copying the bytes.
    /// Check ``Message/more`` for the rest of a multipart message.
    ///
    /// The corresponding libzmq call is `zmq_msg_recv`.
    /// - Parameters:
    ///   - message: the destination.
    ///   - dontWait: return `false` instead of blocking (`ZMQ_DONTWAIT`).
    /// - Returns: `true` when a frame arrived; `false` only when `dontWait` is set and nothing is pending.
    /// - Throws: ``ZMQError``.
    @discardableResult
    public func receive(into message: Message, dontWait: Bool = false) throws(ZMQError) -> Bool {
        try check(zmq_msg_recv(message.pointer, handle, dontWait ? ZMQ_DONTWAIT : 0), dontWait: dontWait) != nil
    }
}

/// What `zmq_msg_init_data` needs to free an adopted buffer: passed as the `hint`, retained once.
private final class FreeBox {
    let buffer: UnsafeMutableRawBufferPointer
    let free: @Sendable (UnsafeMutableRawBufferPointer) -> Void

    init(buffer: UnsafeMutableRawBufferPointer, free: @escaping @Sendable (UnsafeMutableRawBufferPointer) -> Void) {
        self.buffer = buffer
        self.free = free
    }

    func run() { free(buffer) }
}

/// libzmq's `zmq_free_fn`: may run on a libzmq I/O thread, so it only balances the retain and frees.
private func messageFree(_ data: UnsafeMutableRawPointer?, _ hint: UnsafeMutableRawPointer?) {
    guard let hint else { return }
    Unmanaged<FreeBox>.fromOpaque(hint).takeRetainedValue().run()
}
