import Foundation
import Testing
import ZeroMQ

/// Runs blocking work on a thread of its own, never on the cooperative pool, and awaits it.
func onThread<R: Sendable>(_ body: @escaping @Sendable () -> R) async -> R {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

@Suite struct ShutdownTests {
    @Test(
        "terminating a context with a blocked receive and a waiting AsyncSocket does not hang",
        .timeLimit(.minutes(1)))
    func terminateWhileWaiting() async throws {
        let context = try Context()
        let waiting = try AsyncSocket(context: context, type: .sub) { socket in
            try socket.subscribe("")
            try socket.connect("tcp://127.0.0.1:9")  // nobody there: it waits forever
        }
        let consumer = Task {
            for try await _ in waiting.messages {}
        }
        let blocked = Task {
            await onThread { () -> ZMQError? in
                do throws(ZMQError) {
                    let socket = try Socket(context, type: .pull)
                    try socket.bind("inproc://\(uniqueName("blocked"))")
                    _ = try socket.receiveMultipart()  // blocks until the context goes away
                    return nil
                } catch {
                    return error
                }
            }
        }
        // Sockets of the test's own that stay open until terminate has begun.
        let idle = try Socket(context, type: .dealer)
        try idle.connect("tcp://127.0.0.1:9")
        try idle.send(["unsendable".bytes])  // queued: linger 0 must drop it
        idle.close()

        await onThread { context.terminate() }
        let blockedError = await blocked.value
        #expect(blockedError == ZMQError.contextTerminated, "\(String(describing: blockedError))")
        await #expect(throws: ZMQError.contextTerminated) { try await consumer.value }
        await #expect(throws: AsyncSocketError.closed) { try await waiting.withSocket { _ in 0 } }
        await waiting.close()  // already finished: returns at once
    }

    @Test(
        "shutdown wakes blocked calls with contextTerminated and new sockets are refused",
        .timeLimit(.minutes(1)))
    func shutdownWakesBlockedCalls() async throws {
        let context = try Context()
        let name = "inproc://\(uniqueName("shutdown"))"
        let ready = FreedFlag()
        let blocked = Task {
            await onThread { () -> ZMQError? in
                do throws(ZMQError) {
                    let socket = try Socket(context, type: .rep)
                    try socket.bind(name)
                    ready.set()
                    _ = try socket.receiveMultipart()
                    return nil
                } catch {
                    return error
                }
            }
        }
        for _ in 0..<500 where !ready.value {
            try await Task.sleep(for: .milliseconds(5))
        }
        context.shutdown()
        let blockedError = await blocked.value
        #expect(blockedError == ZMQError.contextTerminated, "\(String(describing: blockedError))")
        #expect(throws: ZMQError.contextTerminated) { _ = try Socket(context, type: .pair) }
        context.shutdown()  // idempotent
        await onThread { context.terminate() }
    }
}
