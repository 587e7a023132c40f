import ArgumentParser

@main
struct Jobwire: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobwire",
        abstract: "Durable jobs for event-driven workers, over ZeroMQ.",
        subcommands: [BrokerCommand.self, KeysCommand.self]
    )
}
