/// The ZeroMQ subscriptions a listener needs on the events socket (PROTOCOL.md §2).
///
/// A topic frame is `<topic>/<subject>/`, and ZeroMQ filters by byte prefix, so a handler subscribes to
/// the longest prefix that every frame it may want starts with:
///
/// | topic | job | prefix |
/// | --- | --- | --- |
/// | `job:ready` | `workbook:export` | `job:ready/workbook:export/` |
/// | `job:ready` | `workbook:*` | `job:ready/workbook:` |
/// | `job:ready` | none | `job:ready/` |
/// | `job:*` | any | `job:` |
/// | `*:ready`, `**` | any | the empty prefix |
///
/// Patterns that are not prefixes (`*:ready`, `sheet:*:submit`) subscribe wider than they match: the
/// client must still test each event's topic and subject with ``Glob``. Topic and job names are assumed
/// canonical (no empty segments, no trailing `:`), as the broker writes them.
public enum Subscription {
    /// The longest prefix a broker tracks, in bytes (a topic frame is `<topic>/<job name>/`). The
    /// broker treats a longer prefix as its first 256 bytes and drops a subscriber that sends a
    /// subscription message of more than a few hundred bytes; ``prefixes(topics:jobName:)`` never
    /// returns a longer one.
    public static let maxPrefixLength = 256

    /// The narrowest set of prefixes that lets every event a handler may match through.
    /// - Parameters:
    ///   - topics: Topic globs (`job:ready`, `job:*`, `**`); any may match. An empty list matches nothing,
    ///     as ``GlobSet`` does, and needs no subscription.
    ///   - jobName: The job name (`workbook:export`) or a glob over it (`workbook:*`), or `nil` for any.
    /// - Returns: Prefixes without duplicates and without any prefix that a shorter one already covers, in
    ///   the order the topics gave them.
    public static func prefixes(topics: [String], jobName: String?) -> [String] {
        let job = jobName.map { Glob($0) }
        return minimal(topics.map { truncated(topicFramePrefix(topic: Glob($0), job: job)) })
    }

    /// The longest start of a prefix that fits ``maxPrefixLength`` bytes, cut between characters.
    public static func truncated(_ prefix: String) -> String {
        guard prefix.utf8.count > maxPrefixLength else { return prefix }
        var end = prefix.utf8.index(prefix.utf8.startIndex, offsetBy: maxPrefixLength)
        while end > prefix.startIndex, end.samePosition(in: prefix.unicodeScalars) == nil {
            end = prefix.utf8.index(before: end)
        }
        return String(prefix[..<end])
    }

    /// The prefix of the topic frames one topic glob and an optional job-name glob can match.
    public static func topicFramePrefix(topic: Glob, job: Glob?) -> String {
        guard topic.isLiteral else { return topic.literalPrefix }
        guard let job else { return "\(topic.literalPrefix)/" }
        if job.isLiteral { return "\(topic.literalPrefix)/\(job.literalPrefix)/" }
        return "\(topic.literalPrefix)/\(job.literalPrefix)"
    }

    /// Removes duplicates and every prefix that another one in the list is a prefix of.
    public static func minimal(_ prefixes: [String]) -> [String] {
        var result: [String] = []
        for candidate in prefixes {
            if result.contains(where: { candidate.utf8.starts(with: $0.utf8) }) { continue }
            result.removeAll { $0.utf8.starts(with: candidate.utf8) }
            result.append(candidate)
        }
        return result
    }
}
