import ArgumentParser
import Foundation

@main
struct Jobwire: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobwire",
        abstract: "Durable jobs for event-driven workers, over ZeroMQ.",
        subcommands: [
            BrokerCommand.self, JobsCommand.self, ActionsCommand.self, EventsCommand.self, WatchCommand.self,
            DevCommand.self, DemoCommand.self, KeysCommand.self,
        ]
    )

    /// Parses and runs like ArgumentParser does, and prints a bad argument found while running as one line.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as UsageError {
            CLI.note("jobwire: \(error.description)")
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            exit(withError: error)
        }
    }
}
