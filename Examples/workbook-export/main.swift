import ExampleSupport
import Foundation
import Jobwire
import Logging

// A Flatfile-style export listener: explicit ack, progress with an ETA, and an outcome whose next step is
// a download. Options: --commands / --events (or JOBWIRE_COMMANDS / JOBWIRE_EVENTS), --name.

let options = ExampleOptions(defaultName: "workbook-export")
options.bootstrapLogging()

let listener = Listener(
    name: options.name, commands: options.commands, events: options.events, configuration: options.configuration
) {
    on("job:ready", job: "workbook:export") { event in
        let steps = 4
        let stepTime = options.workTime / steps
        let eta = Timestamp.now() + options.workTime
        try await event.ack(progress: 0, info: "Starting the export", estimatedCompletionAt: eta)
        for step in 1..<steps {
            try await Task.sleep(for: stepTime)
            try await event.update(
                progress: Double(step * 100 / steps), info: "Exported \(step) of \(steps) sheets",
                estimatedCompletionAt: eta)
        }
        try await Task.sleep(for: stepTime)
        let workbook = event.context["workbookId"]?.stringValue ?? "workbook"
        try await event.complete(
            outcome: Outcome(
                message: "Exported \(workbook)", heading: "Export ready",
                next: .download(
                    url: "https://files.example.com/\(workbook).xlsx", label: "Download", fileName: "\(workbook).xlsx"))
        )
    }
}

try await options.run(listener)
