import Foundation
import Jobwire

#if canImport(Glibc)
    import Glibc
#endif

/// A live jobs panel: one row per job with status, progress bar, elapsed time, ETA, info and outcome.
///
/// On a terminal it redraws in place, in color, within the terminal's size (``PanelLayout``); otherwise
/// it appends a plain line whenever a job's status, whole percent or info changes, and one with the
/// outcome when it ends.
actor JobPanel {
    struct Row {
        var id: String
        var name: String
        var status: JobStatus
        var progress: Double
        var info: String?
        var eta: Timestamp?
        var outcome: Outcome?
        var createdAt: Timestamp
        var startedAt: Timestamp?
        var finishedAt: Timestamp?
        var updatedAt: Timestamp
        /// The first progress seen while executing, to estimate a rate when the job gives no ETA.
        var firstProgress: (value: Double, at: Timestamp)?
        var lastProgressAt: Timestamp?
        /// What the last plain line showed.
        var printed: String?
    }

    let terminal: Bool
    let color: Bool
    private var rows: [String: Row] = [:]
    private var order: [String] = []
    private var drawnLines = 0
    private var drawn: [String] = []
    /// Shown on a terminal while no job runs.
    private var hint: String?

    init(terminal: Bool, color: Bool) {
        self.terminal = terminal
        self.color = color
    }

    /// A panel for standard output: redrawn on a TTY, colored unless `NO_COLOR` is set.
    static func forStandardOutput(noColor: Bool = false) -> JobPanel {
        let tty = isatty(1) == 1
        let color = tty && !noColor && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
        return JobPanel(terminal: tty, color: color)
    }

    var isEmpty: Bool { rows.isEmpty }
    var allEnded: Bool { !rows.isEmpty && rows.values.allSatisfy { $0.status.isTerminal } }
    var anyUnsuccessful: Bool { rows.values.contains { $0.status == .failed || $0.status == .canceled } }
    func row(_ id: String) -> Row? { rows[id] }
    func contains(_ id: String) -> Bool { rows[id] != nil }

    /// Adds or replaces a job as the broker has it.
    func apply(_ job: Job) {
        var row =
            rows[job.id]
            ?? Row(
                id: job.id, name: job.name, status: job.status, progress: job.progress, createdAt: job.createdAt,
                updatedAt: job.updatedAt)
        if rows[job.id] == nil { order.append(job.id) }
        row.status = job.status
        row.progress = job.progress
        row.info = job.info
        row.eta = job.estimatedCompletionAt
        row.outcome = job.outcome
        row.startedAt = job.startedAt
        row.finishedAt = job.finishedAt
        row.updatedAt = job.updatedAt
        noteProgress(&row, at: job.updatedAt)
        rows[job.id] = row
    }

    /// Applies a `job:` event; returns whether the panel changed. Unknown jobs are added.
    @discardableResult
    func apply(_ event: Event) -> Bool {
        guard event.domain == "job", let id = event.context["jobId"]?.stringValue else { return false }
        if event.topic == "job:deleted" {
            guard rows.removeValue(forKey: id) != nil else { return false }
            order.removeAll { $0 == id }
            return true
        }
        let p = event.payload
        var row =
            rows[id]
            ?? Row(
                id: id, name: event.subject, status: .created, progress: 0, createdAt: event.createdAt,
                updatedAt: event.createdAt)
        if rows[id] == nil {
            order.append(id)
        } else if event.createdAt < row.updatedAt {
            // Older than what jobs.list or jobs.get showed.
            return false
        }
        if let status = p["status"]?.stringValue.flatMap(JobStatus.init(wire:)) {
            if status == .executing && row.startedAt == nil { row.startedAt = event.createdAt }
            if status.isTerminal && !row.status.isTerminal { row.finishedAt = event.createdAt }
            if !status.isTerminal { row.finishedAt = nil }
            if status == .ready && row.status.isTerminal {
                // Retried: a new run.
                row.outcome = nil
                row.startedAt = nil
                row.firstProgress = nil
            }
            row.status = status
        }
        if let progress = p["progress"]?.doubleValue { row.progress = progress }
        if let info = p["info"] { row.info = info.stringValue }
        if let eta = p["estimatedCompletionAt"] { row.eta = eta.stringValue.flatMap(Timestamp.init(iso8601:)) }
        if let outcome = p["outcome"] { row.outcome = outcome.isNull ? nil : try? Outcome(json: outcome) }
        row.updatedAt = event.createdAt
        noteProgress(&row, at: event.createdAt)
        rows[id] = row
        return true
    }

    private func noteProgress(_ row: inout Row, at time: Timestamp) {
        guard row.status == .executing else { return }
        if row.firstProgress == nil { row.firstProgress = (row.progress, time) }
        row.lastProgressAt = time
    }

    // MARK: Drawing

    /// Sets the line shown on a terminal while no job runs (nil for none).
    func setHint(_ hint: String?) {
        self.hint = hint
    }

    /// Draws what changed: the whole panel in place on a terminal, new lines otherwise.
    /// - Parameters:
    ///   - now: the time elapsed times, ETAs and folding are computed at.
    ///   - final: the last draw, without the hint.
    func draw(now: Timestamp = .now(), final: Bool = false) {
        if terminal {
            let size = JobPanel.terminalSize()
            let layout = PanelLayout(width: size.width, height: size.height, color: color, hint: final ? nil : hint)
            // Each line is cut to the width: one that wrapped would make the redraw climb too few lines.
            let lines = layout.lines(order.compactMap { rows[$0] }, now: now)
            guard lines != drawn else { return }
            write(JobPanel.frame(lines, over: drawnLines))
            drawnLines = lines.count
            drawn = lines
            return
        }
        for id in order {
            guard var row = rows[id] else { continue }
            let text = line(row, now: now)
            let key = "\(row.status)|\(Int(row.progress))|\(row.info ?? "")|\(row.outcome.map(JobText.describe) ?? "")"
            if row.printed != key {
                row.printed = key
                rows[id] = row
                write(text + "\n")
            }
        }
    }

    /// What draws `lines` over the `drawnLines` lines above the cursor, leaving the cursor below them.
    ///
    /// Back to the panel's first line, then each line over the old one, cleared to its end, and below
    /// the new lines, when there are fewer, the screen cleared. Not the whole panel cleared at once first:
    /// from the top-left corner, tmux (its `scroll-on-clear`) would move the whole screen into the
    /// scrollback; and one line at a time would scroll it after the window got shorter.
    static func frame(_ lines: [String], over drawnLines: Int) -> String {
        var out = drawnLines > 0 ? "\u{1B}[\(drawnLines)A\r" : ""
        out += lines.map { $0 + "\u{1B}[K\n" }.joined()
        if lines.count < drawnLines { out += "\u{1B}[J" }
        return out
    }

    /// The terminal's size (80 by 24 when it cannot be read).
    static func terminalSize() -> (width: Int, height: Int) {
        var size = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &size) == 0 else { return (80, 24) }
        return (size.ws_col > 0 ? Int(size.ws_col) : 80, size.ws_row > 0 ? Int(size.ws_row) : 24)
    }

    /// The line cut to `width - 1` visible characters (color codes kept whole, not counted).
    static func fit(_ line: String, width: Int) -> String {
        var out = ""
        var visible = 0
        var inEscape = false
        for character in line {
            if inEscape {
                out.append(character)
                if character.isLetter { inEscape = false }
                continue
            }
            if character == "\u{1B}" {
                inEscape = true
                out.append(character)
                continue
            }
            if visible >= width - 1 {
                return out + "\u{1B}[0m"
            }
            out.append(character)
            visible += 1
        }
        return out
    }

    /// Stops redrawing in place: what is on screen stays.
    func finish() {
        drawnLines = 0
        drawn = []
        if terminal { write("\u{1B}[?25h") }
    }

    func hideCursor() {
        if terminal { write("\u{1B}[?25l") }
    }

    private func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// `us_jb_x  workbook:export  executing  [██████░░░░░░]  50%  3.2s  eta 2s  Exported part 2 of 4`.
    func line(_ row: Row, now: Timestamp) -> String {
        let start = row.startedAt ?? row.createdAt
        let end = row.status.isTerminal ? (row.finishedAt ?? row.updatedAt) : now
        var parts = [
            row.id, row.name, paint(row.status.rawValue.padding(9), row.status),
            paint(bar(row.progress), row.status) + " " + JobText.percent(row.progress).leftPadded(4),
            Self.duration(max(0, end.milliseconds - start.milliseconds)),
        ]
        if !row.status.isTerminal, let eta = Self.eta(row, now: now) { parts.append("eta " + Self.duration(eta)) }
        if row.status.isTerminal, let outcome = row.outcome {
            parts.append(paint("— " + JobText.describe(outcome), row.status))
        } else if let info = row.info, !info.isEmpty {
            parts.append(info)
        }
        return parts.joined(separator: "  ")
    }

    /// Milliseconds left: the job's own estimate, or one from its progress rate so far.
    static func eta(_ row: Row, now: Timestamp) -> Int64? {
        if let eta = row.eta { return max(0, eta.milliseconds - now.milliseconds) }
        guard row.status == .executing, let first = row.firstProgress, let last = row.lastProgressAt,
            row.progress > first.value, last > first.at
        else { return nil }
        let rate = (row.progress - first.value) / Double(last.milliseconds - first.at.milliseconds)
        let remaining = (100 - row.progress) / rate - Double(now.milliseconds - last.milliseconds)
        return Int64(max(0, remaining))
    }

    func bar(_ progress: Double, width: Int = 20) -> String {
        let filled = Int((min(100, max(0, progress)) / 100 * Double(width)).rounded(.down))
        let (full, empty) = terminal ? ("█", "░") : ("#", ".")
        return "[" + String(repeating: full, count: filled) + String(repeating: empty, count: width - filled) + "]"
    }

    static func duration(_ milliseconds: Int64) -> String {
        if milliseconds < 60_000 { return String(format: "%.1fs", Double(milliseconds) / 1000) }
        let seconds = milliseconds / 1000
        if seconds < 3600 { return "\(seconds / 60)m\(String(format: "%02d", seconds % 60))s" }
        return "\(seconds / 3600)h\(String(format: "%02d", seconds % 3600 / 60))m"
    }

    private func paint(_ text: String, _ status: JobStatus) -> String {
        color ? Self.paint(text, status) : text
    }

    static func paint(_ text: String, _ status: JobStatus) -> String {
        let code: String =
            switch status {
            case .created, .planning, .scheduled: "90"
            case .ready: "36"
            case .executing: "33"
            case .complete: "32"
            case .failed: "31"
            case .canceled: "35"
            }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
