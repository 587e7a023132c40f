import Foundation
import JobwireProtocol
import JobwireTestSupport
import Testing

/// Claims and connections: a claimer that goes away, seen by the broker's sockets. The claim rules are
/// tested on the core (JobwireCoreTests).
@Suite struct ClaimConnectionTests {
    @Test(
        "the waiting claims of a client that goes are dropped when it goes, not at their deadline",
        .timeLimit(.minutes(1)))
    func claimsDroppedWithConnection() async throws {
        try await withHarness { harness in
            let claimer = try harness.newClient()
            let waiting = (0..<3).map { _ in
                Task {
                    try await claimer.call(
                        "jobs.claim", ["listenerId": "gone", "jobs": ["leaving:*"], "wait": 60], timeout: .seconds(90))
                }
            }
            try await eventually("the claims to wait") { try await harness.call("broker.info")["waitingClaims"] == 3 }
            for task in waiting { task.cancel() }
            await claimer.close()
            // Their wait is 60 s: only the broker learning that the connection closed drops them sooner.
            try await eventually("the claims to be dropped", timeout: .seconds(20)) {
                try await harness.call("broker.info")["waitingClaims"] == 0
            }
            // A claimer still connected keeps its claim.
            let staying = try harness.newClient()
            let stays = Task {
                try await staying.result("jobs.claim", ["listenerId": "here", "jobs": ["leaving:*"], "wait": 30])
            }
            try await eventually("the claim to wait") { try await harness.call("broker.info")["waitingClaims"] == 1 }
            let created = try await harness.call("jobs.create", ["type": "leaving", "operation": "x", "source": "s"])
            #expect(try await stays.value["job"]?["id"] == created["id"])
            await staying.close()
        }
    }

    @Test(
        "a job handed to a claimer that has gone away is ready again at once, not after its lease",
        .timeLimit(.minutes(1)))
    func claimerGone() async throws {
        try await withHarness { harness in
            let claimer = try harness.newClient()
            let waiting = Task {
                try await claimer.call(
                    "jobs.claim", ["listenerId": "gone", "jobs": ["gone:*"], "wait": 30], timeout: .seconds(60))
            }
            try await eventually("the claim to wait") { try await harness.call("broker.info")["waitingClaims"] == 1 }
            let port = try #require(harness.process.commands.split(separator: ":").last.flatMap { Int($0) })
            let connected = establishedConnections(toPort: port)
            waiting.cancel()
            await claimer.close()
            // The broker must have seen the claimer go before the job is made: a reply sent into a connection
            // whose end has not reached the broker yet is lost in it (ZeroMQ cannot tell), and the job would
            // wait out its lease. Once the broker's side of the TCP connection is closed, its ROUTER has the
            // route's end queued, and drops the route before it handles the next request.
            try await eventually("the broker to close the claimer's connection") {
                establishedConnections(toPort: port) < connected
            }
            // A 60 s lease: only the broker taking the job back can make it ready within the wait below.
            let created = try await harness.call(
                "jobs.create", ["type": "gone", "operation": "x", "source": "s", "leaseSeconds": 60])
            let id = try #require(created.string("id"))
            try await eventually("the job to be ready again", timeout: .seconds(10)) {
                try await harness.get(id).string("status") == "ready"
            }
            let job = try await harness.get(id)
            #expect(job.int("attempt") == 1)
            let taken = try await harness.call("jobs.ack", ["jobId": id.json, "listenerId": "here"])
            #expect(taken["lease"]?["owner"] == "here")
        }
    }

}

/// The established TCP connections whose local end is `port` (the broker's side of its clients'
/// connections), from the kernel's table.
private func establishedConnections(toPort port: Int) -> Int {
    var count = 0
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // Read to the end: /proc files say they are empty, so a read by their size gets nothing.
        guard let data = FileHandle(forReadingAtPath: table)?.readDataToEndOfFile() else { continue }
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            // local_address is "ADDR:PORT" in hex; st 01 is ESTABLISHED.
            guard fields.count > 3, let local = fields[1].split(separator: ":").last,
                Int(local, radix: 16) == port, fields[3] == "01"
            else { continue }
            count += 1
        }
    }
    return count
}
