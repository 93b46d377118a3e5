// Which store a command uses: the embedded SQLite file (default) or PostgreSQL, from one place.
import ArgumentParser
import Foundation
import Logging
import PostgresStore
import Store

/// A store location as the user gives it: a SQLite file path, or a `postgres://` / `postgresql://` URL.
public enum StoreLocation: Sendable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    public init(_ text: String) {
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
    public var description: String {
        switch self {
        case .sqlite(let path): return path
        case .postgres(let url): return PostgresStoreConfiguration.redact(url)
        }
    }

    /// The one function every store-using command (ingest, similar, search, stats, export, serve) opens its store
    /// with. PostgreSQL stores are migrated on open, as the SQLite file is. `indexFile` says how a SQLite store uses
    /// its index file (`<db>.index`): commands map it when current, the server also rewrites it when stale.
    public func open(indexFile: IndexFilePolicy = .mapIfCurrent) async throws -> any CatalogueStore {
        switch self {
        case .sqlite(let path): return try SQLiteVectorStore(path: path, indexFile: indexFile)
        case .postgres(let url): return try await PostgresVectorStore.open(url: url, logger: Logger(label: "postersim.pg"))
        }
    }
}

/// Which store: `--store` (a SQLite path or a `postgres://user:pass@host:port/db` URL), else `--db` (a SQLite file), else
/// the `POSTERSIM_STORE` environment variable, else `./postersim.sqlite`.
public struct StoreOptions: ParsableArguments {
    @Option(help: "The store: a SQLite file path or a postgres://user:password@host:port/database URL (default: $POSTERSIM_STORE, else ./postersim.sqlite).")
    public var store: String?

    @Option(help: "The store file (SQLite); --store takes precedence.")
    public var db: String?

    /// The location in effect.
    public var location: StoreLocation {
        if let store, !store.isEmpty { return StoreLocation(store) }
        if let db, !db.isEmpty { return .sqlite(path: db) }
        if let env = ProcessInfo.processInfo.environment["POSTERSIM_STORE"], !env.isEmpty { return StoreLocation(env) }
        return .sqlite(path: SQLiteVectorStore.defaultPath)
    }

    public init() {}

    public func open(indexFile: IndexFilePolicy = .mapIfCurrent) async throws -> any CatalogueStore {
        try await location.open(indexFile: indexFile)
    }

    /// After a command changed a SQLite store: writes its index file so the next open (`serve`) maps it instead of
    /// decoding every row. A failure is reported on standard error and does not fail the command (the file is only a
    /// faster way to open).
    public static func writeIndexFile(of store: any CatalogueStore) async {
        guard let sqlite = store as? SQLiteVectorStore else { return }
        do {
            try await sqlite.writeIndexFile()
        } catch {
            FileHandle.standardError.write(Data("warning: \(sqlite.indexFilePath) not written: \(error)\n".utf8))
        }
    }
}
