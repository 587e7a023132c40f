import Jobwire

/// Jobs, outcomes and actions as text for people.
enum JobText {
    /// One line: id, name, status, progress, info.
    static func summary(_ job: Job) -> String {
        var line = "\(job.id)  \(job.name)  \(job.status.rawValue)  \(percent(job.progress))"
        if let info = job.info, !info.isEmpty { line += "  \(info)" }
        if let message = job.outcome?.message, job.status.isTerminal { line += "  — \(message)" }
        return line
    }

    /// A block of `key  value` lines, for `jobs get`.
    static func details(_ job: Job) -> String {
        var rows: [(String, String)] = [
            ("status", "\(job.status.rawValue) (\(percent(job.progress)))"),
            ("source", job.source),
        ]
        if let destination = job.destination { rows.append(("destination", destination)) }
        rows.append(("trigger", job.trigger.rawValue))
        rows.append(("mode", job.mode.rawValue))
        if let info = job.info { rows.append(("info", info)) }
        if let input = job.input { rows.append(("input", JSONCodec.string(input))) }
        if let eta = job.estimatedCompletionAt { rows.append(("eta", eta.iso8601)) }
        if job.priority != 0 { rows.append(("priority", "\(job.priority)")) }
        rows.append(("attempt", "\(job.attempt) of \(job.maxAttempts)"))
        if let b = job.backoff {
            rows.append(("backoff", "\(b.type.rawValue), \(b.delaySeconds) s, at most \(b.maxDelaySeconds) s"))
        }
        if let timeout = job.timeoutSeconds { rows.append(("timeout", "\(timeout) s an attempt")) }
        if job.status == .scheduled, let runAt = job.runAt { rows.append(("run at", runAt.iso8601)) }
        if let lease = job.lease {
            let instance = lease.instanceId.map { " (instance \($0))" } ?? ""
            let timeout = lease.timesOutAt.map { ", times out at \($0.iso8601)" } ?? ""
            rows.append(("lease", "\(lease.owner)\(instance) until \(lease.expiresAt.iso8601)\(timeout)"))
        }
        if let parentId = job.parentId { rows.append(("part", "\(job.part ?? 0) of \(parentId)")) }
        if !job.predecessorIds.isEmpty { rows.append(("after", job.predecessorIds.joined(separator: ", "))) }
        if let outcome = job.outcome { rows.append(("outcome", describe(outcome))) }
        rows.append(("created", job.createdAt.iso8601))
        if let startedAt = job.startedAt { rows.append(("started", startedAt.iso8601)) }
        if let finishedAt = job.finishedAt { rows.append(("finished", finishedAt.iso8601)) }
        let width = rows.map(\.0.count).max() ?? 0
        return (["\(job.id)  \(job.name)"] + rows.map { "  \($0.0.padding(width))  \($0.1)" })
            .joined(separator: "\n")
    }

    /// `Heading: message → Download export (file:///…)`.
    static func describe(_ outcome: Outcome) -> String {
        var text = [outcome.heading, outcome.message].compactMap { $0 }.joined(separator: ": ")
        if let next = outcome.next.map(describe) { text += (text.isEmpty ? "" : " ") + "→ \(next)" }
        return text.isEmpty ? "(no message)" : text
    }

    /// Where an outcome sends the user.
    static func describe(_ next: OutcomeNext) -> String {
        func labelled(_ label: String?, _ target: String) -> String {
            guard let label, !label.isEmpty else { return target }
            return "\(label) (\(target))"
        }
        switch next {
        case .id(let id, let label, let path, _): return labelled(label, path.map { "\($0) \(id)" } ?? id)
        case .url(let url, let label): return labelled(label, url)
        case .download(let url, let label, let fileName): return labelled(label ?? fileName, url)
        case .files(let files, let label): return labelled(label, files.map(\.fileId).joined(separator: ", "))
        case .snapshot(let snapshotId, let sheetId, let label):
            return labelled(label, "snapshot \(snapshotId) of \(sheetId)")
        case .view(let sheetId, _, let label): return labelled(label, "view of \(sheetId)")
        case .retry(let label): return label ?? "retry"
        case .wait: return "wait"
        case .clearFilters(let label): return label ?? "clear filters"
        }
    }

    static func percent(_ progress: Double) -> String {
        progress == progress.rounded() ? "\(Int(progress))%" : "\((progress * 10).rounded() / 10)%"
    }

    static func action(_ action: Action) -> String {
        var line = "\(action.id)  \(action.domain):\(action.operation)  on \(action.resourceId)  \"\(action.label)\""
        if action.primary == true { line += "  primary" }
        return line
    }
}

extension String {
    /// Pads with spaces on the right to `width` characters.
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
