import Foundation
import JobwireChildProcess
import JobwireTestSupport

/// A command that runs to its end: an example in a one-shot mode (`actions --trigger`), or `jobwire`.
struct ExampleCommand {
    var status: Int32
    /// Standard output and error, merged.
    var output: String

    /// Runs a built executable of the package against `broker` and waits for it to exit.
    static func run(
        _ executable: String, _ arguments: [String], broker: BrokerProcess, timeout: Duration = .seconds(30)
    ) async throws -> ExampleCommand {
        var environment = ProcessInfo.processInfo.environment
        environment["JOBWIRE_COMMANDS"] = broker.commands
        environment["JOBWIRE_EVENTS"] = broker.events
        let output = Locked("")
        let child = try ChildProcess(
            executable: try TestPaths.executable(executable), arguments: arguments, environment: environment,
            output: { line in output.withLock { $0 += line + "\n" } })
        let killer = Task {
            try await Task.sleep(for: timeout)
            child.signalGroup(SIGKILL)
        }
        let status = await child.wait()
        killer.cancel()
        return ExampleCommand(status: status.code ?? 128 + (status.signal ?? 0), output: output.withLock { $0 })
    }
}
