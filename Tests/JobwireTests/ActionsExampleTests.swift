import Foundation
import Jobwire
import JobwireTestSupport
import Testing

@Suite struct ActionsExampleTests {
    /// The action the `actions` example mounts, once it has.
    static func submitAction(_ client: JobsClient) async throws -> Action {
        var found: Action?
        try await eventually("workbook:submit to be mounted") {
            found = try await client.listActions(domain: "workbook", resourceId: "us_wb_1").first {
                $0.operation == "submit"
            }
            return found != nil
        }
        return found!
    }

    @Test(
        "the actions example mounts workbook:submit with its form once, and a click completes with the input",
        .timeLimit(.minutes(1)))
    func triggerCompletes() async throws {
        try await withBroker { broker in
            try await withListener("actions", broker: broker) { listener in
                let client = try JobsClient(commands: broker.commands)
                let action = try await Self.submitAction(client)
                #expect(action.label == "Submit")
                #expect(action.mode == .foreground)
                #expect(action.requiredInputKeys == ["email"])
                #expect(action.form?.fields.map(\.key) == ["email", "notes"])
                #expect(action.inputForm?["type"] == "simple")
                #expect(action.inputForm?["fields"]?.arrayValue?[0]["constraints"] == [["type": "required"]])

                // A second process finds the action mounted and does not mount another.
                try await withListener("actions", broker: broker, name: "actions-2") { second in
                    try await eventually("the second process to start") { second.log.contains("action mounted") }
                    #expect(second.log.contains(action.id))
                    #expect(try await client.listActions(domain: "workbook", resourceId: "us_wb_1").count == 1)

                    // The click, as the example's README runs it.
                    let click = try await ExampleCommand.run(
                        "actions", ["--trigger", "ada@example.com", "--notes", "Q3 numbers"], broker: broker)
                    #expect(click.status == 0, "\(click.output)")
                    #expect(click.output.contains("clicked “Submit”"))
                    #expect(
                        click.output.contains(
                            "complete: Submitted us_wb_1 for review; ada@example.com will hear back (notes: Q3 numbers)"
                        ),
                        "\(click.output)")
                    let job = try #require(
                        try await client.list(JobQuery(type: "workbook", operation: "submit")).data.first)
                    #expect(job.input == ["email": "ada@example.com", "notes": "Q3 numbers"])
                    #expect(job.mode == .foreground)
                    #expect(job.workbookId == "us_wb_1")
                    #expect(job.actorId == "us_usr_example")
                    #expect(try await client.endings() == [job.id: 1])
                    #expect(await listener.stop() == 0)
                }
            }
        }
    }

    @Test(
        "a click without the required email is rejected with -32602 naming input.email; a bad one fails",
        .timeLimit(.minutes(1)))
    func requiredInput() async throws {
        try await withBroker { broker in
            try await withListener("actions", broker: broker) { listener in
                let client = try JobsClient(commands: broker.commands)
                let action = try await Self.submitAction(client)

                let error = await #expect(throws: ProtocolError.self) {
                    try await client.triggerAction(action, input: ["notes": "no email"])
                }
                #expect(error?.code == .invalidParams)
                #expect(error?.code.rawValue == -32602)
                #expect(error?.field == "input.email")
                let nullEmail = await #expect(throws: ProtocolError.self) {
                    try await client.triggerAction(action, input: ["email": .null])
                }
                #expect(nullEmail?.field == "input.email")
                // A rejected click creates nothing.
                #expect(try await client.list(JobQuery(type: "workbook", operation: "submit")).totalCount == 0)

                // The CLI's click, as the README shows it, is rejected the same way.
                let cli = try await ExampleCommand.run(
                    "jobwire", ["actions", "trigger", "workbook:submit", "--resource", "us_wb_1", "--input", "{}"],
                    broker: broker)
                #expect(cli.status != 0)
                #expect(cli.output.contains("input.email"), "\(cli.output)")

                // The form's values reach the handler: one that is not an email fails the job.
                let bad = try await ExampleCommand.run("actions", ["--trigger", "nobody"], broker: broker)
                #expect(bad.status == 1, "\(bad.output)")
                #expect(bad.output.contains("failed: “nobody” is not an email address"), "\(bad.output)")

                let cliGood = try await ExampleCommand.run(
                    "jobwire",
                    [
                        "actions", "trigger", "workbook:submit", "--resource", "us_wb_1", "--input",
                        #"{"email":"bo@example.com"}"#,
                    ],
                    broker: broker)
                #expect(cliGood.status == 0, "\(cliGood.output)")
                var done: Job?
                try await eventually("the CLI's job to complete") {
                    done = try await client.list(JobQuery(status: .complete, operation: "submit")).data.first
                    return done != nil
                }
                #expect(done?.outcome?.message == "Submitted us_wb_1 for review; bo@example.com will hear back")
            }
        }
    }

    @Test("a trigger before the action is mounted says to start the listener", .timeLimit(.minutes(1)))
    func notMounted() async throws {
        try await withBroker { broker in
            let click = try await ExampleCommand.run("actions", ["--trigger", "ada@example.com"], broker: broker)
            #expect(click.status == 1)
            #expect(click.output.contains("no workbook:submit action on us_wb_1"), "\(click.output)")
        }
    }
}
