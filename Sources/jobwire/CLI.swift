import ArgumentParser
import Foundation
import Jobwire
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// What every client subcommand shares: output, errors and exit codes.
///
/// Exit codes: 0 success; 1 the broker refused the command (its message is printed: not found, invalid
/// transition, conflict, …), no broker answered, or a watched job ended failed or canceled; 64 a bad
/// argument (the message names it).
enum CLI {
    /// Client libraries log retries at debug level; the CLI says what matters itself.
    static let quietLogger: Logger = {
        var logger = Logger(label: "jobwire.cli", factory: { _ in SwiftLogNoOpLogHandler() })
        logger.logLevel = .critical
        return logger
    }()

    /// Writes one line to standard output at once, so a pipe sees it while the command still runs.
    static func emit(_ line: String) {
        print(line)
        fflush(nil)
    }

    /// Writes one line to standard error.
    static func note(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Prints a failure as one line starting with `jobwire:` and returns the exit code to throw.
    static func failure(_ error: any Error, commands: String, timeout: Double) -> any Error {
        switch error {
        case let error as ExitCode:
            return error
        case let error as ValidationError:
            return error
        case let error as UsageError:
            return error
        case let error as JobwireError where error.code == .brokerUnreachable:
            note(
                "jobwire: no broker answered at \(commands) within \(seconds(timeout)) — start one with `jobwire broker`"
                    + (commands == ClientOptions.defaultCommands ? "" : " --commands \(commands)"))
        case let error as JobwireError where error.code == .timeout:
            note("jobwire: the broker at \(commands) did not reply within \(seconds(timeout)) (\(error.message))")
        case let error as JobwireError:
            note("jobwire: \(error.message)")
        case let error as ProtocolError:
            note("jobwire: \(describe(error))")
        case let error as FieldError:
            note("jobwire: the broker sent an unexpected reply: \(error.message)")
        default:
            note("jobwire: \(error)")
        }
        return ExitCode(1)
    }

    static func describe(_ error: ProtocolError) -> String {
        if error.code == .invalidParams, let field = error.field, !error.message.contains(field) {
            return "\(error.message) (field \(field))"
        }
        return error.message
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    /// Parses a JSON option, naming the option when it is not JSON.
    static func json(_ text: String?, option: String) throws -> JSONValue? {
        guard let text else { return nil }
        do {
            return try JSONCodec.parse(text)
        } catch {
            throw UsageError("\(option) is not valid JSON: \(error)")
        }
    }

    /// Parses a JSON object option.
    static func jsonObject(_ text: String?, option: String) throws -> JSONObject? {
        guard let value = try json(text, option: option) else { return nil }
        guard let object = value.objectValue else { throw UsageError("\(option) must be a JSON object") }
        return object
    }

    /// Splits `workbook:export` at its first `:` into a type (domain) and an operation.
    static func jobName(_ name: String, argument: String = "<name>") throws -> (type: String, operation: String) {
        guard let colon = name.firstIndex(of: ":"), colon != name.startIndex, name.index(after: colon) != name.endIndex
        else {
            throw UsageError("\(argument) must be type:operation, e.g. workbook:export (got \"\(name)\")")
        }
        return (String(name[..<colon]), String(name[name.index(after: colon)...]))
    }

    /// A backoff as `TYPE[:DELAY[:MAX]]`: `exponential` or `fixed`, delays in seconds.
    static func backoff(_ text: String?) throws -> Backoff? {
        guard let text else { return nil }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let usage = UsageError(
            "--backoff must be exponential or fixed, then optionally :DELAY and :MAX seconds, e.g. exponential:2:600 (got \"\(text)\")"
        )
        guard (1...3).contains(parts.count), let type = Backoff.Kind(rawValue: parts[0]) else { throw usage }
        let numbers = parts.dropFirst().map { Int($0) }
        guard numbers.allSatisfy({ $0 != nil }) else { throw usage }
        return Backoff(
            type: type, delaySeconds: numbers.first.flatMap { $0 } ?? Backoff.defaultDelaySeconds,
            maxDelaySeconds: numbers.dropFirst().first.flatMap { $0 })
    }

    /// A time as ISO 8601, or `+SECONDS` from now.
    static func timestamp(_ text: String?, option: String) throws -> Timestamp? {
        guard let text else { return nil }
        if text.hasPrefix("+"), let seconds = Double(text.dropFirst()) {
            return Timestamp.now() + .milliseconds(Int64(seconds * 1000))
        }
        guard let timestamp = Timestamp(iso8601: text) else {
            throw UsageError("\(option) must be an ISO 8601 time (2026-11-29T02:00:00Z) or +SECONDS (got \"\(text)\")")
        }
        return timestamp
    }

    static func printJSON(_ value: JSONValue) {
        emit(JSONCodec.string(value))
    }
}

/// A bad argument found while running: printed as `jobwire: <message>`, exit 64 (EX_USAGE) like parse errors.
struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
