import JobwireTestSupport
import Testing

@testable import Jobwire

@Suite("The listener's run structure", .timeLimit(.minutes(1)))
struct ListenerRunTests {
    @Test("a body that finishes returns its value, and the scope's waiter ends with it")
    func scopeValue() async throws {
        let scope = CancelScope()
        let value = try await scope.run { 42 }
        #expect(value == 42)
        let none: Int? = try await scope.run { nil }
        #expect(none == nil)
    }

    @Test("firing a scope cancels its body, also when it fired before the body started")
    func scopeFires() async throws {
        let early = CancelScope()
        early.fire()
        await #expect(throws: CancellationError.self) {
            try await early.run { try await untilCancelled() }
        }
        let late = CancelScope()
        let started = AsyncStream.makeStream(of: Void.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await #expect(throws: CancellationError.self) {
                    try await late.run {
                        started.continuation.yield()
                        try await untilCancelled()
                    }
                }
            }
            for await _ in started.stream { break }
            late.fire()
            try await group.waitForAll()
        }
    }

    @Test("a canceled job's handler stops and is known as canceled until its runner forgets it")
    func cancelJob() async throws {
        let work = RunningWork()
        let started = AsyncStream.makeStream(of: Void.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await #expect(throws: CancellationError.self) {
                    try await work.handler(jobId: "us_jb_1") {
                        started.continuation.yield()
                        try await untilCancelled()
                    }
                }
            }
            for await _ in started.stream { break }
            #expect(!work.wasCanceled("us_jb_1"))
            work.cancelJob("us_jb_1")
            try await group.waitForAll()
        }
        #expect(work.wasCanceled("us_jb_1"))
        work.forget("us_jb_1")
        #expect(!work.wasCanceled("us_jb_1"))
        // Another job's handler runs on.
        #expect(try await work.handler(jobId: "us_jb_2") { "done" } == "done")
    }

    @Test("a lost lease stops only its attempt's handler: the same job's next attempt, run here too, runs on")
    func cancelOneAttempt() async throws {
        let work = RunningWork()
        let started = AsyncStream.makeStream(of: Int.self)
        let release = AsyncStream.makeStream(of: Void.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await #expect(throws: CancellationError.self) {
                    try await work.handler(jobId: "us_jb_1", attempt: 1) {
                        started.continuation.yield(1)
                        try await untilCancelled()
                    }
                }
            }
            group.addTask {
                let result = try await work.handler(jobId: "us_jb_1", attempt: 2) {
                    started.continuation.yield(2)
                    for await _ in release.stream { break }
                    return "attempt 2 done"
                }
                #expect(result == "attempt 2 done")
            }
            var running = 0
            for await _ in started.stream {
                running += 1
                if running == 2 { break }
            }
            work.cancelJob("us_jb_1", attempt: 1)
            // Attempt 1's handler ends (the group would wait forever otherwise); attempt 2's is not canceled.
            #expect(work.wasCanceled("us_jb_1", attempt: 1))
            #expect(!work.wasCanceled("us_jb_1", attempt: 2))
            release.continuation.yield()
            try await group.waitForAll()
        }
    }

    @Test("a runner of an attempt that is over cannot end the lease of the job's next attempt")
    func leaseOfOneAttempt() async throws {
        let client = try JobsClient(commands: "tcp://127.0.0.1:1")
        let leases = LeaseKeeper(client: client, logger: client.logger)
        var job = Job(id: "us_jb_1", type: "workbook", operation: "export", source: "s")
        job.attempt = 2
        leases.hold(job)
        #expect(!leases.drop("us_jb_1", attempt: 1), "attempt 1's runner, winding down late")
        #expect(leases.heldJobIds == ["us_jb_1"])
        #expect(leases.drop("us_jb_1", attempt: 2))
        #expect(leases.heldJobIds.isEmpty)
        await client.close()
    }

    @Test("a cancel or a timeout that came before its request was registered leaves no mark once the request is over")
    func pendingMarks() {
        let pending = Pending()
        pending.cancel(id: 1)
        pending.fail(id: 2, JobwireError(.timeout, "late"))
        #expect(pending.markCount == 2)
        pending.settle(id: 1)
        pending.settle(id: 2)
        #expect(pending.markCount == 0)
    }

    @Test("after the shutdown deadline every handler is cancelled, also one that starts later; claims are not")
    func deadline() async throws {
        let work = RunningWork()
        work.cancelHandlers()
        await #expect(throws: CancellationError.self) {
            try await work.handler(jobId: nil) { try await untilCancelled() }
        }
        #expect(try await work.claim { 7 } == 7)
    }

    @Test("once claims are stopped, a claim in flight and every later one is interrupted")
    func stopClaims() async throws {
        let work = RunningWork()
        work.stopClaims()
        await #expect(throws: CancellationError.self) {
            try await work.claim { try await untilCancelled() }
        }
        #expect(try await work.handler(jobId: nil) { 1 } == 1)
    }

    @Test("a jobHandler with concurrency 3 keeps 3 claims waiting in the broker; run() returns after stop()")
    func claimsInFlight() async throws {
        try await withBroker { broker in
            try await withClient(try JobsClient(commands: broker.commands)) { client in
                let listener = Listener(name: "slots", commands: broker.commands, events: broker.events) {
                    jobHandler("workbook:export", concurrency: 3) { _, _ in }
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await listener.run() }
                    try await eventually("three claims waiting in the broker") {
                        try await client.call(method: "broker.info")["waitingClaims"]?.intValue == 3
                    }
                    let job = try await client.create(type: "workbook", operation: "export", source: "us_wb_1")
                    try await eventually("the job to complete") {
                        try await client.get(jobId: job.id).status == .complete
                    }
                    listener.stop()
                    try await group.waitForAll()
                }
            }
        }
    }

    @Test("at most maxConcurrentEvents events run their handlers at once; the others wait their turn and run")
    func boundedEvents() async throws {
        try await withBroker { broker in
            try await withClient(try JobsClient(commands: broker.commands)) { client in
                // Ready before the listener starts: its catch-up hands all five to the dispatcher at once.
                for index in 0..<5 {
                    _ = try await client.create(type: "workbook", operation: "export", source: "us_wb_\(index)")
                }
                struct Count { var running = 0, most = 0, done = 0 }
                let count = Locked(Count())
                let gate = CancelScope()
                let listener = Listener(
                    name: "bounded", commands: broker.commands, events: broker.events,
                    configuration: .init(maxConcurrentEvents: 2)
                ) {
                    on("job:ready") { _ in
                        count.withLock {
                            $0.running += 1
                            $0.most = max($0.most, $0.running)
                        }
                        // Parks until the gate fires (run ends its body by cancelling it).
                        _ = try? await gate.run { try await untilCancelled() }
                        count.withLock {
                            $0.running -= 1
                            $0.done += 1
                        }
                    }
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await listener.run() }
                    try await eventually("two handlers running") { count.withLock { $0.running } == 2 }
                    gate.fire()
                    try await eventually("all five handlers done") { count.withLock { $0.done } == 5 }
                    listener.stop()
                    try await group.waitForAll()
                }
                #expect(count.withLock { $0.most } == 2)
            }
        }
    }
}

/// Waits for nothing but the calling task's cancellation, then throws `CancellationError`: a handler or a claim
/// that works until it is stopped.
func untilCancelled() async throws {
    let (stream, continuation) = AsyncStream.makeStream(of: Never.self)
    await withTaskCancellationHandler {
        for await _ in stream {}
    } onCancel: {
        continuation.finish()
    }
    throw CancellationError()
}
