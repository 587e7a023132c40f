import ExampleSupport
import Foundation
import Jobwire
import Logging

// The workbook export as a jobHandler: it claims each job, renews its lease, reports progress with tick,
// completes with what it returns and fails with what it throws. A job's input may set `workMs` (how long
// it works) and `fail` (a message to throw), which the tests use.

struct ExportError: Error, CustomStringConvertible {
    var description: String
}

let options = ExampleOptions(defaultName: "job-handler")
options.bootstrapLogging()

let listener = Listener(
    name: options.name, commands: options.commands, events: options.events, configuration: options.configuration
) {
    jobHandler("workbook:export") { event, tick in
        let workTime = event.input?["workMs"]?.intValue.map { Duration.milliseconds($0) } ?? options.workTime
        let steps = 4
        for step in 1...steps {
            try await Task.sleep(for: workTime / steps)
            try await tick(
                Double(step * 100 / steps - 1), "Exported \(step) of \(steps) sheets",
                estimatedCompletionAt: .now() + workTime / steps * (steps - step))
        }
        if let message = event.input?["fail"]?.stringValue { throw ExportError(description: message) }
        let workbook = event.context["workbookId"]?.stringValue ?? "workbook"
        return JobCompletion(
            outcome: Outcome(
                message: "Exported \(workbook) by \(options.name)", heading: "Export ready",
                next: .download(
                    url: "https://files.example.com/\(workbook).xlsx", label: "Download", fileName: "\(workbook).xlsx"))
        )
    }
}

try await options.run(listener)
