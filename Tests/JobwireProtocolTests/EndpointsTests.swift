import JobwireProtocol
import Testing

@Suite struct EndpointsTests {
    @Test("the environment's endpoints win over the defaults; empty ones do not")
    func fromEnvironment() {
        #expect(
            Endpoints.fromEnvironment([:])
                == Endpoints(events: "tcp://127.0.0.1:7400", commands: "tcp://127.0.0.1:7401"))
        let set = Endpoints.fromEnvironment(["JOBWIRE_EVENTS": "ipc:///tmp/e", "JOBWIRE_COMMANDS": "tcp://10.0.0.1:9"])
        #expect(set == Endpoints(events: "ipc:///tmp/e", commands: "tcp://10.0.0.1:9"))
        let empty = Endpoints.fromEnvironment(["JOBWIRE_EVENTS": "", "JOBWIRE_COMMANDS": "tcp://h:1"])
        #expect(empty == Endpoints(events: Endpoints.defaultEvents, commands: "tcp://h:1"))
    }
}
