import Foundation
import Store

/// Where and how a `PostgresVectorStore` connects, and how it searches.
public struct PostgresStoreConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    /// The schema holding the store's tables (created by the migrations if missing). The `vector` extension itself is
    /// installed in `public`, so every schema of a database shares it.
    public var schema: String = "public"
    /// Connections the pool may open.
    public var maximumConnections: Int = 8
    public var connectTimeout: Duration = .seconds(5)
    /// `statement_timeout` for every statement, in milliseconds (0: none; URL option `statement_timeout=MS`). A
    /// statement cancelled by it throws `PostgresStoreError.statementTimeout`. The default, 30 s, is far above any
    /// statement the store sends (a batch write, an exact scan of a large space) and bounds what would otherwise wait
    /// for ever: a row lock held by a session that never ends, a server that stopped answering mid-statement.
    public var statementTimeoutMilliseconds: Int = PostgresStoreConfiguration.defaultStatementTimeoutMilliseconds
    public static let defaultStatementTimeoutMilliseconds = 30_000
    /// How long an operation keeps retrying while the server is unreachable or restarting (connection refused,
    /// connection closed, admin shutdown, "the database system is starting up"). Every store operation is safe to
    /// repeat (upserts by key; a retried delete counts only what its last attempt deleted).
    public var retryWindow: Duration = .seconds(30)
    /// Approximate (HNSW) search is used for an unfiltered query only when the space holds at least this many
    /// vectors (planner estimate); smaller spaces, and every filtered query, are scanned exactly.
    public var exactScanBelow: Int = 10_000
    /// Turns approximate search off altogether: every query is an exact scan.
    public var approximateSearch: Bool = true
    /// `hnsw.ef_search`: the HNSW candidate list size (pgvector's default is 40). Higher: better recall, slower.
    public var efSearch: Int = 100
    /// Candidates taken from the index before exact re-ranking, at least `k` (and, for binary-quantised spaces, the
    /// number of Hamming-nearest rows whose full vectors are compared).
    public var rerankCandidates: Int = 100
    /// How spaces over 4,000 dimensions (VGG16's 4,096) are searched: pgvector's HNSW indexes neither `vector`
    /// beyond 2,000 nor `halfvec` beyond 4,000 dimensions. See `LargeSpaceIndex`.
    public var largeSpaceIndex: LargeSpaceIndex = .exact
    /// Whether and how the connection is encrypted, with libpq's `sslmode` names and meanings.
    public var tls: TLSMode = .prefer
    /// PEM file of the certificate authorities to trust (libpq's `sslrootcert`); the system's when nil.
    public var rootCertificatePath: String?

    /// libpq's `sslmode` values (`allow` is not offered: it would try plain first, which `prefer` improves on).
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, plain otherwise; the certificate is not checked (libpq's default).
        case prefer
        /// TLS or no connection; the certificate is not checked unless `rootCertificatePath` is given, which
        /// makes it `verifyCA`, as in libpq.
        case require
        /// TLS with a certificate signed by a trusted authority, for any host name.
        case verifyCA = "verify-ca"
        /// TLS with a trusted certificate issued for the host connected to.
        case verifyFull = "verify-full"
    }

    public enum LargeSpaceIndex: String, Sendable {
        /// No index: exact scan (measured by `make bench-pg`; the default).
        case exact
        /// HNSW over `binary_quantize(embedding)::bit(dim)` (Hamming distance), candidates re-ranked exactly.
        case binaryQuantized
    }

    public init(host: String, port: Int = 5432, username: String, password: String?, database: String) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses `postgres://user:password@host:port/database?schema=NAME&ef_search=N&exact_below=N&statement_timeout=MS`
    /// `&sslmode=disable|prefer|require|verify-ca|verify-full&sslrootcert=FILE` (`postgresql://` too). Missing parts default to user `postgres`, host `localhost`, port 5432, database = user.
    public init(url: String) throws {
        guard let comps = URLComponents(string: url), let scheme = comps.scheme?.lowercased(),
            scheme == "postgres" || scheme == "postgresql"
        else { throw PostgresStoreError.invalidURL(Self.redact(url)) }
        let user = comps.user.flatMap { $0.removingPercentEncoding ?? $0 } ?? "postgres"
        var db = comps.path
        if db.hasPrefix("/") { db.removeFirst() }
        self.init(
            host: comps.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost", port: comps.port ?? 5432,
            username: user, password: comps.password.flatMap { $0.removingPercentEncoding ?? $0 },
            database: db.isEmpty ? user : (db.removingPercentEncoding ?? db))
        for item in comps.queryItems ?? [] {
            guard let value = item.value else { continue }
            switch item.name {
            case "schema": schema = value
            case "ef_search": efSearch = Int(value) ?? efSearch
            case "exact_below": exactScanBelow = Int(value) ?? exactScanBelow
            case "statement_timeout":
                guard let ms = Int(value), ms >= 0 else {
                    throw PostgresStoreError.invalidURL("statement_timeout '\(value)' is not a number of milliseconds")
                }
                statementTimeoutMilliseconds = ms
            case "rerank": rerankCandidates = Int(value) ?? rerankCandidates
            case "vgg_index", "large_index":
                largeSpaceIndex = LargeSpaceIndex(rawValue: value) ?? largeSpaceIndex
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    let names = TLSMode.allCases.map(\.rawValue).joined(separator: ", ")
                    throw PostgresStoreError.invalidURL("sslmode '\(value)' is not one of \(names)")
                }
                tls = mode
            case "sslrootcert": rootCertificatePath = value
            default: break
            }
        }
        guard Self.isPlainIdentifier(schema) else {
            throw PostgresStoreError.invalidURL("schema '\(schema)' must be lowercase letters, digits and _")
        }
    }

    /// The URL with the password replaced by `***`: what errors and logs show.
    public var redactedURL: String {
        let auth = password == nil ? username : "\(username):***"
        return "postgres://\(auth)@\(host):\(port)/\(database)" + (schema == "public" ? "" : "?schema=\(schema)")
    }

    /// `url` with any password replaced by `***`, also when the URL does not parse (a password with a space or an
    /// unescaped `@` is exactly what makes it unparsable): then everything between `scheme://` and the last `@`
    /// after the user name's first `:` is hidden, and so is a `password=` query value (libpq's spelling).
    public static func redact(_ url: String) -> String {
        if var comps = URLComponents(string: url) {
            if comps.password != nil { comps.password = "***" }
            if let items = comps.queryItems, items.contains(where: { $0.name == "password" }) {
                comps.queryItems = items.map { $0.name == "password" ? URLQueryItem(name: "password", value: "***") : $0 }
            }
            if let shown = comps.string { return shown }
        }
        var text = Substring(url)
        var out = ""
        if let scheme = text.range(of: "://") {
            out += text[..<scheme.upperBound]
            text = text[scheme.upperBound...]
        }
        // A host never holds '@', a password may: the credentials end at the last '@'.
        if let at = text.lastIndex(of: "@") {
            let credentials = text[..<at]
            let user = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            out += credentials.contains(":") ? "\(user):***" : String(credentials)
            text = text[at...]
        }
        out += text
        if let range = out.range(of: "password=") {
            let valueEnd = out[range.upperBound...].firstIndex(where: { $0 == "&" || $0 == "#" }) ?? out.endIndex
            out.replaceSubrange(range.upperBound..<valueEnd, with: "***")
        }
        return out
    }

    /// Lowercase letters, digits and `_`, not starting with a digit, at most 48 bytes: a name that can go into SQL
    /// without quoting (PostgreSQL's limit is 63, which leaves room for the `emb_` prefix and index suffixes).
    static func isPlainIdentifier(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 48
            && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
            && !(s.utf8.first! >= 0x30 && s.utf8.first! <= 0x39)
    }

    /// Whether `host` is this machine (a name or address on the loopback interface, or a Unix socket directory),
    /// where an unchecked certificate cannot be impersonated from the network.
    static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if h == "localhost" || h.hasSuffix(".localhost") || h == "::1" || h.hasPrefix("/") { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// What to warn about at start: with `prefer` (the default) or `require` without `sslrootcert`, the connection is
    /// encrypted but the server's certificate is not checked, so towards another machine anyone on the path can
    /// pose as the server. nil for loopback hosts and checked modes.
    public var tlsWarning: String? {
        let unchecked = tls == .prefer || (tls == .require && rootCertificatePath == nil)
        guard unchecked, !Self.isLoopback(host) else { return nil }
        return "sslmode=\(tls.rawValue) towards \(host): the server's TLS certificate is not checked (and with prefer "
            + "the connection may be unencrypted), so anyone on the network path can pose as the server; use "
            + "sslmode=verify-full (with sslrootcert=FILE for a private authority)"
    }
}

extension PostgresStoreConfiguration {
    /// A table name read back from the store's own schema (`vector_space.table_name`), checked before it goes into
    /// SQL text: only names of the shape the store itself creates pass (`emb_` then lowercase letters, digits and
    /// `_`, see `PostgresVectorStore.tableName(for:)`), which need no quoting and cannot carry SQL. Anything else
    /// means the schema was altered by someone else, and is `StoreError.corrupt`.
    static func checkedTableName(_ name: String, space: String) throws -> String {
        let ok = name.hasPrefix("emb_") && name.utf8.count <= 80
            && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
        guard ok else {
            throw StoreError.corrupt("space '\(space)' has table name '\(name)', which is not one the store makes")
        }
        return name
    }
}

/// Failures of the database server or the connection to it (the store's own contract errors are `StoreError`s).
public enum PostgresStoreError: ServerStoreError, Sendable, Equatable, CustomStringConvertible {
    /// Unreachable, a restart outlasting the retry window, or a statement timeout: worth retrying later.
    public var isTemporary: Bool {
        switch self {
        case .connectionFailed, .unavailable, .statementTimeout: return true
        case .invalidURL, .unsupportedServer, .server: return false
        }
    }

    case invalidURL(String)
    /// The server could not be reached or refused the login at start-up. `url` has no password.
    case connectionFailed(url: String, reason: String)
    /// The server stayed unreachable for the whole retry window during an operation.
    case unavailable(url: String, reason: String)
    /// A statement ran past `statement_timeout` and was cancelled by the server.
    case statementTimeout(milliseconds: Int)
    /// The server lacks something the store needs (pgvector).
    case unsupportedServer(String)
    /// Any other server error: SQLSTATE and message.
    case server(sqlState: String, message: String)

    public var description: String {
        switch self {
        case .invalidURL(let u): return "invalid PostgreSQL URL: \(u)"
        case .connectionFailed(let url, let why): return "cannot connect to \(url): \(why)"
        case .unavailable(let url, let why): return "PostgreSQL at \(url) stayed unavailable: \(why)"
        case .statementTimeout(let ms): return "statement cancelled by statement_timeout (\(ms) ms)"
        case .unsupportedServer(let why): return "unsupported PostgreSQL server: \(why)"
        case .server(let state, let message): return "PostgreSQL error \(state): \(message)"
        }
    }
}
