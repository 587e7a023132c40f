import JobwireProtocol
import Testing

@Suite struct GlobTests {
    @Test(
        "The topic table of the research spec §4.2 holds",
        arguments: [
            ("**", "job:ready", true),
            ("*", "job:ready", false),
            ("job:*", "job:ready", true),
            ("job:*", "job:parts-completed", true),
            ("*:ready", "job:ready", true),
        ])
    func flatfileTable(pattern: String, sample: String, expected: Bool) {
        #expect(Glob(pattern).matches(sample) == expected)
    }

    @Test("An array of patterns matches when any of them does")
    func globSetAny() {
        let set = GlobSet(["job:ready", "job:failed"])
        #expect(set.matches("job:failed"))
        #expect(set.matches("job:ready"))
        #expect(!set.matches("job:completed"))
    }

    @Test("An empty set of patterns matches nothing")
    func emptySet() {
        #expect(!GlobSet([]).matches("job:ready"))
        #expect(!GlobSet([]).matches(""))
    }

    // wildcard-match's own test table, with `:` as the separator.
    @Test(
        "wildcard-match's matching cases match",
        arguments: [
            ("one", "one"), ("one:two", "one:two"), ("one.two", "one.two"),
            ("one[].*+{}]  ][[..$", "one[].*+{}]  ][[..$"),
            ("", ""), ("one::", "one::"), (":", ":"), (" ", " "), (":one:", ":one:"),
            ("*", ""), ("*", "one"), ("*:*", "one:two"), ("*:*", "one:"), ("*:*:*", "one:two:three"), ("*:*:*", "::"),
            ("**", ""), ("**", ":"), ("**", ":::"), ("**", "two:three"), ("**", "   :three:::"), ("**", "::three"),
            ("*:**", ""), ("*:**", "two"), ("*:**", "two:three"), ("**:*", "one"), ("**:*", "one:two:three"),
            ("*:**:*", "one:two"), ("*:**:*", "one:two:three:four:five"), ("*:**:*:**", "one:two"),
            ("one:*", "one:two"), ("one:*", "one:*"), ("one:*", "one:"), ("one:**", "one"), ("one:**", "one:two"),
            ("one:**", "one:two:three"), ("one:**", "one:"), ("one:*:**", "one:two"),
            ("one:*:**", "one:two:three:four"),
            ("one:*:three", "one:two:three"), ("one:*:three:", "one:two:three:"), ("one:*:three:*", "one:two:three:"),
            ("one:**:two", "one:two"), ("one:**:three", "one:two:three"), ("one:**:four", "one:two:three:four"),
            ("one:**:three:*", "one:two:three:four"), ("one*", "one"), ("*two", "two"), ("one*three", "onetwothree"),
            ("one*three", "onethree"), ("one:two*", "one:twothree"), ("*:", ":"), ("**:", ":one:"), ("*:one", ":one"),
            ("**:one", ":one"), ("?", "a"), ("??", "ab"), ("o?e", "one"), ("on?", "one"), ("o?e:tw?", "one:two"),
        ])
    func wildcardMatchPositive(pattern: String, sample: String) {
        #expect(Glob(pattern).matches(sample), "\(pattern) should match \(sample)")
    }

    @Test(
        "wildcard-match's failing cases fail",
        arguments: [
            ("one", "two"), ("one:two", "one:three"), ("one", "one.two"), ("", "one"), ("one", "one "), (" one", "one"),
            ("", "**"), ("", "*"), (":", ""), (":", "one:"), (":", ":one"), ("one:two", "one:*"), ("one:two", "one:**"),
            ("*", "one:two"), ("*", ":one"), ("*:**:*", "one"), ("one:*", ""),
            ("one:*", "one:two:three"), ("one:*", "one"), ("one:*", ":one"), ("one:**", ""), ("one:**", ":"),
            ("one:**", "two"), ("one:**", ":one"), ("one:*:**", "one"), ("*:one", "one:two:three"), ("*:one", "one"),
            ("**:one", ""), ("**:one", "two"), ("*:**:one", "one"), ("*:**:one", "two:one:two"),
            ("*two", "one:two"), ("**two", "one:two"), ("**:", ":one"), ("?", ""), ("?", ":"), ("?", "on"),
            ("??", "one"), ("??", "o"), ("o?e", "oe"), ("on?", "on:"), ("?one", "one"), ("o??", "o:e"),
            ("one:t?o", "one:to"), ("one:tw?", "one:tw:"), ("o?e:tw?", "onetwo"),
        ])
    func wildcardMatchNegative(pattern: String, sample: String) {
        #expect(!Glob(pattern).matches(sample), "\(pattern) should not match \(sample)")
    }

    @Test("? matches exactly one character, also a multi-byte one, but never a separator")
    func questionMark() {
        #expect(Glob("job:?eady").matches("job:ready"))
        #expect(!Glob("job:?eady").matches("job:eady"))
        #expect(Glob("caf?").matches("café"))
        #expect(!Glob("caf??").matches("café"))
        #expect(!Glob("job?ready").matches("job:ready"))
    }

    @Test("A backslash makes the next character literal")
    func escapes() {
        #expect(Glob(#"job:\*"#).matches("job:*"))
        #expect(!Glob(#"job:\*"#).matches("job:ready"))
        #expect(Glob(#"what\?"#).matches("what?"))
        #expect(!Glob(#"what\?"#).matches("whats"))
        #expect(Glob(#"a\\b"#).matches(#"a\b"#))
        // The pattern is split at separators before escapes apply: `\:` is a dropped `\` and a separator.
        #expect(Glob(#"a\:b"#).matches("a:b"))
    }

    @Test("** in the middle spans zero or more whole segments")
    func globstarInTheMiddle() {
        let glob = Glob("sheet:**:submit")
        #expect(glob.matches("sheet:submit"))
        #expect(glob.matches("sheet:contacts:submit"))
        #expect(glob.matches("sheet:a:b:c:submit"))
        #expect(!glob.matches("sheet:contactssubmit"))
        #expect(!glob.matches("sheet:contacts:submitted"))
        #expect(!glob.matches("sheets:submit"))
    }

    @Test("** inside a segment is just two stars")
    func globstarInsideASegment() {
        #expect(Glob("job**").matches("jobready"))
        #expect(!Glob("job**").matches("job:ready"))
    }

    @Test("A trailing ** also matches no segment, and its separator is optional as in wildcard-match")
    func trailingGlobstar() {
        #expect(Glob("job:**").matches("job"))
        #expect(Glob("job:**").matches("job:ready"))
        #expect(Glob("job:**").matches("job:a:b"))
        #expect(Glob("job:**").matches("jobs:ready"))
        #expect(!Glob("job:**").matches("file:job"))
    }

    @Test("A pattern without a trailing separator also matches samples that have them")
    func trailingSeparators() {
        #expect(Glob("job:ready").matches("job:ready:"))
        #expect(Glob("job:ready").matches("job:ready::"))
        #expect(Glob("job:*").matches("job:ready:"))
        #expect(!Glob("job:ready:").matches("job:ready"))
        // wildcard-match v4 rejected these; v5's transform() accepts them.
        #expect(Glob("*").matches("one:"))
        #expect(Glob("*").matches(":"))
        #expect(Glob("**:one").matches("one:"))
        #expect(Glob("job:ready:").matches("job:ready:"))
        // A separator in the pattern matches one or more in the sample.
        #expect(Glob("job:ready").matches("job::ready"))
    }

    @Test("Matching is case-sensitive")
    func caseSensitive() {
        #expect(!Glob("job:ready").matches("Job:Ready"))
        #expect(!Glob("job:*").matches("JOB:ready"))
    }

    @Test("Another separator makes : an ordinary character")
    func dotSeparator() {
        let glob = Glob("**.job", separator: UInt8(ascii: "."))
        #expect(glob.matches("job"))
        #expect(glob.matches("payload.job"))
        #expect(glob.matches("src.payload.job"))
        #expect(!glob.matches("payload.jobs"))
        #expect(!glob.matches("payload.myjob"))
        #expect(Glob("*", separator: UInt8(ascii: ".")).matches("job:ready"))
        #expect(!Glob("*", separator: UInt8(ascii: ".")).matches("payload.job"))
    }

    @Test("Long samples with many stars match in polynomial time")
    func noExponentialBacktracking() {
        let sample = String(repeating: "a", count: 5000) + "b"
        let glob = Glob(String(repeating: "*a", count: 40) + "*c")
        #expect(!glob.matches(sample))
        #expect(Glob(String(repeating: "*a", count: 40) + "*b").matches(sample))
    }

    @Test(
        "The literal prefix stops at the first wildcard",
        arguments: [
            ("job:ready", "job:ready", true), ("job:*", "job:", false), ("*:ready", "", false), ("**", "", false),
            ("job:**", "job", false), ("workbook:exp*", "workbook:exp", false), ("sheet:**:submit", "sheet:", false),
            (#"a\*b"#, "a*b", true), ("job:?", "job:", false),
        ])
    func literalPrefix(pattern: String, prefix: String, isLiteral: Bool) {
        #expect(Glob(pattern).literalPrefix == prefix)
        #expect(Glob(pattern).isLiteral == isLiteral)
    }

    @Test("Globs compare by pattern and separator")
    func hashable() {
        #expect(Glob("job:*") == Glob("job:*"))
        #expect(Glob("job:*") != Glob("job:*", separator: UInt8(ascii: ".")))
        #expect(Set([Glob("a"), Glob("a"), Glob("b")]).count == 2)
    }
}
