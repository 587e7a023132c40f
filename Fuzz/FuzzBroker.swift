// libFuzzer harness for the broker's command handling: the state machine (BrokerCore) over an
// in-memory store, fed a sequence of requests. Compiled into one module with the broker's core
// sources by Fuzz/run.sh (the socket loop and the Service are left out); never part of the main build.
//
// Each line of the input is one request, from one of three callers. The first request of an input is
// prefixed with a job create so that most inputs reach the job verbs. Checks: no crash, no hang, and
// every request gets exactly one reply (claims that wait are answered when their time is up).

import JobwireProtocol
import Logging

nonisolated(unsafe) var fuzzCore: BrokerCore?
nonisolated(unsafe) var fuzzClock = ManualClock(.now())
nonisolated(unsafe) var fuzzUses = 0

func makeCore() -> BrokerCore {
    let configuration = CoreConfiguration(leaseSeconds: 1, eventRetention: 50)
    let store = try! SQLiteJobStore(directory: nil, fsync: false)
    fuzzClock = ManualClock(.now())
    return try! BrokerCore(
        configuration: configuration, store: store, clock: fuzzClock,
        logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBroker(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // A core serves 32 inputs, then a fresh one: opening a store for every input would leave little time
    // to fuzz, and starting over keeps memory bounded. (A crash reproduces on a fresh core most of the time;
    // -runs on the crash's neighbours in the corpus when not.)
    if fuzzCore == nil || fuzzUses >= 32 {
        fuzzCore = makeCore()
        fuzzUses = 0
    }
    fuzzUses += 1
    let core = fuzzCore!
    let callers = (0..<3).map { Caller(route: [UInt8($0)], authenticatedKey: nil) }
    let seed = Array(#"{"jsonrpc":"2.0","id":0,"method":"jobs.create","params":{"type":"a","operation":"b","source":"s","leaseSeconds":1}}"#.utf8)
    var lines: [ArraySlice<UInt8>] = [seed[...]]
    lines += UnsafeBufferPointer(start: data, count: size).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        .map { ArraySlice($0) }
    var expected = 0
    for (index, line) in lines.prefix(64).enumerated() {
        let caller = callers[index % 3]
        switch RPCRequest.decode(line) {
        case .success(let request): core.handle(request, from: caller)
        case .failure(let failure): core.reply(caller, id: failure.id, .failure(failure.error))
        }
        expected += 1
        fuzzClock.advance(by: .milliseconds(300))
        core.tick()
        core.commit()
    }
    // Let every waiting claim and lease run out.
    fuzzClock.advance(by: .seconds(120))
    core.tick()
    core.answerWaitingClaims()
    core.commit()
    let (replies, _) = core.takeOutput()
    if replies.count != expected { fatalError("\(expected) requests, \(replies.count) replies") }
    for reply in replies where (try? RPCResponse.decode(reply.body)) == nil { fatalError("a reply does not decode") }
    return 0
}
