internal import CZeroMQ

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Darwin)
    internal import Darwin
#endif

// Sending and receiving bytes. Frames are copied once: into libzmq by `zmq_send` (cheap for the
// small frames of a broker), and out of one reused heap `zmq_msg_t` into a `[UInt8]` on receive.
extension Socket {
    /// Sends one multipart message: every frame but the last carries `ZMQ_SNDMORE`.
    ///
    /// libzmq delivers a multipart message atomically. Only the first frame can be refused for
    /// back-pressure (the high-water mark counts whole messages), so with `dontWait` the later
    /// frames are sent without it and the message is never cut in half.
    /// The corresponding libzmq call is `zmq_send`.
    /// - Parameters:
    ///   - frames: at least one frame; empty frames are fine.
    ///   - dontWait: return `false` instead of blocking when the message cannot be queued now.
    /// - Returns: `true` once queued; `false` only when `dontWait` is set and libzmq said `EAGAIN`.
    /// - Throws: ``ZMQError``, e.g. ``ZMQError/hostUnreachable``, ``ZMQError/stateMismatch``,
    ///   ``ZMQError/invalidArgument`` for an empty `frames`.
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws(ZMQError) -> Bool {
        guard !frames.isEmpty else { throw .invalidArgument }
        let last = frames.count - 1
        for index in 0...last {
            var flags: Int32 = index < last ? ZMQ_SNDMORE : 0
            if dontWait && index == 0 { flags |= ZMQ_DONTWAIT }
            let rc = frames[index].withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            if try check(rc, dontWait: dontWait && index == 0) == nil { return false }
        }
        return true
    }

    /// Sends one frame of bytes: a `[UInt8]`, an `ArraySlice<UInt8>`, `String.utf8`, or any collection.
    ///
    /// Contiguous collections are passed to libzmq without an intermediate copy.
    /// The corresponding libzmq call is `zmq_send`.
    /// - Parameters:
    ///   - frame: the bytes.
    ///   - more: more frames of the same message follow (`ZMQ_SNDMORE`).
    ///   - dontWait: return `false` instead of blocking (`ZMQ_DONTWAIT`).
    /// - Returns: `true` once queued; `false` only when `dontWait` is set and libzmq said `EAGAIN`.
    /// - Throws: ``ZMQError``.
    @discardableResult
    public func send(_ frame: some Collection<UInt8>, more: Bool = false, dontWait: Bool = false)
        throws(ZMQError) -> Bool
    {
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        let rc =
            frame.withContiguousStorageIfAvailable { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            ?? Array(frame).withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
        return try check(rc, dontWait: dontWait) != nil
    }

    /// Sends one frame from memory the caller owns; libzmq copies it before returning.
    ///
    /// The corresponding libzmq call is `zmq_send`.
    /// - Parameters:
    ///   - bytes: the frame.
    ///   - more: more frames of the same message follow (`ZMQ_SNDMORE`).
    ///   - dontWait: return `false` instead of blocking (`ZMQ_DONTWAIT`).
    /// - Returns: `true` once queued; `false` only when `dontWait` is set and libzmq said `EAGAIN`.
    /// - Throws: ``ZMQError``.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, more: Bool = false, dontWait: Bool = false)
        throws(ZMQError) -> Bool
    {
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        return try check(zmq_send(handle, bytes.baseAddress, bytes.count, flags), dontWait: dontWait) != nil
    }

    /// Receives one whole multipart message.
    ///
    /// The corresponding libzmq call is `zmq_msg_recv`.
    /// - Parameter dontWait: return `nil` instead of blocking when nothing is pending (`ZMQ_DONTWAIT`).
    /// - Returns: the frames (at least one); `nil` only when `dontWait` is set and nothing is pending.
    /// - Throws: ``ZMQError``, e.g. ``ZMQError/wouldBlock`` when ``SocketOption/receiveTimeout``
    ///   expires, ``ZMQError/contextTerminated``, ``ZMQError/interrupted``.
    public func receiveMultipart(dontWait: Bool = false) throws(ZMQError) -> [[UInt8]]? {
        guard try receiveFrame(dontWait: dontWait) else { return nil }
        return try collectFrames()
    }

    /// Receives one whole multipart message and a metadata property of its connection.
    ///
    /// Properties include `"User-Id"` (set by a ZAP handler such as ``ZAPAuthenticator``),
    /// `"Socket-Type"`, `"Routing-Id"`, `"Peer-Address"`, and any the peer or ZAP handler added.
    /// The corresponding libzmq calls are `zmq_msg_recv` and `zmq_msg_gets`.
    /// - Parameters:
    ///   - dontWait: return `nil` instead of blocking when nothing is pending.
    ///   - property: the metadata name, e.g. `"User-Id"`.
    /// - Returns: the frames and the property (`nil` if the connection has no such property),
    ///   or `nil` only when `dontWait` is set and nothing is pending.
    /// - Throws: ``ZMQError``.
    public func receiveMultipart(dontWait: Bool = false, metadata property: String) throws(ZMQError)
        -> (frames: [[UInt8]], property: String?)?
    {
        guard try receiveFrame(dontWait: dontWait) else { return nil }
        // A ROUTER makes the routing-id frame itself, without the connection's metadata: read the
        // property from the first frame that has it, each before the scratch message is reused.
        var value = zmq_msg_gets(scratch, property).map { String(cString: $0) }
        var frames = [copyScratch()]
        while zmq_msg_more(scratch) != 0 {
            try check(zmq_msg_recv(scratch, handle, 0))
            if value == nil { value = zmq_msg_gets(scratch, property).map { String(cString: $0) } }
            frames.append(copyScratch())
        }
        return (frames, value)
    }

    /// Receives one whole multipart message but copies only its first frames: at most `maxFrames`
    /// frames and `maxBytes` bytes in all. The rest of a larger message is received and dropped without
    /// copying, frame by frame, so a huge message costs the caller no memory of its own.
    ///
    /// libzmq itself holds a multipart message whole until its last frame has arrived
    /// (``SocketOption/maxMessageSize`` limits each frame, not the message).
    /// The corresponding libzmq calls are `zmq_msg_recv`, `zmq_msg_more` and `zmq_msg_gets`.
    /// - Parameters:
    ///   - dontWait: return `nil` instead of blocking when nothing is pending.
    ///   - maxFrames: the most frames copied.
    ///   - maxBytes: the most bytes copied; a frame that would go past it is not copied, nor any after it.
    ///   - property: a metadata name to read from the connection, e.g. `"User-Id"`.
    /// - Returns: the message, or `nil` only when `dontWait` is set and nothing is pending.
    /// - Throws: ``ZMQError``.
    public func receiveMultipart(
        dontWait: Bool = false, maxFrames: Int, maxBytes: Int, metadata property: String? = nil
    ) throws(ZMQError) -> LimitedMessage? {
        guard try receiveFrame(dontWait: dontWait) else { return nil }
        var message = LimitedMessage()
        while true {
            // A ROUTER makes the routing-id frame itself, without the connection's metadata.
            if let property, message.property == nil {
                message.property = zmq_msg_gets(scratch, property).map { String(cString: $0) }
            }
            message.frameCount += 1
            message.byteCount += zmq_msg_size(scratch)
            if !message.isTruncated && message.frames.count < maxFrames && message.byteCount <= maxBytes {
                message.frames.append(copyScratch())
            } else {
                message.isTruncated = true
            }
            guard zmq_msg_more(scratch) != 0 else { return message }
            // The rest of a multipart message has arrived with its first frame: this never blocks.
            try check(zmq_msg_recv(scratch, handle, 0))
        }
    }

    /// Receives one frame.
    ///
    /// The corresponding libzmq call is `zmq_msg_recv`.
    /// - Parameter dontWait: return `nil` instead of blocking when nothing is pending.
    /// - Returns: the bytes and whether more frames of the same message follow; `nil` only when
    ///   `dontWait` is set and nothing is pending.
    /// - Throws: ``ZMQError``.
    public func receiveFrame(dontWait: Bool = false) throws(ZMQError) -> (bytes: [UInt8], more: Bool)? {
        guard try receiveFrame(dontWait: dontWait) else { return nil }
        return (copyScratch(), zmq_msg_more(scratch) != 0)
    }

    /// Receives one frame into `scratch`; `false` when `dontWait` and nothing is pending.
    @inline(__always)
    private func receiveFrame(dontWait: Bool) throws(ZMQError) -> Bool {
        let rc = zmq_msg_recv(scratch, handle, dontWait ? ZMQ_DONTWAIT : 0)
        return try check(rc, dontWait: dontWait) != nil
    }

    /// Copies the frame in `scratch` and receives the rest of its message.
    private func collectFrames() throws(ZMQError) -> [[UInt8]] {
        var frames = [copyScratch()]
        while zmq_msg_more(scratch) != 0 {
            // The rest of a multipart message has arrived with its first frame: this never blocks.
            try check(zmq_msg_recv(scratch, handle, 0))
            frames.append(copyScratch())
        }
        return frames
    }

    @inline(__always)
    private func copyScratch() -> [UInt8] {
        let size = zmq_msg_size(scratch)
        guard size > 0, let data = zmq_msg_data(scratch) else { return [] }
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            memcpy(buffer.baseAddress!, data, size)
            count = size
        }
    }
}

/// A multipart message received with ``Socket/receiveMultipart(dontWait:maxFrames:maxBytes:metadata:)``.
public struct LimitedMessage: Sendable {
    /// The first frames, within the limits.
    public var frames: [[UInt8]] = []
    /// The metadata property asked for, if the connection has it.
    public var property: String?
    /// Whether the message had more frames or bytes than were copied.
    public var isTruncated = false
    /// How many frames the whole message had.
    public var frameCount = 0
    /// How many bytes the whole message had.
    public var byteCount = 0
}
