import ArgumentParser
import Foundation
import JobwireBroker

@main
struct Jobwire: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobwire",
        abstract: "Durable jobs for event-driven workers, over ZeroMQ.",
        version: JobwireVersion.current,
        subcommands: [
            BrokerCommand.self, JobsCommand.self, ActionsCommand.self, EventsCommand.self, WatchCommand.self,
            DevCommand.self, DemoCommand.self, KeysCommand.self,
        ]
    )

    /// Parses and runs like ArgumentParser does, and prints a bad argument found while running as one line.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let unknown = Suggestion.unknownSubcommand(arguments, of: Jobwire.self) {
            CLI.note("jobwire: \(unknown)")
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        do {
            var command = try parseAsRoot(arguments)
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

/// "Did you mean …?" for a mistyped subcommand, which ArgumentParser reports only as an unexpected argument.
enum Suggestion {
    /// The message for the first argument that should name a subcommand and names none, or nil when every
    /// such argument does (or is an option, which ArgumentParser handles).
    static func unknownSubcommand(_ arguments: [String], of root: any ParsableCommand.Type) -> String? {
        var command = root
        var path = [root._commandName]
        for argument in arguments {
            let subcommands = command.configuration.subcommands
            guard !subcommands.isEmpty, !argument.hasPrefix("-") else { return nil }
            let names = subcommands.map { $0._commandName } + ["help"]
            if argument == "help" { return nil }
            guard
                let next = subcommands.first(where: {
                    $0._commandName == argument || $0.configuration.aliases.contains(argument)
                })
            else {
                let nearest = names.map { (name: $0, distance: distance(argument, $0)) }.min {
                    $0.distance < $1.distance
                }
                let known = names.filter { $0 != "help" }.joined(separator: ", ")
                if let nearest, nearest.distance <= max(2, argument.count / 3) {
                    return
                        "'\(argument)' is not a \(path.joined(separator: " ")) command: did you mean '\(nearest.name)'?"
                        + " (commands: \(known))"
                }
                return "'\(argument)' is not a \(path.joined(separator: " ")) command; commands: \(known)"
            }
            command = next
            path.append(argument)
        }
        return nil
    }

    /// The Levenshtein distance: the fewest insertions, deletions and substitutions from `a` to `b`.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased())
        let b = Array(b.lowercased())
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
