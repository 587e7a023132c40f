import JobwireProtocol
import Testing

@Suite struct SubscriptionTests {
    @Test(
        "Each row of PROTOCOL.md §2's subscription table",
        arguments: [
            ("job:ready", "workbook:export", "job:ready/workbook:export/"),
            ("job:ready", "workbook:*", "job:ready/workbook:"),
            ("job:ready", nil, "job:ready/"),
            ("job:*", nil, "job:"),
            ("**", nil, ""),
        ] as [(String, String?, String)])
    func protocolTable(topic: String, jobName: String?, prefix: String) {
        #expect(Subscription.prefixes(topics: [topic], jobName: jobName) == [prefix])
    }

    @Test(
        "Globs subscribe to their literal prefix and ignore the job",
        arguments: [
            ("*:ready", "workbook:export", ""),
            ("job:*", "workbook:export", "job:"),
            ("job:**", nil, "job"),
            ("job:parts-*", nil, "job:parts-"),
            ("job:ready", "sheet:**", "job:ready/sheet"),
            ("job:ready", "*:export", "job:ready/"),
            ("job:ready", "sheet:*:submit", "job:ready/sheet:"),
        ] as [(String, String?, String)])
    func globs(topic: String, jobName: String?, prefix: String) {
        #expect(Subscription.prefixes(topics: [topic], jobName: jobName) == [prefix])
    }

    @Test("Duplicates and prefixes covered by shorter ones are dropped")
    func dedupe() {
        #expect(Subscription.prefixes(topics: ["job:ready", "job:ready"], jobName: nil) == ["job:ready/"])
        #expect(Subscription.prefixes(topics: ["job:ready", "job:*", "job:failed"], jobName: nil) == ["job:"])
        #expect(Subscription.prefixes(topics: ["job:ready", "**"], jobName: "a:b") == [""])
        #expect(
            Subscription.prefixes(topics: ["job:ready", "job:failed"], jobName: "workbook:export")
                == ["job:ready/workbook:export/", "job:failed/workbook:export/"])
        // `job:ready/` is not a prefix of `job:ready-soon/`, and the reverse neither.
        #expect(Subscription.prefixes(topics: ["job:ready", "job:ready-soon"], jobName: nil).count == 2)
    }

    @Test("No topics need no subscription")
    func noTopics() {
        #expect(Subscription.prefixes(topics: [], jobName: "a:b").isEmpty)
    }

    @Test("Every frame the globs match starts with a subscribed prefix")
    func prefixesAreWideEnough() {
        let cases: [([String], String?)] = [
            (["job:ready"], "workbook:export"), (["job:*"], "sheet:*"), (["*:ready"], nil), (["job:**"], nil),
            (["job:ready", "job:failed"], "sheet:**"), (["job:ready"], "sheet:*:submit"),
        ]
        let topics = ["job:ready", "job:failed", "job:parts-completed", "broker:heartbeat", "file:ready"]
        let subjects = ["workbook:export", "sheet:validate", "sheet:contacts:submit", "", "space:configure"]
        for (topicPatterns, jobName) in cases {
            let prefixes = Subscription.prefixes(topics: topicPatterns, jobName: jobName)
            let topicGlobs = GlobSet(topicPatterns)
            for topic in topics where topicGlobs.matches(topic) {
                for subject in subjects where jobName.map({ Glob($0).matches(subject) }) ?? true {
                    let frame = TopicFrame.encode(topic: topic, subject: subject)
                    #expect(
                        prefixes.contains { frame.starts(with: Array($0.utf8)) },
                        "\(topicPatterns) \(jobName ?? "-") misses \(topic)/\(subject)/")
                }
            }
        }
    }

    @Test("A prefix is cut at 256 bytes, between characters, and still starts every frame it stood for")
    func longPrefix() {
        // 11 bytes, then 2-byte characters: byte 256 falls inside one.
        let name = "a" + String(repeating: "é", count: 200) + ":x"
        let frame = "job:ready/\(name)/"
        let prefixes = Subscription.prefixes(topics: ["job:ready"], jobName: name)
        let prefix = prefixes.first ?? ""
        #expect(prefixes.count == 1)
        #expect(prefix.utf8.count == 255)
        #expect(frame.utf8.starts(with: prefix.utf8))
        #expect(Subscription.prefixes(topics: ["job:ready"], jobName: "a:b") == ["job:ready/a:b/"])
    }
}
