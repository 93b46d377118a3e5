// The catalogue's records in the SQLite file (migration "v5: catalogue sources and sync state").
import Foundation
import GRDB
import PosterSimCore

extension SQLiteVectorStore: CatalogueStore {
    /// Times are Unix seconds, as in `poster_skip`. One row of `catalogue_state`; a movie's sightings go with it.
    static let catalogueSchema = """
        CREATE TABLE catalogue_state (
            id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
            language TEXT,
            sync_watermark REAL
        );
        INSERT INTO catalogue_state (id) VALUES (1);
        CREATE TABLE catalogue_source (
            key TEXT PRIMARY KEY NOT NULL,
            spec TEXT NOT NULL
        );
        CREATE TABLE movie_sighting (
            movie_id INTEGER NOT NULL REFERENCES movie(id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            first_seen_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            PRIMARY KEY (movie_id, source)
        );
        """

    public func catalogueState() async throws -> CatalogueState {
        try await read { db in try Self.catalogueState(db) }
    }

    static func catalogueState(_ db: Database) throws -> CatalogueState {
        let row = try Row.fetchOne(db, sql: "SELECT language, sync_watermark FROM catalogue_state WHERE id = 1")
        let sources = try Row.fetchAll(db, sql: "SELECT key, spec FROM catalogue_source ORDER BY key").map {
            CatalogueSourceRecord(key: $0["key"], spec: $0["spec"])
        }
        let watermark: Double? = row?["sync_watermark"]
        return CatalogueState(
            language: row?["language"], sources: sources, syncWatermark: watermark.map(Date.init(timeIntervalSince1970:)))
    }

    @discardableResult
    public func adoptCatalogue(language: String, sources: [CatalogueSourceRecord]) async throws -> CatalogueState {
        try Self.validateCatalogue(language: language, sources: sources)
        return try await write { db in
            let (state, revision) = try db.inTransactionReturning {
                let stored = try String.fetchOne(db, sql: "SELECT language FROM catalogue_state WHERE id = 1")
                if let stored, stored != language {
                    throw StoreError.languageMismatch(stored: stored, requested: language)
                }
                let revision = try Self.bumpRevision(db)
                try db.execute(sql: "UPDATE catalogue_state SET language = ? WHERE id = 1", arguments: [language])
                for source in sources {
                    try db.execute(
                        sql: """
                            INSERT INTO catalogue_source (key, spec) VALUES (?, ?)
                            ON CONFLICT(key) DO UPDATE SET spec = excluded.spec
                            """,
                        arguments: [source.key, source.spec])
                }
                return (try Self.catalogueState(db), revision)
            }
            self.publish(db, revision: revision) { nil }
            return state
        }
    }

    @discardableResult
    public func refreshMovies(_ movies: [Movie], source: String, at time: Date) async throws -> CatalogueRefresh {
        guard !movies.isEmpty else { return CatalogueRefresh() }
        try Self.validateRefresh(movies, source: source)
        let seconds = time.timeIntervalSince1970
        return try await write { db in
            let (diff, next, revision) = try db.inTransactionReturning {
                let revision = try Self.bumpRevision(db)
                let base = revision.before == self.loadedRevision.value ? self.current.value : try Self.loadSnapshot(db)
                var stored: [MovieID: Movie] = [:]
                let ids = Array(Set(movies.map(\.id)))
                for start in stride(from: 0, to: ids.count, by: 500) {
                    let chunk = Array(ids[start..<min(start + 500, ids.count)])
                    let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                    for row in try Row.fetchAll(
                        db, sql: "SELECT * FROM movie WHERE id IN (\(marks))", arguments: StatementArguments(chunk))
                    {
                        let m = try Self.movie(from: row)
                        stored[m.id] = m
                    }
                }
                let diff = CatalogueDiff(new: movies, stored: stored)
                try Self.writeMovies(db, diff.movies)
                // The vectors of a replaced poster describe a poster the movie no longer has.
                let drop = try db.cachedStatement(sql: "DELETE FROM embedding WHERE movie_id = ?")
                for id in diff.refresh.posterChanged { try drop.execute(arguments: [id]) }
                let sighting = try db.cachedStatement(
                    sql: """
                        INSERT INTO movie_sighting (movie_id, source, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?)
                        ON CONFLICT(movie_id, source) DO UPDATE SET last_seen_at = excluded.last_seen_at
                        """)
                for m in diff.movies { try sighting.execute(arguments: [m.id, source, seconds, seconds]) }
                // The lists lose the dropped vectors in the same transaction (and the movies' own lists go).
                let next = try self.storingNeighbours(db, base: base, deleting: diff.refresh.posterChanged)
                    .updatingMovies(diff.movies.map(MovieFilterFields.init))
                return (diff, next, revision)
            }
            self.current.set(next)
            self.loadedRevision.set(revision.after)
            return diff.refresh
        }
    }

    public func catalogueEntries(movieIDs: [MovieID]?) async throws -> [CatalogueEntry] {
        if let movieIDs, movieIDs.isEmpty { return [] }
        return try await read { db in
            let columns = "SELECT movie_id, source, first_seen_at, last_seen_at FROM movie_sighting"
            var rows: [Row] = []
            if let movieIDs {
                for start in stride(from: 0, to: movieIDs.count, by: 500) {
                    let chunk = Array(movieIDs[start..<min(start + 500, movieIDs.count)])
                    let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                    rows += try Row.fetchAll(
                        db, sql: "\(columns) WHERE movie_id IN (\(marks))", arguments: StatementArguments(chunk))
                }
            } else {
                rows = try Row.fetchAll(db, sql: columns)
            }
            return CatalogueEntry.grouping(
                rows.map { row in
                    (row["movie_id"], row["source"], Date(timeIntervalSince1970: row["first_seen_at"]),
                     Date(timeIntervalSince1970: row["last_seen_at"]))
                })
        }
    }

    public func allMovieIDs() async throws -> [MovieID] {
        try await read { db in try MovieID.fetchAll(db, sql: "SELECT id FROM movie ORDER BY id") }
    }

    public func setSyncWatermark(_ time: Date) async throws {
        try await write { db in
            let revision = try db.inTransactionReturning {
                let revision = try Self.bumpRevision(db)
                try db.execute(
                    sql: "UPDATE catalogue_state SET sync_watermark = ? WHERE id = 1",
                    arguments: [time.timeIntervalSince1970])
                return revision
            }
            self.publish(db, revision: revision) { nil }
        }
    }
}
