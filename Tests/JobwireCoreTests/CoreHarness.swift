import Foundation
import GRDB
import JobwireCore
import JobwirePostgres
import JobwireProtocol
import Logging
import Testing

@testable import JobwireBroker

/// A ``BrokerCore`` on a store in a temporary folder (or in memory), driven in-process: requests are
/// applied and committed as the server's loop does, on a ``ManualClock`` that the test moves.
final class CoreHarness {
    /// The stores the harness can run the core on, so that a rule suite can run on each.
    enum StoreKind: CaseIterable, CustomTestStringConvertible {
        /// The SQLite store in a temporary folder.
        case file
        /// The SQLite store in memory: a restart starts from nothing.
        case memory
        /// The PostgreSQL store, in a schema of its own on the server `JOBWIRE_TEST_POSTGRES` names
        /// (`scripts/test.sh` starts one); left out when the variable is not set.
        case postgres

        static var allCases: [StoreKind] {
            CoreHarness.postgresServer == nil ? [.file, .memory] : [.file, .memory, .postgres]
        }

        /// The stores that keep what was committed across a restart.
        static var durable: [StoreKind] { allCases.filter { $0 != .memory } }

        var testDescription: String { "\(self)" }
    }

    /// The PostgreSQL server the tests may use: `JOBWIRE_TEST_POSTGRES`, a `postgresql://` URL.
    static let postgresServer = ProcessInfo.processInfo.environment["JOBWIRE_TEST_POSTGRES"].flatMap {
        $0.isEmpty ? nil : $0
    }

    /// A PostgreSQL location on the test server with a schema of its own.
    static func postgresLocation(schema: String) throws -> PostgresLocation {
        let server = try #require(postgresServer, "JOBWIRE_TEST_POSTGRES is not set")
        return try PostgresLocation(url: server + (server.contains("?") ? "&" : "?") + "schema=\(schema)")
    }

    let directory: String
    let storeKind: StoreKind
    /// The broker's configuration the core is opened with, at start and at every restart.
    let configuration: BrokerConfiguration
    /// The core's clock: it moves only by ``advance(by:)``.
    let clock = ManualClock(.now())
    private(set) var core: BrokerCore
    private var requestNumber: Int64 = 0
    /// Replies taken from the core that no call has read yet, by request id.
    private var unread: [JSONValue: RPCResponse] = [:]
    /// Every committed event's topic and body, in order.
    private(set) var published: [[[UInt8]]] = []

    /// - Parameters:
    ///   - directory: the store's folder; a new temporary one when nil.
    ///   - store: which store the core runs on.
    ///   - configure: changes to the broker's configuration (`eventRetention`, say).
    init(
        directory: String? = nil, store: StoreKind = .file, configure: (inout BrokerConfiguration) -> Void = { _ in }
    ) throws {
        self.directory =
            directory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("jobwire-core-\(UUID())").path
        storeKind = store
        var configuration = BrokerConfiguration(dataDirectory: self.directory, fsync: false)
        configure(&configuration)
        if store == .postgres {
            configuration.postgres = try CoreHarness.postgresLocation(
                schema: "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20))
        }
        self.configuration = configuration
        core = try CoreHarness.open(self.directory, store: store, configuration: configuration, clock: clock)
    }

    private static func open(
        _ directory: String, store kind: StoreKind, configuration: BrokerConfiguration, clock: ManualClock
    ) throws -> BrokerCore {
        let store: any JobStore =
            if kind == .postgres, let location = configuration.postgres {
                try PostgresJobStore(
                    location: location, holder: "test", failoverTimeout: .seconds(5), logger: Logger(label: "test"),
                    standby: { holder in Issue.record("the test's store has another active broker: \(holder)") },
                    lost: { reason in Issue.record("the test's broker lost its role: \(reason)") })
            } else {
                try SQLiteJobStore(directory: kind == .file ? directory : nil, fsync: false)
            }
        return try BrokerCore(
            configuration: configuration.core, store: store, clock: clock, logger: Logger(label: "test"))
    }

    /// The core's time: the clock's, as the core read it last.
    var now: Timestamp { core.now }

    /// Moves the clock on by `duration`; the core reads it at once, as at the start of a round.
    func advance(by duration: Duration) {
        clock.advance(by: duration)
        core.readClock()
    }

    /// Whether a restart finds what was committed before it: the file store's does, the in-memory one
    /// starts from nothing.
    var keepsAcrossRestart: Bool { storeKind != .memory }

    /// Closes the store and opens a new core on it, as a restart of the broker does. The clock keeps its
    /// time: advance it before the restart for time that passes while the broker is down.
    func restart() throws {
        commit()
        core.store.close()
        core = try CoreHarness.open(directory, store: storeKind, configuration: configuration, clock: clock)
    }

    func close() {
        core.store.close()
        try? FileManager.default.removeItem(atPath: directory)
        if let location = configuration.postgres { try? PostgresJobStore.dropSchema(location) }
    }

    static let caller = Caller(route: [1], authenticatedKey: nil)

    /// Applies a request without committing; its reply is read by ``response(to:)`` after a commit.
    @discardableResult
    func send(_ method: String, _ params: JSONObject = [:], from caller: Caller = CoreHarness.caller) -> JSONValue {
        requestNumber += 1
        let id = JSONValue.int(requestNumber)
        core.handle(RPCRequest(id: id, method: method, params: params), from: caller)
        return id
    }

    /// Commits one round, then keeps the replies and events that came out.
    func commit() {
        core.commit()
        let (replies, events) = core.takeOutput()
        published += events
        for reply in replies {
            if let response = try? RPCResponse.decode(reply.body) { unread[response.id] = response }
        }
    }

    /// Goes round (tick and commit, as the server's loop does) until no ended job waits to be followed.
    /// - Returns: how many rounds it took.
    @discardableResult
    func settle() -> Int {
        var rounds = 0
        while core.hasPendingEnds {
            core.tick()
            commit()
            rounds += 1
        }
        return rounds
    }

    /// The reply to request `id`, if there is one yet.
    func response(to id: JSONValue) -> RPCResponse? { unread.removeValue(forKey: id) }

    /// Applies and commits one request; returns its result.
    @discardableResult
    func call(_ method: String, _ params: JSONObject = [:], from caller: Caller = CoreHarness.caller) throws
        -> JSONValue
    {
        let id = send(method, params, from: caller)
        commit()
        settle()
        let reply = try #require(response(to: id), "no reply to \(method)")
        return try reply.result.get()
    }

    /// Applies and commits one request that must fail; returns the error.
    func failure(_ method: String, _ params: JSONObject = [:], from caller: Caller = CoreHarness.caller) throws
        -> ProtocolError
    {
        let id = send(method, params, from: caller)
        commit()
        let reply = try #require(response(to: id), "no reply to \(method)")
        switch reply.result {
        case .success(let value):
            Issue.record("\(method) succeeded with \(value), expected an error")
            throw CoreHarnessError()
        case .failure(let error): return error
        }
    }

    /// A chain of `length` jobs, each waiting for the one before, after `head`; commits every 512
    /// creates as the server batches them. Returns the links' ids, in order.
    func chain(after head: String, length: Int) throws -> [String] {
        var ids: [String] = []
        ids.reserveCapacity(length)
        var previous = head
        for index in 0..<length {
            let params: JSONObject = [
                "type": "chain", "operation": "link", "source": "s", "predecessorIds": [.string(previous)],
            ]
            let job = try core.create(FieldReader(params), caller: CoreHarness.caller)
            previous = job.id
            ids.append(job.id)
            if index % 512 == 511 { commit() }
        }
        commit()
        return ids
    }

    func job(_ id: String) throws -> Job { try core.record(id).job }

    /// A manual job (it waits in `created`) for a chain to hang on; returns its id.
    func chainHead() throws -> String {
        let head = try call("jobs.create", ["type": "chain", "operation": "head", "source": "s", "trigger": "manual"])
        return try #require(head["id"]?.stringValue)
    }
}

struct CoreHarnessError: Error {}

extension JobStore {
    /// The SQLite store's database, for the tests that look at its rows.
    var database: DatabaseQueue {
        guard let store = self as? SQLiteJobStore else { fatalError("the harness's store is not the SQLite store") }
        return store.database
    }
}
