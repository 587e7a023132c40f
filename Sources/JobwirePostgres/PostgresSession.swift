import Dispatch
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// One connection to PostgreSQL, used synchronously by one thread: each call blocks on postgres-nio's
/// future. The futures complete on NIO's event loop, never on Swift's cooperative pool, so blocking the
/// broker's own thread (or the role keeper's) on them cannot starve anything.
final class PostgresSession: @unchecked Sendable {
    // @unchecked Sendable: used by one thread at a time (its owner); `connection` is replaced only by it.
    let location: PostgresLocation
    let logger: Logger
    /// The `application_name` the server shows for this connection (`pg_stat_activity`).
    let name: String
    private var connection: PostgresConnection?
    private static let nextID = Atomic<Int>(1)

    init(location: PostgresLocation, name: String, logger: Logger) {
        self.location = location
        self.name = name
        self.logger = logger
    }

    /// Whether the session has a connection (it may have died since without a call noticing).
    var isConnected: Bool { connection != nil && connection?.isClosed == false }

    /// Connects when not connected.
    /// - Parameter timeout: how long the connection and its handshake may take.
    func connect(timeout: Duration = .seconds(10)) throws {
        if let connection, !connection.isClosed { return }
        connection = nil
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: try Self.tls(location.tls))
        configuration.options.connectTimeout = .seconds(timeout.components.seconds)
        configuration.options.additionalStartupParameters = [("application_name", name)]
        let id = Self.nextID.add(1, ordering: .relaxed).oldValue
        let future = PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: id, logger: logger)
        do {
            connection = try Self.wait(future, timeout: timeout + .seconds(1))
        } catch {
            // A connection that comes up after the wait gave up is closed, not leaked.
            future.whenSuccess { late in _ = late.close() as EventLoopFuture<Void> }
            throw PostgresStoreError.connection("cannot connect to \(location): \(Self.describe(error))")
        }
    }

    deinit { disconnect() }

    /// Closes the connection, if any; the next call connects again.
    func disconnect() {
        guard let connection else { return }
        self.connection = nil
        let closed: EventLoopFuture<Void> = connection.close()
        _ = try? Self.wait(closed, timeout: .seconds(2))
    }

    /// Runs one statement and returns its rows and how many rows it changed.
    /// - Parameter timeout: how long to wait for the answer; `nil` waits as long as it takes.
    /// - Throws: ``PostgresStoreError/connection(_:)`` when the connection failed (the outcome of the
    ///   statement is then unknown), ``PostgresStoreError/server(_:)`` when the server refused it.
    @discardableResult
    func query(_ query: PostgresQuery, timeout: Duration? = nil) throws -> PostgresQueryResult {
        try run(timeout: timeout) { connection in connection.query(query, logger: logger) }
    }

    /// Runs statements without parameters, one after another (postgres-nio sends one statement per
    /// request): `sql` is split at its semicolons, so none may stand inside a literal.
    func execute(_ sql: String, timeout: Duration? = nil) throws {
        for statement in sql.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
            try query(PostgresQuery(unsafeSQL: String(statement)), timeout: timeout)
        }
    }

    /// Runs one request on the connection, sorting its failures as ``query(_:timeout:)`` does.
    private func run<T>(timeout: Duration?, _ request: (PostgresConnection) -> EventLoopFuture<T>) throws -> T {
        try connect()
        guard let connection else { throw PostgresStoreError.connection("not connected to \(location)") }
        do {
            return try Self.wait(request(connection), timeout: timeout)
        } catch let error as PSQLError where error.code == .server && !Self.endsSession(error) {
            throw PostgresStoreError.server(Self.describe(error))
        } catch let error as PostgresError where error.isServerError {
            throw PostgresStoreError.server("\(error)")
        } catch {
            // The connection is in an unknown state (a statement may be running): start over on a new one.
            self.connection = nil
            let closed: EventLoopFuture<Void> = connection.close()
            _ = try? Self.wait(closed, timeout: .seconds(2))
            throw PostgresStoreError.connection("the connection to \(location) failed: \(Self.describe(error))")
        }
    }

    private static func tls(_ mode: PostgresLocation.TLSMode) throws -> PostgresConnection.Configuration.TLS {
        switch mode {
        case .disable: return .disable
        case .prefer: return .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: return .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
    }

    /// Blocks until `future` completes, or until `timeout` passes.
    static func wait<T>(_ future: EventLoopFuture<T>, timeout: Duration?) throws -> T {
        guard let timeout else { return try future.wait() }
        let done = DispatchSemaphore(value: 0)
        let result = Outcome<T>()
        future.whenComplete { outcome in
            result.value = outcome
            done.signal()
        }
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        guard done.wait(timeout: .now() + .nanoseconds(Int(nanoseconds))) == .success else {
            throw PostgresStoreError.connection("no answer within \(timeout)")
        }
        return try result.value!.get()
    }

    /// A future's outcome, handed from NIO's thread to the waiting one (the semaphore orders the two).
    private final class Outcome<T>: @unchecked Sendable {
        var value: Result<T, any Error>?
    }

    /// Whether the server's error ends the session rather than refusing a statement: SQLSTATE class 57
    /// (operator intervention: `57P01` a fast shutdown or restart, `57P02`, `57P03` the server starting)
    /// and class 08 (connection exceptions). The statement's outcome is then unknown, as for a dropped
    /// connection.
    static func endsSession(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state.hasPrefix("57") || state.hasPrefix("08")
    }

    /// What went wrong, with the server's message when there is one.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                return message + state
            }
            return "\(error.code)" + (error.underlying.map { ": \($0)" } ?? "")
        }
        return "\(error)"
    }
}

/// What the PostgreSQL store could not do.
enum PostgresStoreError: Error, CustomStringConvertible {
    /// The connection failed or timed out: the outcome of the statement in flight is unknown.
    case connection(String)
    /// The server refused a statement.
    case server(String)

    var description: String {
        switch self {
        case .connection(let message), .server(let message): message
        }
    }
}

extension PostgresError {
    /// Whether the server refused the request (the connection is fine).
    fileprivate var isServerError: Bool {
        if case .server = self { return true }
        return false
    }
}
