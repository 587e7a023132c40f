import Foundation
import JobwireProtocol
import ZeroMQ

/// A listener process's loop: keeps `inflight` jobs going, each claim → one progress update → complete.
func runListener(commands: String, inflight: Int, name: String) throws {
    let context = try Context()
    let dealer = try Dealer(context: context, endpoint: commands)
    var nextId = 1
    enum Step {
        case claim
        case update(String)
        case complete(String)
    }
    var steps: [Int: Step] = [:]
    func claim() throws {
        steps[nextId] = .claim
        try dealer.send(request(nextId, "jobs.claim", #"{"listenerId":"\#(name)","jobs":["bench:*"],"wait":5}"#))
        nextId += 1
    }
    for _ in 0..<inflight { try claim() }
    let claimedJob = Array(#"{"job":{"id":""#.utf8)
    while true {
        guard let frames = try dealer.socket.receiveMultipart(), let body = frames.last else { continue }
        // The broker's layout is read in place; anything else (an error above all) is parsed and reported.
        guard let (id, result) = QuickRead.success(body) else {
            throw BenchError("listener \(name): unexpected reply \(String(decoding: body, as: UTF8.self))")
        }
        guard let step = steps.removeValue(forKey: id) else { continue }
        switch step {
        case .claim:
            if let jobId = QuickRead.string(after: claimedJob, in: result) {
                steps[nextId] = .update(jobId)
                try dealer.send(
                    request(nextId, "jobs.update", #"{"jobId":"\#(jobId)","listenerId":"\#(name)","progress":50}"#))
                nextId += 1
            } else {
                try claim()
            }
        case .update(let jobId):
            steps[nextId] = .complete(jobId)
            try dealer.send(
                request(
                    nextId, "jobs.complete",
                    #"{"jobId":"\#(jobId)","listenerId":"\#(name)","outcome":{"message":"ok"}}"#))
            nextId += 1
        case .complete:
            try claim()
        }
    }
}

struct LifecycleResult {
    var jobsPerSecond: Double
    var p50Ms: Double
    var p99Ms: Double
    var brokerMicrosPerJob: Double
}

/// N jobs created by one pipelined producer and run by `listeners` listener processes.
func lifecycle(binary: String, bench: String, jobs: Int, listeners: Int, data: String?) throws -> LifecycleResult {
    let broker = try BrokerHandle(binary: binary, data: data)
    defer { broker.stop() }
    let context = try Context()
    let sub = try subscriber(context: context, events: broker.events, topics: ["job:completed/"])
    var children: [Process] = []
    for index in 0..<listeners {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: bench)
        child.arguments = ["listen", "--commands", broker.commands, "--name", "l\(index)"]
        try child.run()
        children.append(child)
    }
    defer {
        for child in children {
            child.terminate()
            child.waitUntilExit()
        }
    }
    let producer = try Dealer(context: context, endpoint: broker.commands)
    let cpuBefore = cpuMicros(pid: broker.pid)
    var created: [String: UInt64] = [:]
    created.reserveCapacity(jobs)
    var sentAt: [Int: UInt64] = [:]
    var latencies: [Double] = []
    latencies.reserveCapacity(jobs)
    let window = 256
    var sent = 0
    var replies = 0
    var completed = 0
    let createdJob = Array(#"{"id":""#.utf8)
    let start = nanos()
    var poller = Poller()
    poller.add(producer.socket)
    poller.add(sub)
    while completed < jobs {
        while sent < jobs && sent - replies < window {
            sentAt[sent] = nanos()
            try producer.send(request(sent, "jobs.create", #"{"type":"bench","operation":"run","source":"s"}"#))
            sent += 1
        }
        try poller.poll(timeout: .seconds(5))
        while let frames = try producer.socket.receiveMultipart(dontWait: true) {
            guard let (id, result) = QuickRead.success(frames.last!),
                let jobId = QuickRead.string(after: createdJob, in: result)
            else {
                throw BenchError("producer: unexpected reply \(String(decoding: frames.last!, as: UTF8.self))")
            }
            replies += 1
            created[jobId] = sentAt.removeValue(forKey: id)
        }
        while let frames = try sub.receiveMultipart(dontWait: true) {
            guard frames[0].starts(with: Array("job:completed".utf8)) else { continue }
            if let jobId = QuickRead.eventJobId(frames[1]) {
                let now = nanos()
                if let t = created.removeValue(forKey: jobId) {
                    latencies.append(Double(now - t) / 1e6)
                } else {
                    // The event beat the create's reply; count it against the send time later.
                    created[jobId] = 0
                }
                completed += 1
            }
        }
    }
    let elapsed = Double(nanos() - start) / 1e9
    let cpu = cpuMicros(pid: broker.pid) - cpuBefore
    latencies.sort()
    return LifecycleResult(
        jobsPerSecond: Double(jobs) / elapsed, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99),
        brokerMicrosPerJob: cpu / Double(jobs))
}

/// Create → `job:ready` received, one job at a time.
func unloadedLatency(binary: String, samples: Int, data: String?) throws -> (p50: Double, p99: Double) {
    let broker = try BrokerHandle(binary: binary, data: data)
    defer { broker.stop() }
    let context = try Context()
    let sub = try subscriber(context: context, events: broker.events, topics: ["job:ready/"], unbounded: false)
    try sub.unsubscribe("broker:heartbeat/")
    let producer = try Dealer(context: context, endpoint: broker.commands)
    var latencies: [Double] = []
    for index in 0..<(samples + 50) {
        let t = nanos()
        try producer.send(request(index, "jobs.create", #"{"type":"lat","operation":"run","source":"s"}"#))
        _ = try sub.receiveMultipart()
        let dt = Double(nanos() - t) / 1000
        _ = try producer.receive(timeoutMs: -1)
        if index >= 50 { latencies.append(dt) }
    }
    latencies.sort()
    return (percentile(latencies, 0.5), percentile(latencies, 0.99))
}

/// A ROUTER on tcp loopback that sends back each of the next `count` messages it receives, on a thread
/// of its own. Returns its endpoint.
func echoRouter(context: Context, count: Int) throws -> String {
    let router = try Socket(context, type: .router)
    try router.set(.sendHighWaterMark, 0)
    try router.set(.receiveHighWaterMark, 0)
    try router.bind("tcp://127.0.0.1:*")
    let endpoint = try router.lastEndpoint
    final class Box: @unchecked Sendable {
        var socket: Socket?
        init(_ s: consuming Socket) { socket = .some(s) }
    }
    let box = Box(router)
    let echo = Thread {
        for _ in 0..<count {
            guard let frames = try? box.socket!.receiveMultipart() else { return }
            _ = try? box.socket!.send(frames)
        }
    }
    echo.start()
    return endpoint
}

/// Raw libzmq: DEALER → ROUTER echo over tcp loopback, pipelined. The ceiling.
func rawPairs(count: Int) throws -> Double {
    let context = try Context()
    let endpoint = try echoRouter(context: context, count: count)
    let dealer = try Dealer(context: context, endpoint: endpoint)
    let body = request(1, "jobs.get", #"{"jobId":"us_jb_x"}"#)
    let start = nanos()
    var sent = 0
    var received = 0
    while received < count {
        while sent < count && sent - received < 1000 {
            try dealer.send(body)
            sent += 1
        }
        _ = try dealer.socket.receiveMultipart()
        received += 1
        while (try dealer.socket.receiveMultipart(dontWait: true)) != nil { received += 1 }
    }
    return Double(count) / (Double(nanos() - start) / 1e9)
}
