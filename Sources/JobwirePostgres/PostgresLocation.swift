import Foundation

/// Where a PostgreSQL store is: `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?schema=NAME&sslmode=MODE]`.
///
/// The password comes from the URL, else `PGPASSWORD`, else the `.pgpass` file (`PGPASSFILE`, or
/// `~/.pgpass`), as libpq finds it. `schema` (default `jobwire`) holds the broker's tables, so that
/// several stores can share one database. `sslmode` is `disable`, `prefer` (the default: TLS when the
/// server offers it) or `require`.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var schema: String
    public var tls: TLSMode

    /// Whether the connection uses TLS.
    public enum TLSMode: String, Sendable {
        case disable, prefer, require
    }

    /// The location without its password, for logs.
    public var description: String {
        "postgresql://\(user)@\(host):\(port)/\(database)?schema=\(schema)"
    }

    /// Whether `text` names a PostgreSQL store rather than a folder.
    public static func isURL(_ text: String) -> Bool {
        text.hasPrefix("postgresql://") || text.hasPrefix("postgres://")
    }

    /// Reads a URL.
    /// - Parameter environment: where `PGPASSWORD`, `PGPASSFILE`, `PGUSER` and `HOME` come from; the
    ///   process's environment when nil.
    /// - Throws: ``PostgresLocationError`` naming what is wrong.
    public init(url: String, environment: [String: String]? = nil) throws {
        let environment = environment ?? ProcessInfo.processInfo.environment
        guard Self.isURL(url), let components = URLComponents(string: url) else {
            throw PostgresLocationError("not a PostgreSQL URL: expected postgresql://USER@HOST:PORT/DATABASE")
        }
        guard let host = components.host, !host.isEmpty else {
            throw PostgresLocationError("the PostgreSQL URL names no host: postgresql://USER@HOST:PORT/DATABASE")
        }
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        port = components.port ?? 5432
        guard (1...65_535).contains(port) else { throw PostgresLocationError("port \(port) is out of range") }
        user = components.user.flatMap { $0.removingPercentEncoding } ?? environment["PGUSER"] ?? "postgres"
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.removingPercentEncoding ?? path
        if database.isEmpty { database = user }
        schema = "jobwire"
        tls = .prefer
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "schema":
                guard Self.isIdentifier(value) else {
                    throw PostgresLocationError(
                        "schema \(value.debugDescription) must be 1 to 63 lowercase letters, digits or _, not starting "
                            + "with a digit")
                }
                schema = value
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    throw PostgresLocationError("sslmode \(value.debugDescription) is not disable, prefer or require")
                }
                tls = mode
            default:
                throw PostgresLocationError("unknown URL parameter \(item.name.debugDescription): schema or sslmode")
            }
        }
        password =
            components.password.flatMap { $0.removingPercentEncoding } ?? environment["PGPASSWORD"]
            ?? Self.passwordFile(environment).flatMap {
                Self.password(inPassFile: $0, host: self.host, port: port, database: database, user: user)
            }
    }

    static func isIdentifier(_ text: String) -> Bool {
        guard let first = text.utf8.first, (1...63).contains(text.utf8.count), !(48...57).contains(first) else {
            return false
        }
        return text.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 95 }
    }

    private static func passwordFile(_ environment: [String: String]) -> String? {
        if let file = environment["PGPASSFILE"] { return file }
        return environment["HOME"].map { $0 + "/.pgpass" }
    }

    /// The password of the first matching line of a `.pgpass` file (`host:port:database:user:password`,
    /// `*` matching anything, `\:` and `\\` escaped), as libpq reads it.
    static func password(inPassFile path: String, host: String, port: Int, database: String, user: String)
        -> String?
    {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            var fields: [String] = []
            var field = ""
            var escaped = false
            for character in line {
                if escaped {
                    field.append(character)
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == ":" && fields.count < 4 {
                    fields.append(field)
                    field = ""
                } else {
                    field.append(character)
                }
            }
            fields.append(field)
            guard fields.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }
}

/// A PostgreSQL URL that cannot be used.
public struct PostgresLocationError: Error, Sendable, CustomStringConvertible {
    public var description: String

    init(_ description: String) { self.description = description }
}
