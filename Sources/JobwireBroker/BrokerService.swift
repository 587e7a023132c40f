import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// The broker as a `Service`: it runs until graceful shutdown, then answers what it has in hand,
/// commits, and returns.
public struct BrokerService: Service {
    public var configuration: BrokerConfiguration
    public var logger: Logger
    /// Called once the sockets are bound, with the running server (to print where it listens).
    public var onListening: @Sendable (BrokerServer) -> Void
    /// Called once when the broker waits as a standby (another broker is active on its PostgreSQL store).
    public var onStandby: @Sendable (String) -> Void

    public init(
        configuration: BrokerConfiguration, logger: Logger,
        onStandby: @escaping @Sendable (String) -> Void = { _ in },
        onListening: @escaping @Sendable (BrokerServer) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.onStandby = onStandby
        self.onListening = onListening
    }

    public func run() async throws {
        // The store opens on a thread of its own: a standby blocks there until it takes over, never on
        // Swift's cooperative pool. A shutdown while it waits ends the wait.
        let stop = StopFlag()
        let started: BrokerServer
        do {
            started = try await withTaskCancellationOrGracefulShutdownHandler {
                try await withCheckedThrowingContinuation { continuation in
                    let thread = Thread { [configuration, logger, onStandby] in
                        continuation.resume(
                            with: Result {
                                try BrokerServer.start(
                                    configuration: configuration, logger: logger, standby: onStandby,
                                    cancelled: { stop.isSet })
                            })
                    }
                    thread.name = "jobwire-broker-start"
                    thread.start()
                }
            } onCancelOrGracefulShutdown: {
                stop.set()
            }
        } catch  where stop.isSet {
            return
        }
        let server = started
        onListening(server)
        await withTaskCancellationOrGracefulShutdownHandler {
            await server.waitUntilStopped()
        } onCancelOrGracefulShutdown: {
            server.requestStop()
        }
    }
}

/// Set once, read from any thread.
private final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}
