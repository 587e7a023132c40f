import Foundation
import JobwireChildProcess
import JobwireProtocol
import JobwireTestSupport
import Testing
import ZeroMQ

@testable import JobwireBroker

/// A store that lost its write-ahead log, a store with a changed byte, and who may read the store and keys.
@Suite struct StoreSafetyTests {
    // MARK: A lost write-ahead log

    enum WALLoss: String, CaseIterable, Sendable {
        /// The log removed.
        case deleted
        /// The log cut inside its first frame: SQLite sees no commit at all.
        case truncatedToHeader
        /// The log cut in half: SQLite keeps the first commits only.
        case truncatedToHalf
    }

    @Test(
        "a store whose write-ahead log is gone or cut after a SIGKILL is refused, the mark untouched; --accept-lost-changes starts it and says what it dropped",
        .timeLimit(.minutes(2)), arguments: WALLoss.allCases)
    func lostLogIsRefused(loss: WALLoss) async throws {
        let harness = try await Harness(arguments: ["--no-fsync"])
        for index in 0..<40 { _ = try await harness.create(["metadata": ["n": .int(Int64(index))]]) }
        let seq = try await harness.seq()
        let epoch = try #require(try await harness.info().string("epoch"))
        await harness.rpc.close()
        await harness.process.kill(SIGKILL)
        let folder = harness.process.dataDirectory
        let wal = folder + "/jobwire.sqlite-wal"
        let markPath = folder + "/jobwire.seq"
        // Everything is in the log: nothing was checkpointed before the kill.
        let walSize = try #require(try FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int)
        #expect(walSize > 4096 * 8)
        let mark = try Data(contentsOf: URL(fileURLWithPath: markPath))
        #expect(String(decoding: mark, as: UTF8.self).hasPrefix(epoch + " "))
        switch loss {
        case .deleted: try FileManager.default.removeItem(atPath: wal)
        case .truncatedToHeader: #expect(truncate(wal, 1000) == 0)
        case .truncatedToHalf: #expect(truncate(wal, off_t(walSize / 2)) == 0)
        }
        // Absent or empty (SQLite may leave an empty log after opening the store) is the same loss.
        func walNow() -> Data { FileManager.default.contents(atPath: wal) ?? Data() }
        let walAfterLoss = walNow()

        for _ in 0..<2 {  // refused again and again: a refusal changes nothing
            let message = try await refusal(folder)
            #expect(message.contains("lost committed changes"), "\(message)")
            #expect(message.contains("says seq \(seq) of epoch \(epoch)"), "\(message)")
            #expect(
                message.contains(loss == .truncatedToHalf ? "the store ends at seq" : "the store is empty"),
                "\(message)")
            #expect(message.contains("--accept-lost-changes"), "\(message)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: markPath)) == mark)
            // A Bool, not two Data: a failure's diff of two logs would take the test runner minutes.
            let walUnchanged = walNow() == walAfterLoss
            #expect(walUnchanged, "the refused start changed jobwire.sqlite-wal")
        }

        let accepted = try await BrokerProcess.start(
            dataDirectory: folder, arguments: ["--no-fsync", "--accept-lost-changes"])
        #expect(accepted.log.contains("lost committed changes"), "\(accepted.log)")
        #expect(accepted.log.contains("dropped seqs"), "\(accepted.log)")
        #expect(accepted.log.contains("\(seq) of epoch \(epoch)"), "\(accepted.log)")
        // It now stands by what it has: the next start needs no flag.
        await accepted.stop()
        let again = try await BrokerProcess.start(dataDirectory: folder, arguments: ["--no-fsync"])
        await again.stop()
    }

    /// Starts a broker on `folder`, expects it to refuse, and returns what it said.
    private func refusal(_ folder: String, arguments: [String] = []) async throws -> String {
        do {
            let broker = try await BrokerProcess.start(dataDirectory: folder, arguments: ["--no-fsync"] + arguments)
            await broker.stop()
            Issue.record("the broker started on \(folder)")
            return ""
        } catch let error as TestSupportError {
            return error.description
        }
    }

    // MARK: A changed byte

    /// A store of ended jobs, each row written once in order (no stale copies in free space), closed so
    /// that everything is in the database file.
    private func storeOfEndedJobs(count: Int) throws -> String {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-damage")
        let store = try SQLiteJobStore(directory: folder, fsync: false)
        var batch = StoreBatch()
        let payload = String(repeating: "z", count: 300)
        for index in 0..<count {
            var job = Job(
                id: "us_jb_" + String(index + 1_000_000), type: "workbook", operation: "export", source: "s")
            job.input = ["payload": .string(payload)]
            job.status = .complete
            var record = JobRecord(job: job)
            record.storedStatus = nil
            batch.jobs.append(JobRow(record))
        }
        batch.seq = 1
        try store.commit(batch)
        store.close()
        return folder
    }

    @Test(
        "a byte changed in an ended job's row at 25%, 75% or 90% of the file stops the start, naming the row",
        .timeLimit(.minutes(2)), arguments: [25, 75, 90])
    func damagedRowIsRefused(percent: Int) async throws {
        let folder = try storeOfEndedJobs(count: 3000)
        let file = folder + "/jobwire.sqlite"
        var bytes = try #require(FileManager.default.contents(atPath: file))
        // The first run of the payload at or after the point: a byte of a row's data, not of free space.
        let run = Data(repeating: UInt8(ascii: "z"), count: 32)
        let found = try #require(bytes.range(of: run, in: (bytes.count * percent / 100)..<bytes.count))
        bytes[found.lowerBound + 16] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: file))

        let message = try await refusal(folder)
        #expect(message.contains("is damaged"), "\(message)")
        #expect(
            message.contains("the row of job us_jb_1") && message.contains("does not match its checksum"), "\(message)")
    }

    @Test("the same store, undamaged, starts and serves its ended jobs", .timeLimit(.minutes(1)))
    func undamagedStoreStarts() async throws {
        let folder = try storeOfEndedJobs(count: 3000)
        let broker = try await BrokerProcess.start(dataDirectory: folder, arguments: ["--no-fsync"])
        let context = try Context()
        let client = try RawClient(context: context, endpoint: broker.commands)
        let job = try await client.result("jobs.get", ["jobId": "us_jb_1002999"])
        #expect(job["status"] == "complete")
        await client.close()
        await broker.stop()
    }

    @Test("a changed byte in a row of the event log stops the start, naming the events")
    func damagedEventsAreRefused() throws {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-damage")
        let store = try SQLiteJobStore(directory: folder, fsync: false)
        var batch = StoreBatch()
        batch.events = (1...3).map { StoredEvent(seq: $0, topic: "job:t", body: Array(#"{"n":\#($0)}"#.utf8)) }
        batch.seq = 3
        try store.commit(batch)
        try store.database.write { db in
            try db.execute(sql: "UPDATE event_batches SET body = CAST(REPLACE(CAST(body AS TEXT), '2', '7') AS BLOB)")
        }
        store.close()
        #expect {
            _ = try SQLiteJobStore(directory: folder, fsync: false)
        } throws: { error in
            "\(error)".contains("the row of events 1...3 does not match its checksum")
        }
    }

    @Test("a changed byte in an action's row stops the start, naming the action; an intact one is read back")
    func damagedActionIsRefused() throws {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-damage")
        let store = try SQLiteJobStore(directory: folder, fsync: false)
        var batch = StoreBatch()
        batch.actions = [
            Action(id: "us_ac_1", domain: "workbook", resourceId: "us_wb_1", operation: "export", label: "Export"),
            Action(id: "us_ac_2", domain: "workbook", resourceId: "us_wb_1", operation: "import", label: "Import"),
        ]
        batch.seq = 1
        try store.commit(batch)
        #expect(try store.actions().map(\.label) == ["Export", "Import"])
        try store.database.write { db in
            try db.execute(
                sql: "UPDATE actions SET body = CAST(REPLACE(CAST(body AS TEXT), 'Import', 'Impart') AS BLOB)")
        }
        #expect(throws: StoreDamage.self) { try store.actions() }
        store.close()
        #expect {
            _ = try SQLiteJobStore(directory: folder, fsync: false)
        } throws: { error in
            "\(error)".contains("the row of action us_ac_2 does not match its checksum")
        }
    }

    // MARK: Permissions

    private func mode(_ path: String) -> mode_t {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return info.st_mode & 0o777
    }

    @Test("a new store's folder is 0700 and its files 0600, whatever the umask")
    func freshStoreIsPrivate() throws {
        let parent = TestPaths.temporaryDirectory(prefix: "jobwire-modes")
        let folder = parent + "/deeper/data"
        let previous = umask(0o022)
        defer { umask(previous) }
        let store = try SQLiteJobStore(directory: folder, fsync: false)
        var batch = StoreBatch()
        batch.events = [StoredEvent(seq: 1, topic: "job:t", body: Array("{}".utf8))]
        batch.seq = 1
        try store.commit(batch)
        store.markCommitted(epoch: "e", seq: 1)
        #expect(mode(folder) == 0o700)
        #expect(mode(parent + "/deeper") == 0o700)
        for name in ["jobwire.sqlite", "jobwire.sqlite-wal", "jobwire.seq"] {
            #expect(FileManager.default.fileExists(atPath: folder + "/" + name), "\(name)")
            #expect(mode(folder + "/" + name) == 0o600, "\(name) is \(String(mode(folder + "/" + name), radix: 8))")
        }
        store.close()
    }

    @Test("the files of a store made with wider permissions are tightened to 0600 when it opens")
    func existingStoreIsTightened() throws {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-modes")
        do {
            let store = try SQLiteJobStore(directory: folder, fsync: false)
            store.markCommitted(epoch: "e", seq: 0)
            store.close()
        }
        for name in ["jobwire.sqlite", "jobwire.seq"] { chmod(folder + "/" + name, 0o644) }
        let store = try SQLiteJobStore(directory: folder, fsync: false)
        defer { store.close() }
        for name in ["jobwire.sqlite", "jobwire.seq"] { #expect(mode(folder + "/" + name) == 0o600, "\(name)") }
    }

    /// The path of an executable on PATH, if any.
    private static func onPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// Runs `jobwire` with `arguments`, its environment plus `environment`; returns its exit code and output.
    private func jobwire(_ arguments: [String], environment: [String: String] = [:]) async throws -> (
        code: Int32?, output: String
    ) {
        let output = Locked("")
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let child = try ChildProcess(
            executable: try TestPaths.executable("jobwire"), arguments: arguments, environment: env,
            output: { line in output.withLock { $0 += line + "\n" } })
        let status = await child.wait()
        return (status.code, output.withLock { $0 })
    }

    @Test(
        "jobwire keys generate creates the secret key file 0600 from its first system call (seen with strace)",
        .enabled(if: onPath("strace") != nil, "needs strace"), .timeLimit(.minutes(1)))
    func secretKeyIsNeverReadableByOthers() async throws {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-keys")
        let trace = folder + ".trace"
        let strace = try #require(Self.onPath("strace"))
        let child = try ChildProcess(
            executable: strace,
            arguments: [
                "-f", "-e", "trace=open,openat,creat", "-o", trace, try TestPaths.executable("jobwire"), "keys",
                "generate", "--output", folder, "--name", "broker",
            ],
            environment: ProcessInfo.processInfo.environment, output: { _ in })
        #expect(await child.wait().code == 0)
        let creates = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").filter {
            $0.contains(folder) && $0.contains("O_CREAT")
        }
        let secret = creates.filter { !$0.contains("broker.pub") }
        #expect(!secret.isEmpty)
        for line in secret { #expect(line.contains(", 0600)"), "\(line)") }
        #expect(mode(folder + "/broker.key") == 0o600)
        // A second run never overwrites the secret.
        let before = FileManager.default.contents(atPath: folder + "/broker.key")
        let again = try await jobwire(["keys", "generate", "--output", folder, "--name", "broker"])
        #expect(again.code != 0)
        #expect(FileManager.default.contents(atPath: folder + "/broker.key") == before)
    }

    // MARK: Secret keys from a file or the environment

    @Test(
        "the broker and the CLI take their secret keys from --curve-secret-key-file or JOBWIRE_CURVE_SECRET_KEY",
        .timeLimit(.minutes(2)))
    func secretKeyFromFileOrEnvironment() async throws {
        let server = try CurveKeyPair.generate()
        let client = try CurveKeyPair.generate()
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-keys")
        try (server.secretKey + "\n").write(toFile: folder + "/broker.key", atomically: true, encoding: .utf8)
        try (client.secretKey + "\n").write(toFile: folder + "/client.key", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: folder + "/clients", withIntermediateDirectories: true)
        try (client.publicKey + "\n").write(toFile: folder + "/clients/c.pub", atomically: true, encoding: .utf8)

        let viaFile = try await BrokerProcess.start(arguments: [
            "--in-memory", "--curve-secret-key-file", folder + "/broker.key", "--authorized-keys", folder + "/clients",
        ])
        let viaEnvironment = try await BrokerProcess.start(
            arguments: ["--in-memory", "--authorized-keys", folder + "/clients"],
            environment: ["JOBWIRE_CURVE_SECRET_KEY": server.secretKey])
        let context = try Context()
        for broker in [viaFile, viaEnvironment] {
            // The broker runs CURVE with the key it was given: a client that knows its public key is served.
            let raw = try RawClient(context: context, endpoint: broker.commands, curve: (server.publicKey, client))
            #expect(try await raw.result("broker.info")["epoch"]?.stringValue != nil)
            await raw.close()
            // `--option=value`: a Z85 key may start with "-", which a separate argument would read as an option.
            let common = ["jobs", "list", "--commands", broker.commands, "--curve-server-key=" + server.publicKey]
            let fromFile = try await jobwire(common + ["--curve-secret-key-file", folder + "/client.key"])
            #expect(fromFile.code == 0, "\(fromFile.output)")
            let fromEnvironment = try await jobwire(
                common, environment: ["JOBWIRE_CURVE_SECRET_KEY": client.secretKey])
            #expect(fromEnvironment.code == 0, "\(fromEnvironment.output)")
            let wrongKey = try CurveKeyPair.generate()
            let refused = try await jobwire(
                common + ["--timeout", "1"], environment: ["JOBWIRE_CURVE_SECRET_KEY": wrongKey.secretKey])
            #expect(refused.code != 0)
            await broker.stop()
        }
        let unreadable = try await jobwire(["broker", "--in-memory", "--curve-secret-key-file", folder + "/none.key"])
        #expect(unreadable.code != 0)
        #expect(unreadable.output.contains("none.key"), "\(unreadable.output)")
    }
}
