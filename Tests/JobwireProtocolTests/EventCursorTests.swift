import JobwireProtocol
import Testing

@Suite struct EventCursorTests {
    @Test("while no replay succeeds, a filtered subscriber's cursor keeps at most maxAhead seqs, the newest")
    func boundedAhead() {
        var cursor = EventCursor(epoch: "e1", confirmed: 0)
        // Every other seq went to another topic: each event is a gap, remembered until a replay.
        for seq in stride(from: Int64(2), through: Int64(2 * EventCursor.maxAhead + 2), by: 2) {
            #expect(cursor.live(seq: seq, epoch: "e1") == .gap(since: 0))
        }
        #expect(cursor.aheadCount <= EventCursor.maxAhead)
        #expect(cursor.aheadCount >= EventCursor.maxAhead / 2)
        // The newest are still known as delivered; the oldest were forgotten.
        #expect(cursor.live(seq: Int64(2 * EventCursor.maxAhead + 2), epoch: "e1") == .duplicate)
        #expect(cursor.replayed(seq: 2) == .deliver)
    }

    @Test("events in order are delivered and move the cursor")
    func inOrder() {
        var cursor = EventCursor(epoch: "e1", confirmed: 4)
        #expect(step(&cursor) { $0.live(seq: 5, epoch: "e1") } == .deliver)
        #expect(step(&cursor) { $0.live(seq: 6, epoch: "e1") } == .deliver)
        #expect(cursor.confirmed == 6)
        #expect(step(&cursor) { $0.heartbeat(latest: 6, epoch: "e1") } == .current)
    }

    @Test("an event at or below the cursor, or delivered already, is a duplicate")
    func duplicates() {
        var cursor = EventCursor(epoch: "e1", confirmed: 4)
        #expect(step(&cursor) { $0.live(seq: 3, epoch: "e1") } == .duplicate)
        #expect(step(&cursor) { $0.live(seq: 4, epoch: "e1") } == .duplicate)
        #expect(step(&cursor) { $0.live(seq: 5, epoch: "e1") } == .deliver)
        #expect(step(&cursor) { $0.live(seq: 5, epoch: "e1") } == .duplicate)
        #expect(step(&cursor) { $0.live(seq: 8, epoch: "e1") } == .gap(since: 5))
        #expect(step(&cursor) { $0.live(seq: 8, epoch: "e1") } == .duplicate)
        #expect(step(&cursor) { $0.replayed(seq: 8) } == .duplicate)
    }

    @Test("a seq past the next one is delivered and asks for a replay from the cursor")
    func gap() {
        var cursor = EventCursor(epoch: "e1", confirmed: 4)
        #expect(step(&cursor) { $0.live(seq: 7, epoch: "e1") } == .gap(since: 4))
        #expect(cursor.confirmed == 4)
        #expect(step(&cursor) { $0.live(seq: 9, epoch: "e1") } == .gap(since: 4))
        #expect(step(&cursor) { $0.heartbeat(latest: 9, epoch: "e1") } == .behind(since: 4))
    }

    @Test("a replay fills the gap: the missed events are delivered once and the cursor moves to the page's end")
    func gapFilledByReplay() {
        var cursor = EventCursor(epoch: "e1", confirmed: 4)
        #expect(step(&cursor) { $0.live(seq: 7, epoch: "e1") } == .gap(since: 4))
        #expect(step(&cursor) { $0.accepts(pageOf: "e1") })
        let decisions = [5, 6, 7].map { seq in step(&cursor) { $0.replayed(seq: seq) } }
        #expect(decisions == [.deliver, .deliver, .duplicate])
        cursor.replayed(through: 8)
        #expect(cursor.confirmed == 8)
        #expect(step(&cursor) { $0.live(seq: 8, epoch: "e1") } == .duplicate)
        #expect(step(&cursor) { $0.live(seq: 9, epoch: "e1") } == .deliver)
        #expect(step(&cursor) { $0.heartbeat(latest: 9, epoch: "e1") } == .current)
    }

    @Test("events delivered ahead join the cursor once the events before them arrive")
    func aheadSettles() {
        var cursor = EventCursor(epoch: "e1", confirmed: 4)
        #expect(step(&cursor) { $0.live(seq: 6, epoch: "e1") } == .gap(since: 4))
        #expect(step(&cursor) { $0.live(seq: 5, epoch: "e1") } == .deliver)
        #expect(cursor.confirmed == 6)
    }

    @Test("a new epoch on an event, a heartbeat or a page starts the cursor over at 0")
    func epochChange() {
        var cursor = EventCursor(epoch: "e1", confirmed: 40)
        #expect(step(&cursor) { $0.live(seq: 3, epoch: "e2") } == .newEpoch("e2"))
        #expect(cursor.epoch == "e2")
        #expect(cursor.confirmed == 0)
        #expect(step(&cursor) { $0.replayed(seq: 3) } == .deliver)

        var beat = EventCursor(epoch: "e1", confirmed: 40)
        #expect(step(&beat) { $0.heartbeat(latest: 2, epoch: "e3") } == .newEpoch("e3"))
        #expect(step(&beat) { $0.heartbeat(latest: 2, epoch: "e3") } == .behind(since: 0))

        var page = EventCursor(epoch: "e1", confirmed: 40)
        #expect(!step(&page) { $0.accepts(pageOf: "e4") })
        #expect(page.confirmed == 0)
        #expect(step(&page) { $0.accepts(pageOf: "e4") })
    }

    @Test("with no start yet, every new event is delivered once; the start then drops those it covers")
    func firstEvent() {
        var cursor = EventCursor()
        #expect(step(&cursor) { $0.live(seq: 12, epoch: "e1") } == .deliver)
        #expect(cursor.epoch == "e1")
        #expect(step(&cursor) { $0.live(seq: 12, epoch: "e1") } == .duplicate)
        #expect(step(&cursor) { $0.live(seq: 14, epoch: "e1") } == .deliver)
        #expect(step(&cursor) { $0.heartbeat(latest: 14, epoch: "e1") } == .current)
        cursor.start(epoch: "e1", at: 12)
        #expect(cursor.confirmed == 12)
        #expect(step(&cursor) { $0.live(seq: 14, epoch: "e1") } == .duplicate)
        #expect(step(&cursor) { $0.live(seq: 13, epoch: "e1") } == .deliver)
        #expect(cursor.confirmed == 14)
    }

    @Test("a forgotten position delivers until the next start")
    func forget() {
        var cursor = EventCursor(epoch: "e1", confirmed: 4)
        cursor.forget()
        #expect(cursor.confirmed == nil)
        #expect(step(&cursor) { $0.live(seq: 9, epoch: "e1") } == .deliver)
        cursor.start(epoch: "e1", at: 8)
        #expect(step(&cursor) { $0.live(seq: 9, epoch: "e1") } == .duplicate)
    }
}

/// Applies one mutating call to the cursor and returns its answer (an `#expect` cannot mutate).
private func step<T>(_ cursor: inout EventCursor, _ call: (inout EventCursor) -> T) -> T {
    call(&cursor)
}
