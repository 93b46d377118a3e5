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
    /// `statement_timeout` for every statement, in milliseconds (0: none). A statement cancelled by it throws
    /// `PostgresStoreError.statementTimeout`.
    public var statementTimeoutMilliseconds: Int = 0
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
            case "statement_timeout": statementTimeoutMilliseconds = Int(value) ?? statementTimeoutMilliseconds
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

    /// `url` with any password replaced by `***`.
    public static func redact(_ url: String) -> String {
        guard var comps = URLComponents(string: url), comps.password != nil else { return url }
        comps.password = "***"
        return comps.string ?? "postgres://(unparsable URL)"
    }

    static func isPlainIdentifier(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 48
            && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
            && !(s.utf8.first! >= 0x30 && s.utf8.first! <= 0x39)
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
