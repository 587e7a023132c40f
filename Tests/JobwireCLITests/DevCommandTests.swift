import Foundation
import JobwireChildProcess
import JobwireTestSupport
import Testing

@Suite("jobwire dev", .timeLimit(.minutes(1)))
struct DevCommandTests {
    @Test("runs the Procfile's processes with the broker's endpoints, restarts one that crashes, stops on SIGTERM")
    func restartsACrash() async throws {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-dev")
        let mark = folder + "/crashed-once"
        try """
        # one process crashes once, the other prints where the broker is
        crashy: sh -c 'test -f "$MARK" || { touch "$MARK"; echo crashing; exit 3; }; echo steady; exec sleep 30'
        hello: echo "commands at $JOBWIRE_COMMANDS"; exec sleep 30
        """.write(toFile: folder + "/Procfile", atomically: true, encoding: .utf8)
        let dev = try CLIProcess(
            [
                "dev", "--procfile", folder + "/Procfile", "--in-memory", "--events", "tcp://127.0.0.1:*",
                "--commands", "tcp://127.0.0.1:*",
            ],
            environment: ["MARK": mark])
        let output = try await dev.waitFor("the restarted process") { $0.contains("crashy | steady") }
        #expect(output.contains("crashy | crashing"))
        #expect(output.contains("system | crashy exited with code 3; restarting in 1 s"))
        #expect(output.contains("hello  | commands at tcp://127.0.0.1:"))
        dev.signal(SIGTERM)
        let result = try await dev.finish(timeout: .seconds(10))
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("system | crashy stopped"))
        #expect(result.stdout.contains("system | hello  stopped") || result.stdout.contains("system | hello stopped"))
        #expect(result.stdout.hasSuffix("system | stopped\n"))
    }

    @Test("without --events and --commands, the broker binds where JOBWIRE_EVENTS and JOBWIRE_COMMANDS say")
    func readsTheEnvironment() async throws {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-dev")
        try "hello: echo \"commands at $JOBWIRE_COMMANDS\"; exec sleep 30\n".write(
            toFile: folder + "/Procfile", atomically: true, encoding: .utf8)
        let (events, commands) = ("ipc://\(folder)/events.sock", "ipc://\(folder)/commands.sock")
        let dev = try CLIProcess(
            ["dev", "--procfile", folder + "/Procfile", "--in-memory"],
            environment: ["JOBWIRE_EVENTS": events, "JOBWIRE_COMMANDS": commands])
        let output = try await dev.waitFor("the process to print the endpoint") { $0.contains("commands at ipc://") }
        #expect(output.contains("broker listening: events \(events), commands \(commands)"), "\(output)")
        #expect(output.contains("| commands at \(commands)"), "\(output)")
        dev.signal(SIGTERM)
        #expect(try await dev.finish(timeout: .seconds(10)).status == 0)
    }

    @Test("the pid shown is the process's own; killing it or its shell restarts it and leaves nothing behind")
    func killedProcessesLeaveNoOrphans() async throws {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-dev")
        // `cat FIFO` waits for a writer until killed; FIFO, in a folder of this test's own, marks its processes.
        let (plain, wrapped) = (folder + "/plain.fifo", folder + "/wrapped.fifo")
        for fifo in [plain, wrapped] { #expect(mkfifo(fifo, 0o600) == 0) }
        try """
        plain: cat \(plain)
        wrapped: cat \(wrapped); echo the shell goes on
        """.write(toFile: folder + "/Procfile", atomically: true, encoding: .utf8)
        let dev = try CLIProcess(
            [
                "dev", "--procfile", folder + "/Procfile", "--in-memory", "--events", "tcp://127.0.0.1:*",
                "--commands", "tcp://127.0.0.1:*",
            ])
        let output = try await dev.waitFor("both processes started") {
            $0.contains("plain started") && $0.contains("wrapped started")
        }
        let plainPid = try #require(Self.startedPids("plain", in: output).first)
        let wrapperPid = try #require(Self.startedPids("wrapped", in: output).first)
        // A simple command is exec'd: the pid shown is cat's. One with `;` runs under a shell, which cat
        // is a child of (both carry the marker).
        let firstPlain = try await Self.waitForProcesses(marked: plain) { $0.count == 1 }
        #expect(firstPlain == [plainPid])
        let firstWrapped = try await Self.waitForProcesses(marked: wrapped) { $0.count == 2 }
        #expect(firstWrapped.count == 2 && firstWrapped.contains(wrapperPid), "\(firstWrapped)")

        _ = kill(plainPid, SIGKILL)
        _ = kill(wrapperPid, SIGKILL)
        try await dev.waitFor("both processes restarted") {
            Self.startedPids("plain", in: $0).count == 2 && Self.startedPids("wrapped", in: $0).count == 2
        }
        // Each runs again, and none of the old processes: the shell's cat was stopped with its shell.
        let restarted = Self.startedPids("plain", in: dev.stdout)[1]
        let plainNow = try await Self.waitForProcesses(marked: plain) { $0 == [restarted] }
        #expect(plainNow == [restarted])
        let wrappedNow = try await Self.waitForProcesses(marked: wrapped) {
            $0.count == 2 && Set($0).isDisjoint(with: firstWrapped)
        }
        #expect(wrappedNow.count == 2 && Set(wrappedNow).isDisjoint(with: firstWrapped), "\(wrappedNow)")
        #expect(
            dev.stdout.contains(
                "system  | wrapped was killed by signal 9; stopped 1 process it left in its group; restarting in 1 s"))

        dev.signal(SIGINT)
        let result = try await dev.finish(timeout: .seconds(20))
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.hasSuffix("system  | stopped\n"))
        for marker in [plain, wrapped] {
            let left = try await Self.waitForProcesses(marked: marker) { $0.isEmpty }
            #expect(left.isEmpty, "\(marker) still runs after Ctrl-C: \(left)")
        }
    }

    @Test("a process does not outlive a jobwire dev that is killed with SIGKILL")
    func sigkilledDevLeavesNoOrphans() async throws {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-dev")
        let marker = folder + "/listener.fifo"
        #expect(mkfifo(marker, 0o600) == 0)
        try "listener: cat \(marker)\n".write(toFile: folder + "/Procfile", atomically: true, encoding: .utf8)
        let dev = try CLIProcess(
            [
                "dev", "--procfile", folder + "/Procfile", "--in-memory", "--events", "tcp://127.0.0.1:*",
                "--commands", "tcp://127.0.0.1:*",
            ])
        try await dev.waitFor("the listener started") { $0.contains("listener started") }
        _ = try await Self.waitForProcesses(marked: marker) { $0.count == 1 }
        dev.signal(SIGKILL)
        _ = try? await dev.finish(timeout: .seconds(20))
        let left = try await Self.waitForProcesses(marked: marker) { $0.isEmpty }
        #expect(left.isEmpty, "the listener outlived jobwire dev: \(left)")
    }

    @Test("a simple command is exec'd by the shell; one with shell operators is left to it")
    func execLine() {
        let exec: [(String, String)] = [
            (".build/debug/workbook-export", "exec .build/debug/workbook-export"),
            ("PORT=1 DEBUG='a b' python app.py --x \"y; z\"", "PORT=1 DEBUG='a b' exec python app.py --x \"y; z\""),
            ("listener 2>&1 >out.log $(echo 'a;b') `date`", "exec listener 2>&1 >out.log $(echo 'a;b') `date`"),
            ("exec sleep 1", "exec sleep 1"),
        ]
        for (command, line) in exec { #expect(ChildProcess.shellCommandLine(command) == line) }
        for command in [
            "echo hi; exec sleep 30", "a && b", "a || b", "a | b", "a &", "(a)", "if true; then a; fi", "{ a; }",
            "a\nb", "X=1", "a 'unclosed",
        ] {
            #expect(ChildProcess.shellCommandLine(command) == command)
        }
    }

    @Test("a child runs in its folder and its own process group; one that cannot start is an error")
    func childProcessBasics() async throws {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-child")
        let lines = Locked<[String]>([])
        let child = try ChildProcess(
            command: "pwd; ps -o pgid= -p $$", environment: ["PATH": "/usr/bin:/bin"], directory: folder
        ) { line in lines.withLock { $0.append(line) } }
        let status = await child.wait()
        #expect(status.code == 0)
        let output = lines.withLock { $0 }
        #expect(output.first.map { URL(fileURLWithPath: $0).standardized.path } == URL(fileURLWithPath: folder).path)
        #expect(output.last?.trimmingCharacters(in: .whitespaces) == "\(child.pid)", "\(output)")
        #expect(throws: ChildProcessError.self) {
            try ChildProcess(executable: folder + "/missing", arguments: [], environment: [:], output: { _ in })
        }
    }

    /// The pids of `name started (pid N)` lines, in order.
    static func startedPids(_ name: String, in output: String) -> [Int32] {
        output.split(separator: "\n").compactMap { line -> Int32? in
            guard line.contains("| \(name) started (pid ") else { return nil }
            let tail = line.split(separator: "(pid ", maxSplits: 1).last ?? ""
            return Int32(tail.prefix { $0.isNumber })
        }
    }

    /// Living processes whose command line contains `marker`, once `done` accepts them (or the last seen
    /// after a generous limit).
    static func waitForProcesses(
        marked marker: String, timeout: Duration = .seconds(30), until done: ([Int32]) -> Bool
    ) async throws -> [Int32] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let found = processes(marked: marker)
            if done(found) || ContinuousClock.now >= deadline { return found }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    static func processes(marked marker: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry),
                let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                String(decoding: data, as: UTF8.self).contains(marker)
            else { return nil }
            // A zombie has an empty command line; a process still running has its own.
            return pid
        }
        .sorted()
    }

    @Test("a missing or malformed Procfile is a one-line error")
    func badProcfile() async throws {
        let folder = TestPaths.temporaryDirectory(prefix: "jobwire-dev")
        let missing = try await CLIProcess.run(["dev", "--procfile", folder + "/Procfile", "--in-memory"])
        #expect(missing.status == 64 && missing.stderr.contains("cannot read \(folder)/Procfile"), "\(missing)")
        try "web python app.py\n".write(toFile: folder + "/Procfile", atomically: true, encoding: .utf8)
        let malformed = try await CLIProcess.run(["dev", "--procfile", folder + "/Procfile", "--in-memory"])
        #expect(
            malformed.status == 64 && malformed.stderr.contains("Procfile:1: expected `name: command`"), "\(malformed)")
    }
}
