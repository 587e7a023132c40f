import Testing

@testable import Jobwire

@Suite struct EventQueueTests {
    static let worker = HandlerLimit(id: 1, slots: 1)

    @Test("at most maxRunning events start; an ended one lets the next waiting one start, in arrival order")
    func bound() {
        var queue = EventQueue<Int>(maxRunning: 2)
        #expect(queue.add(1, limits: []) == [1])
        #expect(queue.add(2, limits: []) == [2])
        #expect(queue.add(3, limits: []) == [])
        #expect(queue.add(4, limits: []) == [])
        #expect(queue.finished(limits: []) == [3])
        #expect(queue.running == 2)
        #expect(queue.finished(limits: []) == [4])
        #expect(queue.finished(limits: []) == [])
        #expect(queue.running == 1)
    }

    @Test("a bounded handler's events wait for its slot while other events pass them")
    func handlerLimit() {
        var queue = EventQueue<String>(maxRunning: 8)
        #expect(queue.add("job a", limits: [Self.worker]) == ["job a"])
        #expect(queue.add("job b", limits: [Self.worker]) == [])
        #expect(queue.add("other", limits: []) == ["other"])
        #expect(queue.add("job c", limits: [Self.worker]) == [])
        #expect(queue.finished(limits: []) == [])
        #expect(queue.finished(limits: [Self.worker]) == ["job b"])
        #expect(queue.finished(limits: [Self.worker]) == ["job c"])
        #expect(queue.waitingCount == 0)
    }

    @Test("on shutdown the waiting events are dropped")
    func drop() {
        var queue = EventQueue<Int>(maxRunning: 1)
        #expect(queue.add(1, limits: []) == [1])
        #expect(queue.add(2, limits: []) == [])
        queue.dropWaiting()
        #expect(queue.finished(limits: []) == [])
    }
}
