import JobwireTestSupport
import Testing

@testable import Jobwire

@Suite struct PartFilterTests {
    static func event(_ topic: String, isPart: Bool, parts: JSONObject? = nil) -> Event {
        var payload: JSONObject = [
            "job": "workbook:export", "domain": "workbook", "operation": "export", "status": "ready",
            "isPart": .bool(isPart),
        ]
        if let parts { payload["parts"] = .object(parts) }
        return Event(
            id: "us_evt_1", seq: 1, epoch: "e", topic: topic, domain: "job", context: ["jobId": "us_jb_1"],
            payload: payload, createdAt: .now())
    }

    @Test("filter(isPart:) and jobHandler(_:isPart:) route parents and parts to their own handlers")
    func routing() async throws {
        let listener = Listener(name: "parts") {
            filter(isPart: false) {
                on("job:ready", job: "workbook:export") { _ in }
                on("job:parts-completed", job: "workbook:export") { _ in }
            }
            jobHandler("workbook:export", isPart: true) { _, _ in nil }
        }
        // A part handler needs the event's isPart, so it takes jobs from job:ready events, not by claim.
        #expect(listener.claimWorkers.isEmpty)
        #expect(listener.routes.count == 3)
        let parentRoutes = listener.routes.indices.filter {
            listener.routes[$0].matches(Self.event("job:ready", isPart: false))
        }
        let partRoutes = listener.routes.indices.filter {
            listener.routes[$0].matches(Self.event("job:ready", isPart: true))
        }
        #expect(parentRoutes == [0])
        #expect(partRoutes == [2])
        #expect(
            listener.routes.indices.filter {
                listener.routes[$0].matches(Self.event("job:parts-completed", isPart: false))
            }
                == [1])
        // A missing isPart is not false: Flatfile's filters compare strictly.
        var unknown = Self.event("job:ready", isPart: false)
        unknown.payload["isPart"] = nil
        #expect(!listener.routes[0].matches(unknown))
    }

    @Test("an event's parts summary, and the outcome made from it")
    func partsSummary() throws {
        let client = try JobsClient(commands: "inproc://nobody")
        let event = ListenerEvent(
            event: Self.event(
                "job:parts-completed", isPart: false, parts: ["total": 4, "completed": 3, "failed": 1, "canceled": 0]),
            isReplay: false, client: client, runtime: nil)
        #expect(!event.isPart)
        #expect(event.parts == PartsSummary(total: 4, completed: 3, failed: 1))
        #expect(event.parts?.description == "3 of 4 parts completed, 1 failed")
        #expect(
            Outcome(parts: PartsSummary(total: 4, completed: 3, failed: 1))
                == Outcome(
                    message: "3 of 4 parts completed, 1 failed", heading: "Some parts did not complete",
                    acknowledge: true))
        #expect(
            Outcome(parts: PartsSummary(total: 2, completed: 2))
                == Outcome(message: "2 of 2 parts completed", heading: "Complete"))
        #expect(PartsSummary(json: nil) == nil)
    }

    @Test("ActionDefinition writes Flatfile's action and input form shape")
    func actionDefinition() {
        let definition = ActionDefinition(
            operation: "submit", label: "Submit", mode: .foreground, primary: true,
            inputForm: InputForm(fields: [
                InputField(key: "email", label: "Email", required: true),
                InputField(
                    key: "format", label: "Format", type: .enum,
                    options: [.init(value: "csv", label: "CSV"), .init(value: "xlsx")]),
            ]),
            constraints: [.hasAllValid])
        let expected: JSONObject = [
            "operation": "submit", "label": "Submit", "mode": "foreground", "primary": true,
            "inputForm": [
                "type": "simple",
                "fields": [
                    ["key": "email", "label": "Email", "type": "string", "constraints": [["type": "required"]]],
                    [
                        "key": "format", "label": "Format", "type": "enum",
                        "config": ["options": [["value": "csv", "label": "CSV"], ["value": "xlsx"]]],
                    ],
                ],
            ],
            "constraints": [["type": "hasAllValid"]],
        ]
        #expect(definition.json == expected)
        // The broker's reading of the form agrees on what is required, and the form reads back.
        let action = try? Action(
            json: .object(definition.json), id: "us_ac_1", domain: "workbook", resourceId: "us_wb_1")
        #expect(action?.requiredInputKeys == ["email"])
        #expect(action?.form == definition.inputForm)
    }
}
