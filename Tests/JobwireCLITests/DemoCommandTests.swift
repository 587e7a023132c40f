import Foundation
import JobwireTestSupport
import Testing

/// The Python interpreter with pyzmq: `JOBWIRE_PYTHON`, else the package's `.venv` (scripts/python-env.sh).
private let python: String? = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let candidates = [ProcessInfo.processInfo.environment["JOBWIRE_PYTHON"], root.path + "/.venv/bin/python"]
    return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
}()

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

private let hasExample = (try? TestPaths.executable("workbook-export")) != nil

@Suite("jobwire demo", .timeLimit(.minutes(1)))
struct DemoCommandTests {
    @Test(
        "the demo shows the export job's progress and outcome and exits 0",
        .enabled(if: hasExample, "the workbook-export example is not built (it comes with the SDK branch)"))
    func demo() async throws {
        let result = try await CLIProcess.run(["demo"], timeout: .seconds(45))
        try check(result)
    }

    @Test(
        "the demo runs with another listener: the Python example",
        .enabled(if: python != nil, "no Python with pyzmq: run scripts/python-env.sh or set JOBWIRE_PYTHON"))
    func pythonListener() async throws {
        let python = try #require(python)
        let result = try await CLIProcess(
            ["demo", "--listener", "\(python) \(packageRoot)/Examples/python/listener.py --step-seconds 0.2"]
        ).finish(timeout: .seconds(45))
        try check(result)
    }

    @Test("a listener that picks nothing up fails the demo with a clear message")
    func nobodyListens() async throws {
        let result = try await CLIProcess.run(["demo", "--listener", "exec sleep 30", "--timeout", "1"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("no listener picked up workbook:export within 1 s"), "\(result)")
        #expect(result.stdout.contains("stopped the listener and the broker"))
    }

    private func check(_ result: CLIResult) throws {
        #expect(result.status == 0, "\(result)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.contains("clicked “Export workbook”") })
        let rows = lines.filter { $0.contains("workbook:export  executing") }
        #expect(Set(rows.map { $0.prefix(70) }).count >= 2, "the progress bar moves: \(result)")
        #expect(lines.contains { $0.contains("✔ workbook:export complete") }, "\(result)")
        #expect(lines.contains { $0.hasPrefix("  → ") }, "the outcome's next step: \(result)")
        #expect(lines.last == "● stopped the listener and the broker")
    }
}
