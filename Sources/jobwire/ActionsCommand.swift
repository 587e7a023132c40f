import ArgumentParser
import Jobwire

/// `jobwire actions …`: the buttons a user interface mounts on a resource, and the click that runs one.
struct ActionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actions",
        abstract: "Mount, list, unmount and trigger actions: the buttons of a user interface.",
        subcommands: [Mount.self, List.self, Unmount.self, Trigger.self])

    struct Mount: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mount an action on a resource (actions.mount).",
            discussion: "Example: jobwire actions mount workbook:export --resource us_wb_1 --label 'Export' --primary")
        @OptionGroup var common: JobsCommand.Common
        @Argument(help: "domain:operation, e.g. workbook:export: triggering it creates that job.") var name: String
        @Option(help: "The id of the resource the action is on, e.g. us_wb_1.") var resource: String
        @Option(help: "The button's text (default: the operation).") var label: String?
        @Option(help: "The mode of its jobs: foreground, background, toolbarBlocking or hidden.") var mode: JobMode?
        @Option(help: "A longer description.") var description: String?
        @Flag(help: "The resource's main action.") var primary = false
        @Flag(help: "Ask the user to confirm before it runs.") var confirm = false
        @Option(
            name: .customLong("input-form"),
            help: ArgumentHelp(
                "The input form, a JSON object: {\"type\":\"simple\",\"fields\":[…]}.", valueName: "json"))
        var inputForm: String?
        @Option(help: ArgumentHelp("Constraints, a JSON array.", valueName: "json")) var constraints: String?

        func run() async throws {
            let (domain, operation) = try CLI.jobName(name)
            var action: JSONObject = ["operation": .string(operation)]
            if let label { action["label"] = .string(label) }
            if let mode { action["mode"] = .string(mode.rawValue) }
            if let description { action["description"] = .string(description) }
            if primary { action["primary"] = true }
            if confirm { action["confirm"] = true }
            if let form = try CLI.jsonObject(inputForm, option: "--input-form") { action["inputForm"] = .object(form) }
            if let constraints = try CLI.json(constraints, option: "--constraints") {
                action["constraints"] = constraints
            }
            let mounted = try await common.client.withClient {
                try await $0.mountAction(domain: domain, resourceId: resource, action: action)
            }
            if common.json { CLI.printJSON(.object(mounted.json)) } else { CLI.emit(JobText.action(mounted)) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The actions mounted on a resource (actions.list).",
            discussion: "Example: jobwire actions list --domain workbook --resource us_wb_1")
        @OptionGroup var common: JobsCommand.Common
        @Option(help: "The resource's domain, e.g. workbook.") var domain: String
        @Option(help: "The resource's id, e.g. us_wb_1.") var resource: String

        func run() async throws {
            let actions = try await common.client.withClient {
                try await $0.listActions(domain: domain, resourceId: resource)
            }
            if common.json {
                CLI.printJSON(.array(actions.map { .object($0.json) }))
            } else if actions.isEmpty {
                CLI.note("no actions on \(domain) \(resource)")
            } else {
                for action in actions { CLI.emit(JobText.action(action)) }
            }
        }
    }

    struct Unmount: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an action (actions.unmount).")
        @OptionGroup var common: JobsCommand.Common
        @Argument(help: "The action's id (us_ac_…).") var id: String

        func run() async throws {
            try await common.client.withClient { try await $0.unmountAction(actionId: id) }
            if common.json { CLI.printJSON(["success": true]) } else { CLI.emit("unmounted \(id)") }
        }
    }

    struct Trigger: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Click an action's button: create its job (actions.trigger).",
            discussion: """
                Name the action by id, or by domain:operation and the resource it is mounted on:
                  jobwire actions trigger us_ac_4kq2x9
                  jobwire actions trigger workbook:export --resource us_wb_1 --input '{"format":"csv"}'
                """)
        @OptionGroup var common: JobsCommand.Common
        @Argument(help: "The action's id (us_ac_…), or domain:operation with --resource.") var action: String
        @Option(help: "The resource the action is mounted on (with domain:operation).") var resource: String?
        @Option(help: ArgumentHelp("The input the user filled in, a JSON value.", valueName: "json")) var input: String?
        @Option(help: "Who clicked: the actorId of the job's events.") var actor: String?

        func validate() throws {
            if resource == nil && !action.hasPrefix("us_ac_") && action.contains(":") {
                throw ValidationError("--resource is needed with \(action) (or give the action's id)")
            }
        }

        func run() async throws {
            let input = try CLI.json(input, option: "--input")
            let name = try resource.map { _ in try CLI.jobName(action, argument: "<action>") }
            let job = try await common.client.withClient { client in
                if let name, let resource {
                    return try await client.triggerAction(
                        domain: name.type, resourceId: resource, operation: name.operation, input: input, actorId: actor
                    )
                }
                return try await client.triggerAction(actionId: action, input: input, actorId: actor)
            }
            common.show(job)
        }
    }
}
