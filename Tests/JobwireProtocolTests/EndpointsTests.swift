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

@Suite struct EndpointListTests {
    @Test("one endpoint or a comma-separated list, in order, spaces around elements dropped")
    func splits() throws {
        #expect(try Endpoints.list("tcp://127.0.0.1:7401") == ["tcp://127.0.0.1:7401"])
        #expect(
            try Endpoints.list("tcp://a:7401, tcp://b.example.com:7401 ,ipc:///tmp/c")
                == ["tcp://a:7401", "tcp://b.example.com:7401", "ipc:///tmp/c"])
        #expect(try Endpoints.list("inproc://x,tcp://[::1]:9") == ["inproc://x", "tcp://[::1]:9"])
    }

    @Test(
        "a bad element is named with the value it came in",
        arguments: [
            ("tcp://a:7401,tcp//b:7401", "tcp//b:7401", "is not an endpoint"),
            ("tcp://a:7401,", "", "drop the extra comma"),
            (",tcp://a:7401", "", "drop the extra comma"),
            ("tcp://a:7401,tcp://b", "tcp://b", "has no port"),
            ("tcp://a:7401,tcp://b:*", "tcp://b:*", "port from 1 to 65535"),
            ("tcp://a:0", "tcp://a:0", "port from 1 to 65535"),
            ("tcp://a:70000", "tcp://a:70000", "port from 1 to 65535"),
            ("tcp://:7401", "tcp://:7401", "has no port"),
            ("ipc://", "ipc://", "is not an endpoint"),
            ("udp://a:1", "udp://a:1", "is not an endpoint"),
            ("tcp://a:7401,tcp://a:7401", "tcp://a:7401", "listed twice"),
            ("", "", "give tcp://HOST:PORT"),
        ])
    func refuses(value: String, endpoint: String, reason: String) throws {
        let error = try #require(throws: EndpointError.self) { try Endpoints.list(value) }
        #expect(error.value == value)
        #expect(error.endpoint == endpoint)
        #expect(error.description.contains(reason), "\(error)")
        if !endpoint.isEmpty { #expect(error.description.contains("\"\(endpoint)\"")) }
    }

    @Test("the environment may hold lists; they come back as given")
    func environmentLists() throws {
        let endpoints = Endpoints.fromEnvironment([
            "JOBWIRE_COMMANDS": "tcp://a:7401,tcp://b:7401", "JOBWIRE_EVENTS": "tcp://a:7400,tcp://b:7400",
        ])
        #expect(try Endpoints.list(endpoints.commands) == ["tcp://a:7401", "tcp://b:7401"])
        #expect(try Endpoints.list(endpoints.events) == ["tcp://a:7400", "tcp://b:7400"])
    }
}
