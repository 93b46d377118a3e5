// The catalogue's records in PostgreSQL (migration 4, "catalogue sources and sync state").
import Foundation
import PosterSimCore
import PostgresNIO
import Store

extension PostgresVectorStore: CatalogueStore {
    public func catalogueState() async throws -> CatalogueState {
        try await readSnapshot { conn in try await Self.catalogueState(conn) }
    }

    static func catalogueState(_ conn: PostgresConnection) async throws -> CatalogueState {
        let row = try await all(conn, SQL("SELECT language, sync_watermark FROM catalogue_state")).first
        let (language, watermark) = try row?.decode((String?, Date?).self) ?? (nil, nil)
        let sources = try await all(conn, SQL("SELECT key, spec FROM catalogue_source ORDER BY key COLLATE \"C\""))
            .map { row in
                let (key, spec) = try row.decode((String, String).self)
                return CatalogueSourceRecord(key: key, spec: spec)
            }
        return CatalogueState(language: language, sources: sources, syncWatermark: watermark)
    }

    @discardableResult
    public func adoptCatalogue(language: String, sources: [CatalogueSourceRecord]) async throws -> CatalogueState {
        try Self.validateCatalogue(language: language, sources: sources)
        return try await write { conn in
            let stored = try await Self.all(conn, SQL("SELECT language FROM catalogue_state FOR UPDATE")).first?
                .decode(String?.self) ?? nil
            if let stored, stored != language {
                throw StoreError.languageMismatch(stored: stored, requested: language)
            }
            var q = SQL("UPDATE catalogue_state SET language = ")
            q.bind(language)
            try await Self.run(conn, q)
            for source in sources {
                var ins = SQL("INSERT INTO catalogue_source (key, spec) VALUES (")
                ins.bind(source.key)
                ins.append(", ")
                ins.bind(source.spec)
                ins.append(") ON CONFLICT (key) DO UPDATE SET spec = EXCLUDED.spec")
                try await Self.run(conn, ins)
            }
            return try await Self.catalogueState(conn)
        }
    }

    @discardableResult
    public func refreshMovies(_ movies: [Movie], source: String, at time: Date) async throws -> CatalogueRefresh {
        guard !movies.isEmpty else { return CatalogueRefresh() }
        try Self.validateRefresh(movies, source: source)
        return try await write { conn in
            var q = SQL("SELECT \(Self.movieColumns) FROM movie WHERE id = ANY(")
            q.bind(Array(Set(movies.map(\.id))))
            q.append("::int8[]) FOR UPDATE")
            var stored: [MovieID: Movie] = [:]
            for row in try await Self.all(conn, q) {
                let m = try Self.decodeMovie(row)
                stored[m.id] = m
            }
            let diff = CatalogueDiff(new: movies, stored: stored)
            for start in stride(from: 0, to: diff.movies.count, by: 1000) {
                try await Self.run(conn, Self.movieUpsert(diff.movies[start..<min(start + 1000, diff.movies.count)]))
            }
            let changed = diff.refresh.posterChanged
            if !changed.isEmpty {
                // The vectors of a replaced poster describe a poster the movie no longer has; the lists lose them in
                // the same transaction.
                for info in try await Self.spaceInfos(conn) {
                    let removed = try await Self.currentVectors(conn, info, among: changed)
                    var del = SQL("DELETE FROM \(try PostgresStoreConfiguration.checkedTableName(info.table, space: info.space.name)) WHERE movie_id = ANY(")
                    del.bind(changed)
                    del.append("::int8[])")
                    try await Self.run(conn, del)
                    try await Self.maintainNeighbours(conn, info: info, added: [], removed: removed)
                }
            }
            var sight = SQL(
                "INSERT INTO movie_sighting (movie_id, source, first_seen_at, last_seen_at) SELECT unnest(")
            sight.bind(diff.movies.map(\.id))
            sight.append("::int8[]), ")
            let sourceParam = sight.bindPlaceholder(source)
            let timeParam = sight.bindPlaceholder(time)
            sight.append("""
                \(sourceParam)::text, \(timeParam)::timestamptz, \(timeParam)::timestamptz
                ON CONFLICT (movie_id, source) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
                """)
            try await Self.run(conn, sight)
            return diff.refresh
        }
    }

    public func catalogueEntries(movieIDs: [MovieID]?) async throws -> [CatalogueEntry] {
        if let movieIDs, movieIDs.isEmpty { return [] }
        return try await read { conn in
            var q = SQL("SELECT movie_id, source, first_seen_at, last_seen_at FROM movie_sighting")
            if let movieIDs {
                q.append(" WHERE movie_id = ANY(")
                q.bind(movieIDs)
                q.append("::int8[])")
            }
            let rows = try await Self.all(conn, q).map { try $0.decode((Int, String, Date, Date).self) }
            return CatalogueEntry.grouping(rows)
        }
    }

    public func allMovieIDs() async throws -> [MovieID] {
        try await read { conn in
            try await Self.all(conn, SQL("SELECT id FROM movie ORDER BY id")).map { try $0.decode(Int.self) }
        }
    }

    public func setSyncWatermark(_ time: Date) async throws {
        try await write { conn in
            var q = SQL("UPDATE catalogue_state SET sync_watermark = ")
            q.bind(time)
            q.append("::timestamptz")
            try await Self.run(conn, q)
        }
    }
}
