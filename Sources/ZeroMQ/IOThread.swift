#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// A dedicated OS thread for blocking libzmq calls, so they never run on Swift's cooperative pool.
final class IOThread: Sendable {
    #if canImport(Glibc)
        private let thread: pthread_t
    #else
        private let thread: pthread_t?
    #endif

    /// Starts `body` on a new thread.
    init(_ body: @escaping @Sendable () -> Void) throws(ZMQError) {
        let box = Unmanaged.passRetained(Body(run: body)).toOpaque()
        #if canImport(Glibc)
            var thread = pthread_t()
        #else
            var thread: pthread_t? = nil
        #endif
        let rc = pthread_create(
            &thread, nil,
            { raw in
                #if canImport(Glibc)
                    let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
                #else
                    let body = Unmanaged<Body>.fromOpaque(raw).takeRetainedValue()
                #endif
                body.run()
                return nil
            }, box)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(box).release()
            throw ZMQError(code: rc)
        }
        self.thread = thread
    }

    /// Lets the thread clean up after itself when it ends; ``join()`` must not be called then.
    func detach() {
        #if canImport(Glibc)
            pthread_detach(thread)
        #else
            pthread_detach(thread!)
        #endif
    }

    /// Blocks until the thread's body returns. Call once, from another thread.
    func join() {
        #if canImport(Glibc)
            pthread_join(thread, nil)
        #else
            pthread_join(thread!, nil)
        #endif
    }

    private final class Body: Sendable {
        let run: @Sendable () -> Void

        init(run: @escaping @Sendable () -> Void) {
            self.run = run
        }
    }
}
