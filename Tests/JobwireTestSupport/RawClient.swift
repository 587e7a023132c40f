public import JobwireProtocol
public import ZeroMQ

/// A protocol-level client for tests: one DEALER connection, requests matched to replies by id.
public final class RawClient: Sendable {
    private let socket: AsyncSocket
    private let state: Locked<State>
    private let reader: Task<Void, Never>

    private struct State {
        var nextId: Int64 = 1
        var waiting: [Int64: CheckedContinuation<RPCResponse, any Error>] = [:]
        var closed = false
    }

    /// Connects a DEALER, with CURVE when `curve` names the broker's public key and the client's key pair.
    public init(context: Context, endpoint: String, curve: (serverKey: String, client: CurveKeyPair)? = nil) throws {
        let socket = try AsyncSocket(context: context, type: .dealer) { socket in
            try socket.set(.linger, .zero)
            if let curve {
                try socket.set(.curveServerKey, curve.serverKey)
                try socket.set(.curvePublicKey, curve.client.publicKey)
                try socket.set(.curveSecretKey, curve.client.secretKey)
            }
            try socket.connect(endpoint)
        }
        self.socket = socket
        let state = Locked(State())
        self.state = state
        reader = Task {
            do {
                for try await frames in socket.messages {
                    guard let body = frames.last, let response = try? RPCResponse.decode(body),
                        let id = response.id.intValue
                    else { continue }
                    let waiter = state.withLock { $0.waiting.removeValue(forKey: id) }
                    waiter?.resume(returning: response)
                }
            } catch {}
            let waiters = state.withLock { s in
                s.closed = true
                defer { s.waiting = [:] }
                return s.waiting
            }
            for waiter in waiters.values { waiter.resume(throwing: TestSupportError("connection closed")) }
        }
    }

    /// Sends a request and waits for its reply.
    public func call(_ method: String, _ params: JSONObject = [:], timeout: Duration = .seconds(10)) async throws
        -> RPCResponse
    {
        let id = state.withLock { s in
            defer { s.nextId += 1 }
            return s.nextId
        }
        let request = RPCRequest(id: .int(id), method: method, params: params)
        return try await withThrowingTaskGroup(of: RPCResponse.self) { group in
            group.addTask {
                try await withCheckedThrowingContinuation { continuation in
                    let closed = self.state.withLock { s in
                        if s.closed { return true }
                        s.waiting[id] = continuation
                        return false
                    }
                    if closed {
                        continuation.resume(throwing: TestSupportError("connection closed"))
                    } else {
                        self.socket.send([[], request.bytes])
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                let waiter = self.state.withLock { $0.waiting.removeValue(forKey: id) }
                waiter?.resume(throwing: TestSupportError("no reply to \(method) within \(timeout)"))
                throw TestSupportError("no reply to \(method) within \(timeout)")
            }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
    }

    /// Calls and returns the result, throwing the JSON-RPC error as a ``ProtocolError``.
    public func result(_ method: String, _ params: JSONObject = [:]) async throws -> JSONValue {
        try await call(method, params).result.get()
    }

    /// Sends raw frames (after the DEALER's own identity), for framing tests.
    public func sendRaw(_ frames: [[UInt8]]) { socket.send(frames) }

    public func close() async {
        reader.cancel()
        await socket.close()
    }
}
