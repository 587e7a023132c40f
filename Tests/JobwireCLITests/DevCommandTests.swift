import Foundation
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
