import ExampleSupport
import Foundation
import Jobwire
import Logging

// One listener, two handlers: when a workbook export completes, it creates a custom job
// (`workbook:notify`, trigger immediate); a jobHandler then runs that job.

let options = ExampleOptions(defaultName: "custom-job")
options.bootstrapLogging()

let listener = Listener(
    name: options.name, commands: options.commands, events: options.events, configuration: options.configuration
) {
    on("job:completed", job: "workbook:export") { event in
        guard let exportId = event.jobId else { return }
        // The export's id as the idempotency key: a replayed event cannot create a second notification.
        let job = try await event.client.create(
            JobCreateRequest(
                type: "workbook", operation: "notify", source: exportId, trigger: .immediate,
                input: ["exportId": .string(exportId)], idempotencyKey: "notify-\(exportId)"))
        event.logger.info("created a notification job", metadata: ["job.id": "\(job.id)"])
    }
    jobHandler("workbook:notify") { event, tick in
        try await tick(50, "Sending the email")
        let exportId = event.input?["exportId"]?.stringValue ?? "?"
        return JobCompletion(outcome: Outcome(message: "Notified about \(exportId)"))
    }
}

try await options.run(listener)
