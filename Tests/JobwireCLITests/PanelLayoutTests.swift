import Jobwire
import Testing

@testable import jobwire

@Suite("the watch panel's layout")
struct PanelLayoutTests {
    static let start = Timestamp(milliseconds: 1_800_000_000_000)

    /// A job as the panel has it: `id` is a real-length id ending in `n`.
    static func row(
        _ n: Int, status: JobStatus, progress: Double = 0, info: String? = nil, startedAfter: Int64 = 0,
        finishedAfter: Int64? = nil, outcome: Outcome? = nil
    ) -> JobPanel.Row {
        let created = Timestamp(milliseconds: start.milliseconds + Int64(n))
        let started = status == .executing || status.isTerminal ? created.plus(startedAfter) : nil
        var row = JobPanel.Row(
            id: "us_jb_mhx2k9f4" + String(format: "%03d", n) + "abcdef", name: "workbook:export", status: status,
            progress: progress, info: info, createdAt: created, startedAt: started,
            finishedAt: finishedAfter.map { created.plus($0) }, updatedAt: created)
        row.outcome = outcome
        if status == .executing, progress > 0 {
            // Half the progress a second after it started, the rest at the same rate.
            row.firstProgress = (progress / 2, created.plus(startedAfter))
            row.lastProgressAt = created.plus(startedAfter + 1000)
        }
        return row
    }

    static func visible(_ line: String) -> Int {
        var count = 0
        var escape = false
        for character in line {
            if escape {
                if character.isLetter { escape = false }
            } else if character == "\u{1B}" {
                escape = true
            } else {
                count += 1
            }
        }
        return count
    }

    @Test("50 jobs in an 80 by 24 terminal: 23 lines at most, running jobs first, the rest summed up")
    func fitsTheHeight() {
        let rows = (0..<50).map { n in
            n % 3 == 0
                ? Self.row(n, status: .executing, progress: 40, info: "Exporting sheet 2 of 5")
                : Self.row(n, status: .ready)
        }
        let now = Self.start.plus(1500)
        for color in [false, true] {
            let lines = PanelLayout(width: 80, height: 24, color: color).lines(rows, now: now)
            #expect(lines.count == 23)
            #expect(lines.allSatisfy { Self.visible($0) <= 79 }, "\(lines)")
            // The 17 executing jobs come first, whatever their order of creation.
            #expect(lines.prefix(17).allSatisfy { $0.contains("executing") })
            #expect(lines[17].contains("ready"))
            #expect(lines.last == "… 28 more: 28 ready", "\(lines)")
        }
    }

    @Test("at 80 columns every row shows its status, %, elapsed time and ETA; the info gives way")
    func eightyColumns() throws {
        let rows = [
            Self.row(
                1, status: .executing, progress: 50, info: "Exported part 2 of 4 to the warehouse in the cloud",
                startedAfter: 200),
            Self.row(2, status: .executing, progress: 12.5, info: "Starting"),
        ]
        let now = Self.start.plus(1200)
        let lines = PanelLayout(width: 80, height: 24).lines(rows, now: now)
        #expect(lines.count == 2)
        for (line, percent) in zip(lines, ["50%", "12.5%"]) {
            #expect(line.count <= 79, "\(line)")
            #expect(line.contains("executing") && line.contains(percent), "\(line)")
            #expect(line.contains("eta "), "\(line)")
        }
        // Started 1 s ago, half done after it: 2 s more at that rate.
        #expect(lines[0].contains("1.0s  eta 2.0s"), "\(lines[0])")
        // Padded columns: the percent, elapsed time and ETA of both rows line up.
        let columns = try lines.map { line in try #require(line.firstRange(of: "eta ")).lowerBound }
        #expect(
            lines[0].distance(from: lines[0].startIndex, to: columns[0])
                == lines[1].distance(from: lines[1].startIndex, to: columns[1]))
        // Narrower, the bar shrinks before the info gets any room; narrower still, it goes.
        let seventy = PanelLayout(width: 70, height: 24).lines(rows, now: now)
        #expect(seventy[0].contains("[") && !seventy[0].contains("Exported"), "\(seventy)")
        #expect(seventy.allSatisfy { $0.count <= 69 && $0.contains("eta ") }, "\(seventy)")
        let sixty = PanelLayout(width: 60, height: 24).lines(rows, now: now)
        #expect(sixty.allSatisfy { $0.count <= 59 && $0.contains("eta ") && !$0.contains("[") }, "\(sixty)")
        // Wide enough, the full id, a 20-cell bar and the whole info.
        let wide = PanelLayout(width: 160, height: 24).lines(rows, now: now)
        #expect(wide[0].hasPrefix(rows[0].id + "  workbook:export  executing  [██████████░░░░░░░░░░]   50%  1.0s"))
        #expect(wide[0].hasSuffix("Exported part 2 of 4 to the warehouse in the cloud"), "\(wide[0])")
    }

    @Test("an ended job keeps its row for a few seconds, then folds into the summary line")
    func folding() {
        let rows = [
            Self.row(1, status: .executing, progress: 10),
            Self.row(2, status: .complete, progress: 100, finishedAfter: 1000, outcome: Outcome(message: "Done")),
            Self.row(3, status: .failed, progress: 30, finishedAfter: 1000, outcome: Outcome(message: "No rows")),
            Self.row(0, status: .ready),
        ]
        let layout = PanelLayout(width: 100, height: 24, hint: "waiting for jobs…")
        let soon = layout.lines(rows, now: Self.start.plus(3000))
        #expect(soon.count == 4, "\(soon)")
        #expect(soon[3].contains("ready"), "executing, then ended, then waiting: \(soon)")
        #expect(soon[1].contains("complete") && soon[1].hasSuffix("— Done"), "\(soon)")
        #expect(soon[2].contains("failed") && soon[2].hasSuffix("— No rows"), "\(soon)")
        let later = layout.lines(rows, now: Self.start.plus(6100))
        #expect(later.count == 3, "\(later)")
        #expect(later[0].contains("executing") && later[1].contains("ready"))
        #expect(later[2] == "2 ended: 1 complete, 1 failed")
    }

    @Test("a redraw climbs over the lines it drew and overwrites them, without clearing the screen")
    func frame() {
        #expect(JobPanel.frame(["a", "b"], over: 0) == "a\u{1B}[K\nb\u{1B}[K\n")
        #expect(JobPanel.frame(["a", "b"], over: 2) == "\u{1B}[2A\ra\u{1B}[K\nb\u{1B}[K\n")
        // Fewer lines than before: the screen is cleared below the new ones, never from the first.
        #expect(JobPanel.frame(["a"], over: 3) == "\u{1B}[3A\ra\u{1B}[K\n\u{1B}[J")
        #expect(!JobPanel.frame(["a", "b"], over: 2).contains("\u{1B}[J"))
    }

    @Test("while nothing runs the panel says it waits, and how to quit")
    func hint() {
        let layout = PanelLayout(width: 80, height: 24, hint: "waiting for jobs… (Ctrl-C to quit)")
        #expect(layout.lines([], now: Self.start) == ["waiting for jobs… (Ctrl-C to quit)"])
        let ended = [Self.row(1, status: .canceled, finishedAfter: 0)]
        #expect(
            layout.lines(ended, now: Self.start.plus(60_000)) == [
                "1 ended: 1 canceled", "waiting for jobs… (Ctrl-C to quit)",
            ])
        // Ended jobs beyond the height are counted with the folded ones.
        let many = (0..<30).map { Self.row($0, status: .complete, finishedAfter: 0) }
        let lines = PanelLayout(width: 80, height: 10).lines(many, now: Self.start.plus(1000))
        #expect(lines.count == 9 && lines.last == "22 ended: 22 complete", "\(lines)")
        // A running job: no hint.
        #expect(layout.lines([Self.row(1, status: .ready)], now: Self.start).count == 1)
    }
}

extension Timestamp {
    fileprivate func plus(_ milliseconds: Int64) -> Timestamp {
        Timestamp(milliseconds: self.milliseconds + milliseconds)
    }
}
