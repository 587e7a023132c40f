import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with `posix_spawn`, its output read line by line on a thread.
///
/// Foundation's `Process.run()` in Swift 6.3 over-reads a `dirent` while it lists `/proc/self/fd`
/// (swift-corelibs-foundation PR 5472) and crashes now and then when many processes start; this starts
/// them without it. A child runs in a process group of its own, so one signal stops everything it
/// started (`swift run`, a shell pipeline), and a terminal's Ctrl-C reaches it only through its parent.
public final class ChildProcess: Sendable {
    /// The child's process id (and process group id).
    public let pid: Int32
    private let state = Mutex(State())

    private struct State {
        var status: ExitStatus?
        /// Output readers not at end of file yet.
        var openReaders = 0
        /// Set once the child has exited and its output is read (or a grace period after the exit).
        var finished = false
        var waiters: [CheckedContinuation<ExitStatus, Never>] = []
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
            executable: "/bin/sh", arguments: ["-c", command], environment: environment, directory: directory,
            output: line)
    }

    /// Starts an executable.
    /// - Parameters:
    ///   - executable: its path.
    ///   - arguments: its arguments, without the program name.
    ///   - environment: the child's whole environment.
    ///   - directory: where it runs; the current folder when nil.
    ///   - output: called on a reader thread with each line of standard output (and of standard error
    ///     when `errorOutput` is nil).
    ///   - errorOutput: called with each line of standard error, when it is read apart.
    /// - Throws: ``ChildProcessError`` when it cannot start.
    public init(
        executable: String, arguments: [String], environment: [String: String], directory: String? = nil,
        output: @escaping @Sendable (String) -> Void, errorOutput: (@Sendable (String) -> Void)? = nil
    ) throws {
        let out = try ChildProcess.makePipe()
        let err = errorOutput == nil ? nil : try ChildProcess.makePipe()

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out.write, 1)
        posix_spawn_file_actions_adddup2(&actions, err?.write ?? out.write, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0)
        // A parent that traps SIGINT and SIGTERM must not hand that on.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)

        // Glibc's module has no posix_spawn_file_actions_addchdir_np: a shell changes the folder, then execs.
        let argv =
            directory.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0, executable] + arguments }
            ?? [executable] + arguments
        let program = directory == nil ? executable : "/bin/sh"
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var pid: Int32 = 0
        let result = withCStrings(argv) { argvPointers in
            withCStrings(envp) { envPointers in
                posix_spawn(&pid, program, &actions, &attributes, argvPointers, envPointers)
            }
        }
        close(out.write)
        if let err { close(err.write) }
        guard result == 0 else {
            close(out.read)
            if let err { close(err.read) }
            throw ChildProcessError("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        self.pid = pid
        state.withLock { $0.openReaders = err == nil ? 1 : 2 }
        readLines(out.read, into: output)
        if let err, let errorOutput { readLines(err.read, into: errorOutput) }

        let childPid = pid
        let waiter = Thread { [self] in
            var status: Int32 = 0
            while waitpid(childPid, &status, 0) < 0 && errno == EINTR {}
            self.state.withLock { $0.status = ExitStatus(raw: status) }
            self.finishIfDone()
            // A grandchild may keep the output open: do not wait for it long.
            Thread.sleep(forTimeInterval: 1)
            self.finishIfDone(force: true)
        }
        waiter.name = "jobwire-child-wait"
        waiter.start()
    }

    /// Resumes the waiters once the child has exited and its output has been read.
    private func finishIfDone(force: Bool = false) {
        let (status, waiters) = state.withLock { s -> (ExitStatus?, [CheckedContinuation<ExitStatus, Never>]) in
            guard let status = s.status, !s.finished, s.openReaders == 0 || force else { return (nil, []) }
            s.finished = true
            defer { s.waiters = [] }
            return (status, s.waiters)
        }
        if let status { for waiter in waiters { waiter.resume(returning: status) } }
    }

    /// A pipe whose ends no other child inherits (or it would not close when its own child ends).
    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ChildProcessError("cannot make a pipe: errno \(errno)") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return (fds[0], fds[1])
    }

    private func readLines(_ fd: Int32, into line: @escaping @Sendable (String) -> Void) {
        let reader = Thread { [self] in
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
            self.state.withLock { $0.openReaders -= 1 }
            self.finishIfDone()
        }
        reader.name = "jobwire-child-output"
        reader.start()
    }

    /// Whether it has ended.
    public var hasExited: Bool { state.withLock { $0.status != nil } }

    /// How it ended, if it has.
    public var exitStatus: ExitStatus? { state.withLock { $0.status } }

    /// Waits for the child to end and for its output to be read.
    public func wait() async -> ExitStatus {
        await withCheckedContinuation { continuation in
            let status = state.withLock { s -> ExitStatus? in
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

    /// Signals the child's whole process group.
    public func signalGroup(_ signal: Int32) {
        guard !hasExited else { return }
        _ = kill(-pid, signal)
    }

    /// SIGTERM to the group, then SIGKILL after `grace` if it is still running.
    public func stop(grace: Duration = .seconds(5)) async -> ExitStatus {
        signalGroup(SIGTERM)
        let killer = Task {
            try await Task.sleep(for: grace)
            signalGroup(SIGKILL)
        }
        let status = await wait()
        killer.cancel()
        // Whatever the command left behind in its group goes too.
        _ = kill(-pid, SIGKILL)
        return status
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
