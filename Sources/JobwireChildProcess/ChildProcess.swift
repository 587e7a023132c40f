internal import CJobwireSpawn
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started by fork and exec, its output read line by line on a thread.
///
/// Foundation's `Process.run()` in Swift 6.3 over-reads a `dirent` while it lists `/proc/self/fd`
/// (swift-corelibs-foundation PR 5472) and crashes now and then when many processes start; this starts
/// them without it. A child runs in a process group of its own, so one signal stops everything it
/// started (`swift run`, a shell pipeline), and a terminal's Ctrl-C reaches it only through its parent.
/// On Linux it also gets SIGTERM when its parent dies, even by SIGKILL (`PR_SET_PDEATHSIG`): the fork
/// happens on the thread that waits for the child, which lives exactly as long as the child does.
/// swift-subprocess (1.0.2) sets a process group but has no hook between fork and exec on Linux, and
/// `prctl` is variadic (Swift cannot call it), hence the few lines of C in `CJobwireSpawn`.
public final class ChildProcess: Sendable {
    /// The child's process id (and process group id).
    public let pid: Int32
    private let core: Core

    /// What the waiting and reading threads share with the owner.
    private final class Core: Sendable {
        let state = Mutex(State())
        /// The fork's result, handed from the waiting thread to the initializer.
        let spawned = DispatchSemaphore(value: 0)

        struct State {
            /// The pid, or minus the errno of a failed start.
            var spawnResult: Int32 = 0
            var status: ExitStatus?
            /// Output readers not at end of file yet.
            var openReaders = 0
            /// Set once the child has exited and its output is read (or a grace period after the exit).
            var finished = false
            var waiters: [CheckedContinuation<ExitStatus, Never>] = []
        }

        /// Resumes the waiters once the child has exited and its output has been read.
        func finishIfDone(force: Bool = false) {
            let (status, waiters) = state.withLock { s -> (ExitStatus?, [CheckedContinuation<ExitStatus, Never>]) in
                guard let status = s.status, !s.finished, s.openReaders == 0 || force else { return (nil, []) }
                s.finished = true
                defer { s.waiters = [] }
                return (status, s.waiters)
            }
            if let status { for waiter in waiters { waiter.resume(returning: status) } }
        }
    }

    /// How a child ended.
    public struct ExitStatus: Sendable, CustomStringConvertible {
        public var raw: Int32
        /// The signal that killed it, if one did.
        public var signal: Int32? { raw & 0x7f == 0 ? nil : raw & 0x7f }
        /// Its exit code, if it exited.
        public var code: Int32? { raw & 0x7f == 0 ? (raw >> 8) & 0xff : nil }
        public var description: String {
            if let code { return "exited with code \(code)" }
            return "was killed by signal \(signal ?? 0)"
        }
    }

    /// Starts a shell command line with `/bin/sh -c`, its standard output and error merged.
    ///
    /// A simple command runs as `exec command` (see ``shellCommandLine(_:)``), so ``pid`` is the command's
    /// own; one with shell operators (`;`, `&&`, `|`, …) runs under the shell, whose pid ``pid`` is.
    /// - Parameters:
    ///   - command: a shell command line.
    ///   - environment: the child's whole environment.
    ///   - directory: where it runs; the current folder when nil.
    ///   - line: called on a reader thread with each line of output, without its newline.
    /// - Throws: ``ChildProcessError`` when it cannot start.
    public convenience init(
        command: String, environment: [String: String], directory: String?,
        line: @escaping @Sendable (String) -> Void
    ) throws {
        try self.init(
            executable: "/bin/sh", arguments: ["-c", ChildProcess.shellCommandLine(command)],
            environment: environment, directory: directory, output: line)
    }

    /// Starts an executable.
    /// - Parameters:
    ///   - executable: its path.
    ///   - arguments: its arguments, without the program name.
    ///   - environment: the child's whole environment.
    ///   - directory: where it runs; the current folder when nil.
    ///   - dieWithParent: on Linux, whether the child gets SIGTERM when this process dies.
    ///   - output: called on a reader thread with each line of standard output (and of standard error
    ///     when `errorOutput` is nil).
    ///   - errorOutput: called with each line of standard error, when it is read apart.
    /// - Throws: ``ChildProcessError`` when it cannot start.
    public init(
        executable: String, arguments: [String], environment: [String: String], directory: String? = nil,
        dieWithParent: Bool = true, output: @escaping @Sendable (String) -> Void,
        errorOutput: (@Sendable (String) -> Void)? = nil
    ) throws {
        let out = try ChildProcess.makePipe()
        let err = errorOutput == nil ? nil : try ChildProcess.makePipe()
        let core = Core()
        let argv = [executable] + arguments
        let envp = environment.map { "\($0.key)=\($0.value)" }
        let (outWrite, errWrite) = (out.write, err?.write ?? out.write)
        let deathSignal = dieWithParent ? SIGTERM : 0
        let waiter = Thread {
            let result = withCStrings(argv) { argvPointers in
                withCStrings(envp) { envPointers in
                    if let directory {
                        return jobwire_spawn(
                            executable, argvPointers, envPointers, directory, outWrite, errWrite, deathSignal)
                    }
                    return jobwire_spawn(executable, argvPointers, envPointers, nil, outWrite, errWrite, deathSignal)
                }
            }
            core.state.withLock { $0.spawnResult = result }
            core.spawned.signal()
            guard result > 0 else { return }
            var status: Int32 = 0
            while waitpid(result, &status, 0) < 0 && errno == EINTR {}
            core.state.withLock { $0.status = ExitStatus(raw: status) }
            core.finishIfDone()
            // The output ends when the last process holding the pipe does. One left in the child's group
            // may run on: wait 1 s for it, then give up; with none left, wait for the readers to drain
            // the pipe (on a loaded machine they may run late), up to 10 s for a process that left the group.
            let exited = ContinuousClock.now
            while !core.state.withLock({ $0.finished }) {
                Thread.sleep(forTimeInterval: 0.02)
                let waited = ContinuousClock.now - exited
                if waited >= .seconds(10) || (waited >= .seconds(1) && !groupMembers(result).isEmpty) {
                    core.finishIfDone(force: true)
                }
            }
        }
        waiter.name = "jobwire-child-wait"
        // Counted before the waiter runs: a child that ends at once must not count as done before its
        // output is read.
        core.state.withLock { $0.openReaders = err == nil ? 1 : 2 }
        waiter.start()
        core.spawned.wait()
        close(out.write)
        if let err { close(err.write) }
        let result = core.state.withLock { $0.spawnResult }
        guard result > 0 else {
            close(out.read)
            if let err { close(err.read) }
            throw ChildProcessError("cannot start \(executable): \(String(cString: strerror(-result)))")
        }
        self.pid = result
        self.core = core
        readLines(out.read, into: output)
        if let err, let errorOutput { readLines(err.read, into: errorOutput) }
    }

    /// A pipe whose ends no other child inherits (or it would not close when its own child ends).
    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        let result = jobwire_pipe(&fds)
        guard result == 0 else { throw ChildProcessError("cannot make a pipe: errno \(-result)") }
        return (fds[0], fds[1])
    }

    private func readLines(_ fd: Int32, into line: @escaping @Sendable (String) -> Void) {
        let core = self.core
        let reader = Thread {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4096) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                pending.append(contentsOf: buffer[0..<count])
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    line(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            }
            if !pending.isEmpty { line(String(decoding: pending, as: UTF8.self)) }
            close(fd)
            core.state.withLock { $0.openReaders -= 1 }
            core.finishIfDone()
        }
        reader.name = "jobwire-child-output"
        reader.start()
    }

    /// Whether it has ended.
    public var hasExited: Bool { core.state.withLock { $0.status != nil } }

    /// How it ended, if it has.
    public var exitStatus: ExitStatus? { core.state.withLock { $0.status } }

    /// Waits for the child to end and for its output to be read.
    public func wait() async -> ExitStatus {
        await withCheckedContinuation { continuation in
            let status = core.state.withLock { s -> ExitStatus? in
                if s.finished, let status = s.status { return status }
                s.waiters.append(continuation)
                return nil
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// Signals the child alone.
    public func signal(_ signal: Int32) {
        guard !hasExited else { return }
        _ = kill(pid, signal)
    }

    /// Signals the child's whole process group (what is left of it after the child ended, too).
    public func signalGroup(_ signal: Int32) {
        guard !hasExited || !ChildProcess.livingMembers(ofGroup: pid).isEmpty else { return }
        _ = kill(-pid, signal)
    }

    /// SIGTERM to the group, then SIGKILL to what still runs after `grace`; returns once the child has
    /// ended and nothing is left running in its group.
    public func stop(grace: Duration = .seconds(5)) async -> ExitStatus {
        let deadline = ContinuousClock.now + grace
        signalGroup(SIGTERM)
        let pid = self.pid
        let killer = Task {
            try await Task.sleep(until: deadline)
            _ = kill(-pid, SIGKILL)
        }
        let status = await wait()
        killer.cancel()
        await endGroup(deadline: deadline)
        return status
    }

    /// Once the child has ended, stops what it left running in its process group (a command a shell
    /// started, a listener's helper): SIGTERM, then SIGKILL after `grace`.
    /// - Returns: how many processes were left.
    @discardableResult
    public func stopGroup(grace: Duration = .seconds(5)) async -> Int {
        let left = ChildProcess.livingMembers(ofGroup: pid).count
        guard left > 0 else { return 0 }
        _ = kill(-pid, SIGTERM)
        await endGroup(deadline: ContinuousClock.now + grace)
        return left
    }

    /// Waits until the group has no living process, SIGKILLs it at `deadline`.
    private func endGroup(deadline: ContinuousClock.Instant) async {
        while !ChildProcess.livingMembers(ofGroup: pid).isEmpty {
            if ContinuousClock.now >= deadline {
                _ = kill(-pid, SIGKILL)
                return
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The processes of a process group that have not ended (zombies left unreaped do not count).
    /// On systems without `/proc`, the group leader's id stands for a group that can still be signaled.
    public static func livingMembers(ofGroup group: Int32) -> [Int32] {
        groupMembers(group)
    }

    /// The shell command line that runs `command` with the shell replaced by it (`exec`), when it is a
    /// simple command: words, quotes, `$(…)`, redirections and leading `NAME=value` assignments, but no
    /// `;`, `&`, `|`, `&&`, `||`, newline, subshell or compound command. Anything else is left as it is.
    public static func shellCommandLine(_ command: String) -> String {
        let characters = Array(command)
        var single = false
        var double = false
        var backtick = false
        var depth = 0
        var escaped = false
        var wordStarts: [Int] = []
        var inWord = false
        for (index, character) in characters.enumerated() {
            let previous = index > 0 ? characters[index - 1] : " "
            let next = index + 1 < characters.count ? characters[index + 1] : " "
            if escaped {
                escaped = false
                continue
            }
            let outerDepth = depth
            if single {
                if character == "'" { single = false }
                continue
            }
            if character == "\\" {
                escaped = true
            } else if character == "`" {
                backtick.toggle()
            } else if character == "\"" {
                double.toggle()
            } else if character == "'" && !double {
                single = true
            } else if character == "$" && next == "(" {
                depth += 1
            } else if character == "(" && depth > 0 && previous != "$" {
                depth += 1
            } else if character == ")" && depth > 0 {
                depth -= 1
            }
            let top = !double && !backtick && depth == 0 && outerDepth == 0
            if top {
                switch character {
                case ";", "|", "\n", "(", ")": return command
                case "&" where previous != ">" && previous != "<": return command
                default: break
                }
            }
            if top && (character == " " || character == "\t") {
                inWord = false
            } else if !inWord {
                inWord = true
                wordStarts.append(index)
            }
        }
        guard !single, !double, !backtick, depth == 0 else { return command }
        let words = wordStarts.map { start in
            String(characters[start...].prefix { $0 != " " && $0 != "\t" })
        }
        guard let nameIndex = words.firstIndex(where: { !isAssignment($0) }) else { return command }
        let reserved: Set<String> = [
            "if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "in", "{",
            "}", "!", "[[", "function", "select", "time", "exec",
        ]
        guard !reserved.contains(words[nameIndex]) else { return command }
        let start = wordStarts[nameIndex]
        return String(characters[..<start]) + "exec " + String(characters[start...])
    }

    private static func isAssignment(_ word: String) -> Bool {
        guard let equals = word.firstIndex(of: "="), equals != word.startIndex else { return false }
        let name = word[..<equals]
        return name.first.map { $0 == "_" || ($0.isASCII && $0.isLetter) } == true
            && name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }
}

/// A child process could not start.
public struct ChildProcessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A NULL-terminated array of C strings, valid inside `body`.
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}

/// The living processes of a process group (see ``ChildProcess/livingMembers(ofGroup:)``).
private func groupMembers(_ group: Int32) -> [Int32] {
    guard kill(-group, 0) == 0 else { return [] }
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [group] }
    return entries.compactMap { entry -> Int32? in
        guard let pid = Int32(entry),
            let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 2, fields[0] != "Z", fields[0] != "X", Int32(fields[2]) == group else { return nil }
        return pid
    }
}
