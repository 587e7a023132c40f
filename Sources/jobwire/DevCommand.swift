import ArgumentParser
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dev")
}
