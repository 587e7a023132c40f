import Jobwire

/// What a terminal panel shows: a pure function of the rows, the terminal's size and the time.
///
/// It never draws more lines than the terminal has rows less one (so a redraw in place never scrolls
/// anything into the scrollback): executing jobs first, then jobs that ended less than ``foldAfter`` ago,
/// then jobs waiting to run, and one summary line for the rest. Columns are padded; at a narrow width the info text goes first,
/// then the bar shrinks and the id shows only its last characters, so status, %, elapsed and ETA stay.
struct PanelLayout {
    /// The terminal's columns.
    var width: Int
    /// The terminal's rows.
    var height: Int
    var color = false
    /// A line shown while no job runs ("waiting for jobs…"), nil for none.
    var hint: String?
    /// How long an ended job keeps its own row before it is counted in the summary line.
    var foldAfter: Duration = .seconds(5)

    static let shortIdWidth = 9
    static let fullBar = 20
    static let shortBar = 10
    static let narrowestBar = 5
    static let minimumInfo = 8
    /// Info up to this long is worth bar cells.
    static let roomyInfo = 30

    /// The lines to draw, each at most `width - 1` columns wide, at most `height - 1` of them.
    func lines(_ rows: [JobPanel.Row], now: Timestamp) -> [String] {
        let budget = max(1, height - 1)
        let foldMs = foldAfter.components.seconds * 1000 + foldAfter.components.attoseconds / 1_000_000_000_000_000
        let running = rows.filter { !$0.status.isTerminal }
        let executing = running.filter { $0.status == .executing }
        let waiting = running.filter { $0.status != .executing }
        let ended = rows.filter(\.status.isTerminal)
        let recent = ended.filter { now.milliseconds - ($0.finishedAt ?? $0.updatedAt).milliseconds < foldMs }
        let folded = ended.filter { now.milliseconds - ($0.finishedAt ?? $0.updatedAt).milliseconds >= foldMs }
        var shown = executing + recent + waiting
        let hintLine = running.isEmpty ? hint : nil
        var hidden: [JobPanel.Row] = []
        let extra = (folded.isEmpty ? 0 : 1) + (hintLine == nil ? 0 : 1)
        if shown.count + extra > budget {
            let room = max(0, budget - 1 - (hintLine == nil ? 0 : 1))
            hidden = Array(shown[room...])
            shown = Array(shown[..<room])
        }
        var lines = columns(for: shown, now: now).format(shown, now: now, layout: self)
        // Ended jobs without a row of their own are counted with the folded ones.
        let hiddenRunning = hidden.filter { !$0.status.isTerminal }
        let notShownEnded = folded + hidden.filter(\.status.isTerminal)
        if !hiddenRunning.isEmpty || !notShownEnded.isEmpty {
            var parts: [String] = []
            if !hiddenRunning.isEmpty { parts.append("… \(hiddenRunning.count) more: " + Self.counts(hiddenRunning)) }
            if !notShownEnded.isEmpty { parts.append("\(notShownEnded.count) ended: " + Self.counts(notShownEnded)) }
            lines.append(parts.joined(separator: "  ·  "))
        }
        if let hintLine { lines.append(dim(hintLine)) }
        return lines.prefix(budget).map { JobPanel.fit($0, width: width) }
    }

    /// `11 complete, 1 failed`, in the order of the statuses.
    static func counts(_ rows: [JobPanel.Row]) -> String {
        var count: [JobStatus: Int] = [:]
        for row in rows { count[row.status, default: 0] += 1 }
        return JobStatus.allCases.compactMap { status in count[status].map { "\($0) \(status.rawValue)" } }
            .joined(separator: ", ")
    }

    /// The widths of the columns of `rows` at this terminal's width.
    func columns(for rows: [JobPanel.Row], now: Timestamp) -> Columns {
        var columns = Columns(
            id: rows.map(\.id.count).max() ?? 0,
            name: min(24, rows.map(\.name.count).max() ?? 0),
            status: rows.map(\.status.rawValue.count).max() ?? 0,
            bar: Self.fullBar,
            percent: max(4, rows.map { JobText.percent($0.progress).count }.max() ?? 0),
            elapsed: rows.map { Self.elapsed($0, now: now).count }.max() ?? 0,
            eta: rows.map { Self.eta($0, now: now).count }.max() ?? 0)
        let available = width - 1
        let longestTail = rows.map { Self.tail($0).count }.max() ?? 0
        let wanted = longestTail == 0 ? 0 : min(longestTail, Self.roomyInfo) + 2
        let needed = longestTail == 0 ? 0 : Self.minimumInfo + 2
        // Give up, in this order: the info's room, bar cells down to 10, the id's head, the name's tail,
        // bar cells down to 5, the bar.
        if available - columns.core < wanted, columns.bar > Self.shortBar {
            columns.bar = max(Self.shortBar, columns.bar - (wanted - (available - columns.core)))
        }
        if available - columns.core < needed, columns.id > Self.shortIdWidth { columns.id = Self.shortIdWidth }
        if available - columns.core < 0, columns.name > 12 {
            columns.name = max(12, columns.name + available - columns.core)
        }
        if available - columns.core < 0, columns.bar > 0 {
            columns.bar += available - columns.core
            if columns.bar < Self.narrowestBar { columns.bar = 0 }
        }
        columns.info = max(0, available - columns.core - 2)
        if columns.info < Self.minimumInfo { columns.info = 0 }
        return columns
    }

    struct Columns {
        var id: Int
        var name: Int
        var status: Int
        var bar: Int
        var percent: Int
        var elapsed: Int
        var eta: Int
        var info = 0

        /// Everything but the info text, separators included.
        var core: Int {
            id + 2 + name + 2 + status + (bar > 0 ? 2 + bar + 2 + 1 : 2) + percent + 2 + elapsed
                + (eta > 0 ? 2 + eta : 0)
        }

        func format(_ rows: [JobPanel.Row], now: Timestamp, layout: PanelLayout) -> [String] {
            rows.map { row in
                var line = PanelLayout.clip(row.id, id, keepEnd: true).padding(id) + "  "
                line += PanelLayout.clip(row.name, name).padding(name) + "  "
                line += layout.paint(row.status.rawValue.padding(status), row.status) + "  "
                if bar > 0 { line += layout.paint(PanelLayout.bar(row.progress, width: bar), row.status) + " " }
                line += JobText.percent(row.progress).leftPadded(percent) + "  "
                line += PanelLayout.elapsed(row, now: now).leftPadded(elapsed)
                if eta > 0 { line += "  " + PanelLayout.eta(row, now: now).padding(eta) }
                let tail = PanelLayout.tail(row)
                if info > 0 && !tail.isEmpty {
                    let text = PanelLayout.clip(tail, info)
                    line += "  " + (row.status.isTerminal ? layout.paint(text, row.status) : text)
                }
                return line.trailingSpacesTrimmed
            }
        }
    }

    /// `text` cut to `width` characters with an ellipsis, at its end or (for ids) its start.
    static func clip(_ text: String, _ width: Int, keepEnd: Bool = false) -> String {
        guard text.count > width else { return text }
        guard width > 1 else { return String(text.prefix(width)) }
        return keepEnd ? "…" + text.suffix(width - 1) : text.prefix(width - 1) + "…"
    }

    static func bar(_ progress: Double, width: Int) -> String {
        let filled = Int((min(100, max(0, progress)) / 100 * Double(width)).rounded(.down))
        return "[" + String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled) + "]"
    }

    static func elapsed(_ row: JobPanel.Row, now: Timestamp) -> String {
        let start = row.startedAt ?? row.createdAt
        let end = row.status.isTerminal ? (row.finishedAt ?? row.updatedAt) : now
        return JobPanel.duration(max(0, end.milliseconds - start.milliseconds))
    }

    static func eta(_ row: JobPanel.Row, now: Timestamp) -> String {
        guard !row.status.isTerminal, let eta = JobPanel.eta(row, now: now) else { return "" }
        return "eta " + JobPanel.duration(eta)
    }

    /// The outcome of an ended job, the info of a running one.
    static func tail(_ row: JobPanel.Row) -> String {
        if row.status.isTerminal, let outcome = row.outcome { return "— " + JobText.describe(outcome) }
        return row.status.isTerminal ? "" : (row.info ?? "")
    }

    func paint(_ text: String, _ status: JobStatus) -> String {
        color ? JobPanel.paint(text, status) : text
    }

    func dim(_ text: String) -> String {
        color ? "\u{1B}[2m\(text)\u{1B}[0m" : text
    }
}

extension String {
    var trailingSpacesTrimmed: String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
