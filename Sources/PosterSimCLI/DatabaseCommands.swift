// `postersim db migrate` and `postersim export`: the PostgreSQL schema, and copying a store into another.
import ArgumentParser
import Foundation
import Logging
import PostgresStore
import Store

struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db", abstract: "PostgreSQL store administration.", subcommands: [Migrate.self])

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or upgrade the PostgreSQL schema (pgvector extension, tables; versioned in schema_migrations).")

        @OptionGroup var store: StoreOptions

        func run() async throws {
            guard case .postgres(let url) = store.location else {
                throw ValidationError("db migrate needs a PostgreSQL store: --store postgres://… or POSTERSIM_STORE")
            }
            let config = try PostgresStoreConfiguration(url: url)
            let (applied, version) = try await PostgresMigrations.run(
                configuration: config, logger: Logger(label: "postersim.pg"))
            for m in applied { print("applied \(m.version): \(m.name)") }
            print("\(config.redactedURL): schema '\(config.schema)' at version \(version)"
                + (applied.isEmpty ? " (already up to date)" : ""))
        }
    }
}

/// Copies one store into another: movies, then each space's current vectors, in batches. Resumable: pairs the
/// destination already holds under the same model identity are skipped, so an interrupted export simply runs again.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Copy a store into another (SQLite -> PostgreSQL with --to, and back with --from). Resumable.",
        discussion: """
            postersim export --to postgres://user:pass@host/db      copies the store (--db / --store / POSTERSIM_STORE, \
            default ./postersim.sqlite) into PostgreSQL.
            postersim export --from postgres://user:pass@host/db    copies PostgreSQL into the store (--db, ...).
            Into PostgreSQL, vectors go in with COPY ... FROM STDIN (text format), one transaction per batch.
            """)

    @OptionGroup var store: StoreOptions
    @Option(help: "Where to copy to (a SQLite path or postgres:// URL); default: the store options' location.")
    var to: String?
    @Option(help: "Where to copy from (a SQLite path or postgres:// URL); default: the store options' location.")
    var from: String?
    @Option(help: "Movies (and vectors) per batch.")
    var batch = 1000

    func validate() throws {
        guard to != nil || from != nil else { throw ValidationError("give --to or --from") }
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
    }

    func run() async throws {
        let source = from.map(StoreLocation.init) ?? store.location
        let destination = to.map(StoreLocation.init) ?? store.location
        guard source.description != destination.description else {
            throw ValidationError("source and destination are the same store (\(source))")
        }
        let reader = try await ExportSource.open(source)
        let dest = try await destination.open()
        let started = ContinuousClock.now
        FileHandle.standardError.write(Data("export: \(source) -> \(destination)\n".utf8))

        // Movies first (vectors reference them), page by page in id order. Upserts make a rerun harmless.
        var after = -1
        var movies = 0
        while true {
            let page = try await reader.movies(after: after, limit: batch)
            guard let lastID = page.last?.id else { break }
            try await dest.upsertMovies(page)
            movies += page.count
            after = lastID
        }
        FileHandle.standardError.write(Data("export: \(movies) movies\n".utf8))

        for (space, identity) in try await reader.spaces() {
            try await dest.registerSpace(space, identity: identity)
            // Keep a batch's payload near 16 MB whatever the dimension.
            let perBatch = max(50, min(batch, 4_000_000 / space.dimension))
            var after = -1
            var copied = 0
            var skipped = 0
            while true {
                let page = try await reader.embeddings(space: space, identity: identity, after: after, limit: perBatch)
                guard let lastID = page.last?.movieID else { break }
                let done = try await dest.completedPairs(movieIDs: page.map(\.movieID), spaces: [space.name])
                let todo = page.filter { !done.contains(EmbeddingKey(movieID: $0.movieID, space: space.name)) }
                if let pg = dest as? PostgresVectorStore {
                    try await pg.copyEmbeddings(todo, space: space.name, identity: identity)
                } else {
                    try await dest.upsertEmbeddings(todo, space: space.name, identity: identity)
                }
                copied += todo.count
                skipped += page.count - todo.count
                after = lastID
            }
            FileHandle.standardError.write(
                Data("export: \(space.name): \(copied) vectors copied, \(skipped) already there\n".utf8))
        }
        let seconds = Double((ContinuousClock.now - started).components.seconds)
            + Double((ContinuousClock.now - started).components.attoseconds) / 1e18
        let stats = try await dest.stats()
        print("exported to \(destination) in \(String(format: "%.1f", seconds)) s: \(stats.movies) movies; "
            + stats.spaces.map { "\($0.space.name) \($0.vectors)" }.joined(separator: ", "))
    }
}

/// Paged reads of a store being exported, whichever kind it is.
enum ExportSource: Sendable {
    case sqlite(SQLiteExportReader)
    case postgres(PostgresVectorStore)

    static func open(_ location: StoreLocation) async throws -> ExportSource {
        switch location {
        case .sqlite(let path): return .sqlite(try SQLiteExportReader(path: path))
        case .postgres(let url): return .postgres(try await PostgresVectorStore.open(url: url))
        }
    }

    func movies(after: MovieID, limit: Int) async throws -> [Movie] {
        switch self {
        case .sqlite(let r): return try r.movies(after: after, limit: limit)
        case .postgres(let s): return try await s.movies(after: after, limit: limit)
        }
    }

    func spaces() async throws -> [(VectorSpace, ModelIdentity)] {
        switch self {
        case .sqlite(let r): return try r.spacesWithIdentity()
        case .postgres(let s): return try await s.spacesWithIdentity()
        }
    }

    func embeddings(space: VectorSpace, identity: ModelIdentity, after: MovieID, limit: Int) async throws
        -> [EmbeddingInput]
    {
        switch self {
        case .sqlite(let r): return try r.currentEmbeddings(space: space, identity: identity, after: after, limit: limit)
        case .postgres(let s): return try await s.currentEmbeddings(space: space.name, after: after, limit: limit)
        }
    }
}
