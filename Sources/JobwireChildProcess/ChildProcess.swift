import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A command run by `/bin/sh -c` in a process group of its own, its output (stdout and stderr) read
/// line by line on a thread.
///
/// Its own group lets `dev` and `demo` stop everything a command started (`swift run`, a shell pipeline)
/// with one signal, and keeps a terminal's Ctrl-C from reaching the children before the CLI decides.
final class ChildProcess: Sendable {
    let pid: pid_t
    private let state = Mutex(State())

    private struct State {
        var status: ExitStatus?
        var waiters: [CheckedContinuation<ExitStatus, Never>] = []
    }

    /// How a child ended.
    struct ExitStatus: Sendable, CustomStringConvertible {
        var raw: Int32
        var signal: Int32? { raw & 0x7f == 0 ? nil : raw & 0x7f }
        var code: Int32? { raw & 0x7f == 0 ? (raw >> 8) & 0xff : nil }
        var description: String {
            if let code { return "exited with code \(code)" }
            return "was killed by signal \(signal ?? 0)"
        }
    }

    /// Starts `command`.
    /// - Parameters:
    ///   - command: a shell command line.
    ///   - environment: the child's whole environment.
    ///   - directory: where it runs.
    ///   - line: called on a reader thread with each line of output, without its newline.
    init(
        command: String, environment: [String: String], directory: String?,
        line: @escaping @Sendable (String) -> Void
    ) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ChildProcessError("cannot make a pipe: errno \(errno)") }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        // Other children must not inherit these ends, or this pipe would not close when its child ends.
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0)
        // The CLI traps SIGINT and SIGTERM; its children must not inherit that.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)

        let script = directory.map { "cd '\($0.replacingOccurrences(of: "'", with: "'\\''"))' || exit 127; \(command)" } ?? command
        let argv = ["/bin/sh", "-c", script]
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let result = withCStrings(argv) { argvPointers in
            withCStrings(envp) { envPointers in
                posix_spawn(&pid, "/bin/sh", &actions, &attributes, argvPointers, envPointers)
            }
        }
        close(writeEnd)
        guard result == 0 else {
            close(readEnd)
            throw ChildProcessError("cannot start /bin/sh -c \(command): \(String(cString: strerror(result)))")
        }
        self.pid = pid
        let childPid = pid

        let reader = Thread {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, 4096) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                pending.append(contentsOf: buffer[0..<count])
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    line(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            }
            if !pending.isEmpty { line(String(decoding: pending, as: UTF8.self)) }
            close(readEnd)
        }
        reader.name = "jobwire-child-output"
        reader.start()

        let waiter = Thread { [self] in
            var status: Int32 = 0
            while waitpid(childPid, &status, 0) < 0 && errno == EINTR {}
            let exit = ExitStatus(raw: status)
            let waiters = self.state.withLock { s in
                s.status = exit
                defer { s.waiters = [] }
                return s.waiters
            }
            for waiter in waiters { waiter.resume(returning: exit) }
        }
        waiter.name = "jobwire-child-wait"
        waiter.start()
    }

    /// Whether it has ended.
    var hasExited: Bool { state.withLock { $0.status != nil } }

    /// Waits for the child to end.
    func wait() async -> ExitStatus {
        await withCheckedContinuation { continuation in
            let status = state.withLock { s -> ExitStatus? in
                if let status = s.status { return status }
                s.waiters.append(continuation)
                return nil
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// Signals the child's whole process group.
    func signalGroup(_ signal: Int32) {
        guard !hasExited else { return }
        _ = kill(-pid, signal)
    }

    /// SIGTERM to the group, then SIGKILL after `grace` if it is still running.
    func stop(grace: Duration = .seconds(5)) async -> ExitStatus {
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

struct ChildProcessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A NULL-terminated array of C strings, valid inside `body`.
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}
