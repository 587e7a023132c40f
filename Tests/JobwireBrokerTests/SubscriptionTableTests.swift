import Testing

@testable import JobwireBroker

@Suite struct SubscriptionTableTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test("a topic frame is wanted when a counted prefix starts it, until the last unsubscribe of that prefix")
    func counts() {
        var table = SubscriptionTable(maxPrefixLength: 256, maxPrefixes: 100)
        #expect(!table.wants(Self.bytes("job:ready/a:b/")))
        table.add(Self.bytes("job:ready/"))
        table.add(Self.bytes("job:ready/"))
        table.add(Self.bytes("job:ready/a:b/"))
        #expect(table.prefixCount == 2)
        #expect(table.wants(Self.bytes("job:ready/a:b/")))
        #expect(table.wants(Self.bytes("job:ready/x:y/")))
        #expect(!table.wants(Self.bytes("job:failed/a:b/")))
        #expect(!table.wants(Self.bytes("job:")))
        table.remove(Self.bytes("job:ready/"))
        #expect(table.wants(Self.bytes("job:ready/x:y/")), "one subscriber of job:ready/ is left")
        table.remove(Self.bytes("job:ready/"))
        #expect(!table.wants(Self.bytes("job:ready/x:y/")))
        #expect(table.wants(Self.bytes("job:ready/a:b/")))
        table.remove(Self.bytes("job:ready/a:b/"))
        #expect(!table.wants(Self.bytes("job:ready/a:b/")))
        #expect(table.prefixCount == 0)
        table.add([])
        #expect(table.wants(Self.bytes("anything")), "the empty prefix wants every frame")
    }

    @Test("a prefix longer than the limit counts as its start, and its unsubscribe balances it")
    func longPrefix() {
        var table = SubscriptionTable(maxPrefixLength: 8, maxPrefixes: 100)
        table.add(Self.bytes("job:ready/a-very-long-name/"))
        table.add(Self.bytes("job:ready/another-long-name/"))
        #expect(table.prefixCount == 1)
        #expect(table.wants(Self.bytes("job:ready/a-very-long-name/")))
        #expect(!table.wants(Self.bytes("job:rea")))
        table.remove(Self.bytes("job:ready/a-very-long-name/"))
        #expect(table.wants(Self.bytes("job:ready/another-long-name/")))
        table.remove(Self.bytes("job:ready/another-long-name/"))
        #expect(!table.wants(Self.bytes("job:ready/another-long-name/")))
    }

    @Test("past the most distinct prefixes every frame is wanted, until the untracked prefixes are gone")
    func full() {
        var table = SubscriptionTable(maxPrefixLength: 256, maxPrefixes: 2)
        let added = [table.add(Self.bytes("a/")), table.add(Self.bytes("b/")), table.add(Self.bytes("a/"))]
        #expect(added == [true, true, true], "a counted prefix takes no room")
        let full = table.add(Self.bytes("c/"))
        #expect(!full)
        #expect(table.wants(Self.bytes("c/x/")))
        #expect(table.wants(Self.bytes("z/")))
        table.remove(Self.bytes("c/"))
        #expect(table.isComplete)
        #expect(!table.wants(Self.bytes("z/")))
        #expect(table.wants(Self.bytes("b/x")))
    }

    @Test("freed nodes are reused and siblings stay reachable after a removal in the middle")
    func prune() {
        var table = SubscriptionTable(maxPrefixLength: 256, maxPrefixes: 10_000)
        let names = (0..<500).map { Self.bytes("job:ready/n\($0)/") }
        for name in names { table.add(name) }
        for (index, name) in names.enumerated() where index % 2 == 0 { table.remove(name) }
        for (index, name) in names.enumerated() {
            #expect(table.wants(name + Self.bytes("tail")) == (index % 2 == 1))
        }
        for (index, name) in names.enumerated() where index % 2 == 1 { table.remove(name) }
        #expect(table.prefixCount == 0)
        for name in names { #expect(!table.wants(name)) }
    }
}
