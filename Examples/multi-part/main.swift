import ExampleSupport
import Foundation
import Jobwire
import Logging

// A large export split into parts that several copies of this listener run in parallel (Flatfile's
// multi-part jobs). Parent and parts share the name `workbook:export`; `isPart` tells them apart:
// - the parent (`isPart: false`): ack, split into parts, and leave it executing;
// - a part (`isPart: true`): a jobHandler that exports one slice and completes it, one part at a time per
//   process, so the parts spread over the processes;
// - `job:parts-completed`: complete the parent with how its parts ended.
// `--parts N` (default 4) sets the number of parts; a job's input may set `parts`, `sequential: true` (one
// part at a time, in order), `workMs` (each part's work) and `failPart` (the index of a part that fails).

let options = ExampleOptions(
    defaultName: "multi-part-\(ProcessInfo.processInfo.processIdentifier)", extraOptions: ["--parts"])
options.bootstrapLogging()
let defaultParts = options.extra["--parts"].flatMap { Int($0) } ?? 4

struct PartError: Error, CustomStringConvertible {
    var description: String
}

/// The parent's outcome from how its parts ended.
func parentOutcome(_ parts: PartsSummary) -> Outcome {
    Outcome(parts: parts, heading: parts.allCompleted ? "Export ready" : "Export incomplete")
}

let listener = Listener(
    name: options.name, commands: options.commands, events: options.events, configuration: options.configuration
) {
    filter(isPart: false) {
        on("job:ready", job: "workbook:export") { event in
            // Every process sees the parent's job:ready; the first ack wins and the others get a conflict,
            // which the listener skips quietly.
            try await event.ack(progress: 10, info: "Splitting")
            let existing = try await event.partJobs()
            guard existing.isEmpty else {
                // A retry of a parent split before (its listener went away): never split twice.
                if existing.allSatisfy(\.status.isTerminal) {
                    let summary = PartsSummary(
                        total: existing.count, completed: existing.count { $0.status == .complete },
                        failed: existing.count { $0.status == .failed },
                        canceled: existing.count { $0.status == .canceled })
                    try await event.complete(outcome: parentOutcome(summary), info: summary.description)
                }
                return
            }
            let count = event.input?["parts"]?.intValue.map(Int.init) ?? defaultParts
            let sequential = event.input?["sequential"]?.boolValue ?? false
            let parts = try await event.split(parts: count, runInParallel: !sequential)
            try await event.update(progress: 20, info: "Split into \(parts.count) parts")
            event.logger.info("split the export", metadata: ["parts": "\(parts.count)", "sequential": "\(sequential)"])
            // The parent stays executing (the broker keeps its lease) until job:parts-completed.
        }

        on("job:parts-completed", job: "workbook:export") { event in
            guard let parts = event.parts else { return }
            // Every process sees this event, but only the parent's lease owner may complete it: the others
            // are refused (held by another, or complete already) and leave it be.
            do {
                try await event.complete(outcome: parentOutcome(parts), info: parts.description)
            } catch ProtocolError.Code.conflict {
                return
            } catch ProtocolError.Code.invalidTransition {
                return
            }
            event.logger.info("completed the export", metadata: ["parts": "\(parts)"])
        }
    }

    jobHandler("workbook:export", isPart: true, concurrency: 1) { event, tick in
        let job = try await event.job()
        let part = Int(job.partData?["part"]?.intValue ?? Int64(job.part ?? 0))
        let total = Int(job.partData?["total"]?.intValue ?? 0)
        let workTime = event.input?["workMs"]?.intValue.map { Duration.milliseconds($0) } ?? options.workTime
        try await tick(0, "Exporting part \(part + 1) of \(total)")
        try await Task.sleep(for: workTime / 2)
        try await tick(50, "Half of part \(part + 1)")
        try await Task.sleep(for: workTime / 2)
        if event.input?["failPart"]?.intValue == Int64(part) {
            throw PartError(description: "part \(part + 1) of \(total) failed in \(options.name)")
        }
        return JobCompletion(
            outcome: Outcome(message: "Exported part \(part + 1) of \(total) in \(options.name)"),
            info: "Exported part \(part + 1) of \(total)")
    }
}

try await options.run(listener)
