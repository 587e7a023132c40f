import ArgumentParser
import Foundation
import JobwireBroker
import ZeroMQ

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "CURVE keys for the broker and its clients.",
        subcommands: [Generate.self]
    )

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a CURVE key pair: NAME.key (secret, mode 600) and NAME.pub (public).",
            discussion: """
                Give the broker its secret key with --curve-secret-key broker.key and put each client's
                .pub file in the folder named by --authorized-keys.
                """)

        @Option(help: "The name of the key files.")
        var name = "jobwire"

        @Option(help: "The folder to write them to.")
        var output = "."

        @Flag(help: "Print the keys as JSON instead of writing files.")
        var json = false

        @Option(
            help: """
                The roles of this client key, written to NAME.pub as a `roles:` line: any of produce, work, \
                read, admin, comma-separated. Without it the key has every role.
                """)
        var roles: String?

        func validate() throws {
            if let roles {
                do {
                    guard !(try BrokerRole.parse(roles)).isEmpty else { throw ValidationError("--roles names no role") }
                } catch let error as RoleParseError {
                    throw ValidationError("--roles: \(error)")
                }
            }
        }

        func run() throws {
            let pair = try CurveKeyPair.generate()
            if json {
                print(#"{"publicKey":"\#(pair.publicKey)","secretKey":"\#(pair.secretKey)"}"#)
                return
            }
            let secretPath = "\(output)/\(name).key"
            let publicPath = "\(output)/\(name).pub"
            guard !FileManager.default.fileExists(atPath: secretPath) else {
                throw ValidationError("\(secretPath) exists already; choose another --name")
            }
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            try KeyFiles.writeSecret(pair.secretKey + "\n", to: secretPath)
            let rolesLine =
                try roles.map {
                    "roles: " + (try BrokerRole.parse($0)).sorted().map(\.rawValue).joined(separator: ",") + "\n"
                } ?? ""
            try Data((pair.publicKey + "\n" + rolesLine).utf8).write(to: URL(fileURLWithPath: publicPath))
            print("public key \(pair.publicKey)")
            print("wrote \(secretPath) (secret) and \(publicPath) (public)")
        }
    }
}

/// Reading CURVE keys from the command line: a key itself, or a file that holds one.
enum KeyFiles {
    static func readKey(_ keyOrPath: String) throws -> String {
        if FileManager.default.fileExists(atPath: keyOrPath) {
            guard let text = try? String(contentsOfFile: keyOrPath, encoding: .utf8),
                let key = firstKey(in: text)
            else { throw ValidationError("\(keyOrPath) holds no 40-character Z85 key") }
            return key
        }
        guard keyOrPath.count == 40 else {
            throw ValidationError("\(keyOrPath) is neither a key file nor a 40-character Z85 key")
        }
        return keyOrPath
    }

    /// The secret key of the broker or a client: `--curve-secret-key` (a key or a file), else
    /// `--curve-secret-key-file`, else `$JOBWIRE_CURVE_SECRET_KEY` (a key or a file); nil when none is given.
    static func secretKey(inline: String?, file: String?) throws -> String? {
        if let inline { return try readKey(inline) }
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("cannot read the secret key file \(file)")
            }
            guard let key = firstKey(in: text) else { throw ValidationError("\(file) holds no 40-character Z85 key") }
            return key
        }
        if let value = ProcessInfo.processInfo.environment["JOBWIRE_CURVE_SECRET_KEY"], !value.isEmpty {
            return try readKey(value)
        }
        return nil
    }

    /// Every public key in the `*.pub` files of a folder, with the roles of its `roles:` line if any.
    static func authorizedKeys(in folder: String) throws -> [(key: String, roles: Set<BrokerRole>?)] {
        try publicKeys(in: folder).map { name, key in
            let text = (try? String(contentsOfFile: "\(folder)/\(name)", encoding: .utf8)) ?? ""
            return (key, try roles(in: text, file: "\(folder)/\(name)"))
        }
    }

    /// The roles a `.pub` file's `roles: produce,read` line names; `nil` without such a line.
    static func roles(in text: String, file: String) throws -> Set<BrokerRole>? {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let line = lines.first(where: { $0.lowercased().hasPrefix("roles:") }) else { return nil }
        do {
            return try BrokerRole.parse(line.dropFirst("roles:".count))
        } catch {
            throw ValidationError("\(file): \(error)")
        }
    }

    /// Every public key in the `*.pub` files of a folder, with the file name.
    static func publicKeys(in folder: String) throws -> [(name: String, key: String)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw ValidationError("cannot read the folder \(folder)")
        }
        return try names.filter { $0.hasSuffix(".pub") }.sorted().map { name in
            (name, try readKey("\(folder)/\(name)"))
        }
    }

    /// Writes a secret key file that is never readable by others, not even for a moment: a temporary file
    /// created 0600 (O_EXCL: never one that exists), written and synced, then linked to `path` (which fails
    /// when `path` exists, so nothing is overwritten) and removed.
    static func writeSecret(_ text: String, to path: String) throws {
        let temporary = path + ".tmp-\(getpid())"
        func failure(_ what: String) -> ValidationError {
            ValidationError("cannot write \(path): \(what) \(String(cString: strerror(errno)))")
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("creating \(temporary):") }
        defer { unlink(temporary) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0 else { throw failure("writing:") }
        guard link(temporary, path) == 0 else { throw failure("") }
    }

    static func firstKey(in text: String) -> String? {
        text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.count == 40 && !$0.hasPrefix("#") && !$0.lowercased().hasPrefix("roles:") }
    }
}
