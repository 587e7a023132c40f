import ExampleSupport
import Foundation
import Jobwire
import Logging

// A "Submit" button with an input form: the listener mounts `workbook:submit` on a workbook (unless it is
// mounted already: actions survive broker restarts), then runs the jobs its clicks create, reading what the
// user filled in from the job's input. `--trigger EMAIL [--notes TEXT]` is the click: it triggers the action
// and prints the job's outcome, exiting 0 when the job completed.

let options = ExampleOptions(defaultName: "actions", extraOptions: ["--trigger", "--notes", "--resource"])
options.bootstrapLogging()
let workbook = options.extra["--resource"] ?? "us_wb_1"

let submit = ActionDefinition(
    operation: "submit", label: "Submit", mode: .foreground,
    description: "Submit this workbook for review?", primary: true, confirm: true,
    inputForm: InputForm(fields: [
        InputField(
            key: "email", label: "Email", type: .string, description: "Who hears about the review", required: true),
        InputField(key: "notes", label: "Notes", type: .textarea),
    ]))

struct SubmitError: Error, CustomStringConvertible {
    var description: String
}

if let email = options.extra["--trigger"] {
    // The click: what a user interface does when the user fills in the form and presses the button.
    let client = try JobsClient(commands: options.commands)
    var input: JSONObject = ["email": .string(email)]
    if let notes = options.extra["--notes"] { input["notes"] = .string(notes) }
    let job: Job
    do {
        job = try await client.triggerAction(
            domain: "workbook", resourceId: workbook, operation: submit.operation, input: .object(input),
            actorId: "us_usr_example")
    } catch let error as ProtocolError where error.code == .notFound {
        print("no workbook:submit action on \(workbook): start the listener first (`swift run actions`)")
        exit(1)
    }
    print("clicked “\(submit.label)”: job \(job.id) (\(job.name)) is \(job.status.rawValue)")
    let ended = try await client.waitUntilEnded(jobId: job.id, timeout: .seconds(30))
    print("\(job.id) \(ended.status.rawValue): \(ended.outcome?.message ?? "no outcome")")
    await client.close()
    exit(ended.status == .complete ? 0 : 1)
}

let logger = Logger(label: "actions")
let client = try JobsClient(commands: options.commands)
let action = try await client.ensureAction(domain: "workbook", resourceId: workbook, submit)
logger.info(
    "action mounted",
    metadata: ["action.id": "\(action.id)", "job.name": "workbook:\(action.operation)", "resource.id": "\(workbook)"])
await client.close()

let listener = Listener(
    name: options.name, commands: options.commands, events: options.events, configuration: options.configuration
) {
    jobHandler("workbook:submit") { event, tick in
        // The input form's values, as the user filled them in.
        let email = event.input?["email"]?.stringValue ?? ""
        let notes = event.input?["notes"]?.stringValue
        guard email.contains("@") else { throw SubmitError(description: "“\(email)” is not an email address") }
        try await tick(50, "Submitting for \(email)")
        try await Task.sleep(for: options.workTime)
        let resource = event.context["workbookId"]?.stringValue ?? workbook
        var message = "Submitted \(resource) for review; \(email) will hear back"
        if let notes, !notes.isEmpty { message += " (notes: \(notes))" }
        return JobCompletion(outcome: Outcome(message: message, heading: "Submitted"))
    }
}

try await options.run(listener)
