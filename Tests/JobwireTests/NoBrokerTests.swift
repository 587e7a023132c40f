import Foundation
import JobwireChildProcess
import JobwireTestSupport
import Testing

@Suite struct NoBrokerTests {
    @Test("a listener pointed at no broker warns, naming the endpoint, and keeps warning", .timeLimit(.minutes(1)))
    func warnsWithoutHeartbeats() async throws {
        // Nothing listens on port 1 of the loopback.
        let events = "tcp://127.0.0.1:1"
        let commands = "tcp://127.0.0.1:2"
        let output = Locked("")
        let child = try ChildProcess(
            executable: try TestPaths.executable("workbook-export"),
            arguments: ["--events", events, "--commands", commands], environment: ProcessInfo.processInfo.environment,
            output: { line in output.withLock { $0 += line + "\n" } })
        defer { child.signalGroup(SIGKILL) }
        let warning = "no broker heartbeat at \(events)"
        try await eventually("the warning", timeout: .seconds(30), every: .milliseconds(100)) {
            output.withLock { $0.contains(warning) }
        }
        // Repeated with backoff: 5 s after the start, then 10 s.
        try await eventually("the second warning", timeout: .seconds(30), every: .milliseconds(100)) {
            output.withLock { $0.components(separatedBy: warning).count - 1 >= 2 }
        }
        let lines = output.withLock { $0 }.split(separator: "\n").filter { $0.contains(warning) }
        #expect(lines.allSatisfy { $0.contains("jobwire broker") && $0.contains("JOBWIRE_EVENTS") }, "\(lines)")
        child.signal(SIGTERM)
        #expect(await child.wait().code == 0)
    }
}
