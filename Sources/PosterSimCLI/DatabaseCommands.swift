// `postersim db migrate` and `postersim export`: the PostgreSQL schema, and copying a store into another.
import CommandSupport
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

/// Copies one store into another: movies, then each space's current vectors, in batches, then the skip records.
/// Resumable: pairs the destination already holds under the same model identity are skipped, so an interrupted export
/// simply runs again.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Copy a store into another (SQLite -> PostgreSQL with --to, and back with --from). Resumable.",
        discussion: """
            postersim export --to postgres://user:pass@host/db      copies the store (--db / --store / POSTERSIM_STORE, \
            default ./postersim.sqlite) into PostgreSQL.
            postersim export --from postgres://user:pass@host/db    copies PostgreSQL into the store (--db, ...).
            Into PostgreSQL, vectors go in with COPY ... FROM STDIN (text format), one transaction per batch. \
            Skip records (posters an ingest could not use) are copied as they are, attempts and times included, \
            except those whose movie and model the destination already holds a vector for.
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
        let reader: StoreExport.Source
        switch source {
        case .sqlite(let path): reader = .sqlite(try SQLiteExportReader(path: path))
        case .postgres(let url): reader = .postgres(try await PostgresVectorStore.open(url: url))
        }
        let dest = try await destination.open()
        let started = ContinuousClock.now
        FileHandle.standardError.write(Data("export: \(source) -> \(destination)\n".utf8))
        _ = try await StoreExport(source: reader, destination: dest, batchSize: batch).run(progress: { line in
            FileHandle.standardError.write(Data("export: \(line)\n".utf8))
        })
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let stats = try await dest.stats()
        print("exported to \(destination) in \(String(format: "%.1f", seconds)) s: \(stats.movies) movies; "
            + stats.spaces.map { "\($0.space.name) \($0.vectors)" }.joined(separator: ", ")
            + "; \(stats.skips.records) skip records")
    }
}
