import ArgumentParser
import Foundation
import Jobwire
import ZeroMQ

/// Where the broker is and how long to wait for it: the options every client subcommand shares.
struct ClientOptions: ParsableArguments {
    static let defaultCommands = Endpoints.defaultCommands
    static let defaultEvents = Endpoints.defaultEvents

    @Option(
        name: .customLong("commands"),
        help: ArgumentHelp(
            "The broker's commands endpoint, or a comma-separated list of brokers to follow the active one of "
                + "(default: $JOBWIRE_COMMANDS, else \(ClientOptions.defaultCommands)).",
            valueName: "endpoint"))
    var commandsOption: String?

    @Option(
        name: .customLong("events"),
        help: ArgumentHelp(
            "The broker's events endpoint, or a comma-separated list as for --commands "
                + "(default: $JOBWIRE_EVENTS, else \(ClientOptions.defaultEvents)).",
            valueName: "endpoint"))
    var eventsOption: String?

    @Option(name: .customLong("timeout"), help: "Seconds to wait for each reply of the broker.")
    var timeout: Double = 3

    @Option(
        name: .customLong("curve-server-key"), parsing: .unconditional,
        help: ArgumentHelp("With CURVE: the broker's public key (Z85), or a file holding it.", valueName: "key-or-file")
    )
    var curveServerKey: String?

    @Option(
        name: .customLong("curve-secret-key"), parsing: .unconditional,
        help: ArgumentHelp(
            "With CURVE: this client's secret key (Z85), or a file holding it (jobwire keys generate).",
            valueName: "key-or-file"))
    var curveSecretKey: String?

    @Option(
        name: .customLong("curve-secret-key-file"),
        help: ArgumentHelp(
            "With CURVE: the file of this client's secret key; also $JOBWIRE_CURVE_SECRET_KEY (an inline key shows in ps).",
            valueName: "path"))
    var curveSecretKeyFile: String?

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be more than 0 seconds") }
        for (option, value) in [("--commands", commandsOption), ("--events", eventsOption)] {
            guard let value else { continue }
            do {
                _ = try Endpoints.list(value)
            } catch {
                throw ValidationError("\(option): \(error)")
            }
        }
        if curveSecretKey != nil && curveSecretKeyFile != nil {
            throw ValidationError("give --curve-secret-key or --curve-secret-key-file, not both")
        }
        if curveServerKey == nil && (curveSecretKey != nil || curveSecretKeyFile != nil) {
            throw ValidationError("--curve-secret-key needs --curve-server-key")
        }
        if curveServerKey != nil, try KeyFiles.secretKey(inline: curveSecretKey, file: curveSecretKeyFile) == nil {
            throw ValidationError(
                "--curve-server-key needs --curve-secret-key, --curve-secret-key-file or JOBWIRE_CURVE_SECRET_KEY")
        }
    }

    var commands: String {
        commandsOption ?? Endpoints.fromEnvironment().commands
    }

    var events: String {
        eventsOption ?? Endpoints.fromEnvironment().events
    }

    var curve: JobsClient.CurveConfiguration? {
        get throws {
            guard let curveServerKey,
                let secret = try KeyFiles.secretKey(inline: curveSecretKey, file: curveSecretKeyFile)
            else { return nil }
            let pair: String
            do {
                pair = try CurveKeyPair.publicKey(forSecret: secret)
            } catch {
                throw UsageError("--curve-secret-key is not a 40-character Z85 secret key")
            }
            return .init(serverPublicKey: try KeyFiles.readKey(curveServerKey), publicKey: pair, secretKey: secret)
        }
    }

    /// A client that fails fast: one attempt, a short timeout, so a missing broker never hangs the CLI.
    func makeClient(listenerId: String? = nil) throws -> JobsClient {
        let configuration = JobsClient.Configuration(
            // No instanceId: one lease is acked, completed or released by separate CLI runs.
            requestTimeout: .milliseconds(Int64(timeout * 1000)), listenerId: listenerId, instanceId: nil, attempts: 1,
            curve: try curve)
        do {
            return try JobsClient(commands: commands, configuration: configuration, logger: CLI.quietLogger)
        } catch let error as EndpointError {
            throw UsageError("\(commandsOption == nil ? "JOBWIRE_COMMANDS" : "--commands"): \(error)")
        } catch {
            throw UsageError("--commands \(commands) is not an endpoint ZeroMQ accepts (\(error))")
        }
    }

    /// Runs `body` with a client and turns what goes wrong into one line on standard error and an exit code.
    func withClient<T>(listenerId: String? = nil, _ body: (JobsClient) async throws -> T) async throws -> T {
        let client = try makeClient(listenerId: listenerId)
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch {
            await client.close()
            throw CLI.failure(error, commands: commands, timeout: timeout)
        }
    }
}
