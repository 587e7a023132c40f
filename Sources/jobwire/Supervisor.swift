import Foundation
import JobwireChildProcess
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The processes of a `Procfile` (the format foreman and honcho read): `name: command` per line.
struct Procfile: Sendable {
    struct Entry: Sendable, Equatable {
        var name: String
        var command: String
    }

    var entries: [Entry]

    /// Parses the text of a Procfile; blank lines and `#` comments are skipped.
    /// - Throws: a message naming the path and line of the first line that is not `name: command`.
    init(text: String, path: String) throws {
        var entries: [Entry] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw UsageError("\(path):\(number + 1): expected `name: command`, got \"\(line)\"")
            }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces)
            let command = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                throw UsageError("\(path):\(number + 1): \"\(name)\" is not a process name (letters, digits, - and _)")
            }
            guard !command.isEmpty else { throw UsageError("\(path):\(number + 1): \(name) has no command") }
            guard !entries.contains(where: { $0.name == name }) else {
                throw UsageError("\(path):\(number + 1): \(name) appears twice")
            }
            entries.append(Entry(name: name, command: command))
        }
        guard !entries.isEmpty else { throw UsageError("\(path) names no process (`name: command` per line)") }
        self.entries = entries
    }

    static func read(_ path: String) throws -> Procfile {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw UsageError(
                "cannot read \(path): write a Procfile (one `name: command` line per listener) or pass --procfile PATH")
        }
        return try Procfile(text: text, path: path)
    }
}

/// Writes children's lines as `name | line`, names padded and colored per process on a terminal.
final class LinePrinter: Sendable {
    let width: Int
    let color: Bool
    private let lock = Mutex(())
    private static let palette = ["36", "33", "32", "35", "34", "91", "96", "93"]

    init(names: [String], color: Bool) {
        width = (names + ["system"]).map(\.count).max() ?? 6
        self.color = color
    }

    func prefix(_ name: String, index: Int?) -> String {
        let padded = name.padding(width) + " |"
        guard color else { return padded }
        let code = index.map { Self.palette[$0 % Self.palette.count] } ?? "1"
        return "\u{1B}[\(code)m\(padded)\u{1B}[0m"
    }

    func print(_ name: String, index: Int?, _ line: String) {
        let text = prefix(name, index: index) + " " + line + "\n"
        lock.withLock { _ in FileHandle.standardOutput.write(Data(text.utf8)) }
    }

    /// A line of the supervisor itself.
    func system(_ line: String) { print("system", index: nil, line) }
}

/// Runs each process of a Procfile, restarts one that ends (1 s doubling to 30 s, reset after 10 s of
/// running), and stops them all: SIGTERM to each process group, SIGKILL after 5 s.
///
/// Each process has a process group of its own, and what a process leaves running in its group when it
/// ends is stopped before it restarts, so nothing it started outlives it.
actor Supervisor {
    let procfile: Procfile
    let environment: [String: String]
    let directory: String?
    let printer: LinePrinter
    let grace: Duration
    private var running: [String: ChildProcess] = [:]
    private var stopping = false
    private var wakeups: [String: CheckedContinuation<Void, Never>] = [:]

    init(
        procfile: Procfile, environment: [String: String], directory: String?, printer: LinePrinter,
        grace: Duration = .seconds(5)
    ) {
        self.procfile = procfile
        self.environment = environment
        self.directory = directory
        self.printer = printer
        self.grace = grace
    }

    /// Runs every process until ``stop()``.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            for (index, entry) in procfile.entries.enumerated() {
                group.addTask { await self.supervise(entry, index: index) }
            }
        }
    }

    private func supervise(_ entry: Procfile.Entry, index: Int) async {
        var backoff = 1
        while !stopping {
            let started = ContinuousClock.now
            let child: ChildProcess
            do {
                let printer = self.printer
                child = try ChildProcess(command: entry.command, environment: environment, directory: directory) {
                    printer.print(entry.name, index: index, $0)
                }
            } catch {
                printer.system("\(entry.name) could not start: \(error)")
                return
            }
            running[entry.name] = child
            printer.system("\(entry.name) started (pid \(child.pid)): \(entry.command)")
            let status = await child.wait()
            if stopping { break }
            // A shell's command or a helper the process started must not outlive it.
            let left = await child.stopGroup(grace: grace)
            running[entry.name] = nil
            if stopping { break }
            if ContinuousClock.now - started >= .seconds(10) { backoff = 1 }
            let stopped = left == 0 ? "" : "; stopped \(left) process\(left == 1 ? "" : "es") it left in its group"
            printer.system("\(entry.name) \(status)\(stopped); restarting in \(backoff) s")
            await sleep(seconds: backoff, name: entry.name)
            backoff = min(backoff * 2, 30)
        }
    }

    /// Sleeps, or returns early when ``stop()`` is called.
    private func sleep(seconds: Int, name: String) async {
        let timer = Task { [weak self] in
            try? await Task.sleep(for: .seconds(seconds))
            await self?.wake(name)
        }
        await withCheckedContinuation { continuation in
            if stopping { continuation.resume() } else { wakeups[name] = continuation }
        }
        timer.cancel()
    }

    private func wake(_ name: String) {
        wakeups.removeValue(forKey: name)?.resume()
    }

    /// Stops every process and returns when all have ended.
    func stop() async {
        stopping = true
        for name in Array(wakeups.keys) { wake(name) }
        let children = running
        await withTaskGroup(of: Void.self) { group in
            for (name, child) in children {
                group.addTask { [printer, grace] in
                    let status = await child.stop(grace: grace)
                    printer.system("\(name) stopped (\(status))")
                }
            }
        }
    }
}
