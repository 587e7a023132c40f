public import Logging
public import ServiceLifecycle

/// The broker as a `Service`: it runs until graceful shutdown, then answers what it has in hand,
/// commits, and returns.
public struct BrokerService: Service {
    public var configuration: BrokerConfiguration
    public var logger: Logger
    /// Called once the sockets are bound, with the running server (to print where it listens).
    public var onListening: @Sendable (BrokerServer) -> Void

    public init(
        configuration: BrokerConfiguration, logger: Logger,
        onListening: @escaping @Sendable (BrokerServer) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let server = try BrokerServer.start(configuration: configuration, logger: logger)
        onListening(server)
        await withTaskCancellationOrGracefulShutdownHandler {
            await server.waitUntilStopped()
        } onCancelOrGracefulShutdown: {
            server.requestStop()
        }
    }
}
