// Which store a command uses: the embedded SQLite file (default) or PostgreSQL, from one place.
import Foundation
import Logging
import PostgresStore
import Store

/// A store location as the user gives it: a SQLite file path, or a `postgres://` / `postgresql://` URL.
enum StoreLocation: Sendable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    init(_ text: String) {
        let lower = text.lowercased()
        if lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else if lower.hasPrefix("sqlite://") {
            self = .sqlite(path: String(text.dropFirst("sqlite://".count)))
        } else {
            self = .sqlite(path: text)
        }
    }

    /// Shown in output and errors: never a password.
    var description: String {
        switch self {
        case .sqlite(let path): return path
        case .postgres(let url): return PostgresStoreConfiguration.redact(url)
        }
    }

    /// The one function every store-using command (ingest, similar, search, stats, export, serve) opens its store
    /// with. PostgreSQL stores are migrated on open, as the SQLite file is.
    func open() async throws -> any VectorStore {
        switch self {
        case .sqlite(let path): return try SQLiteVectorStore(path: path)
        case .postgres(let url): return try await PostgresVectorStore.open(url: url, logger: Logger(label: "postersim.pg"))
        }
    }
}

/// `any VectorStore` for a location given as text (the `--store` / `POSTERSIM_STORE` / `--db` value).
func openStore(_ location: String) async throws -> any VectorStore {
    try await StoreLocation(location).open()
}
