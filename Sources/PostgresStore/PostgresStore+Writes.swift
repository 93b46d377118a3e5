// Writes: spaces, movies, embeddings and skip records, each call one transaction.
import PosterSimCore
import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Store
import Synchronization


extension PostgresVectorStore {
    // MARK: - Writes

    @discardableResult
    public func registerSpace(_ space: VectorSpace, identity: ModelIdentity) async throws -> SpaceStats {
        guard !space.name.isEmpty else { throw StoreError.invalidSpace("empty name") }
        guard space.dimension > 0, space.dimension <= 16_000 else {
            throw StoreError.invalidSpace("dimension \(space.dimension) out of range 1...16000 (pgvector's limit)")
        }
        let large = configuration.largeSpaceIndex
        let (info, stats) = try await write { conn -> (SpaceInfo, SpaceStats) in
            var q = SQL("SELECT dimension, metric, identity, table_name, index_kind FROM vector_space WHERE name = ")
            q.bind(space.name)
            let info: SpaceInfo
            if let row = try await Self.all(conn, q).first {
                let (existing, existingIdentity) = try Self.decodeSpace(row, name: space.name)
                guard existing.space == space else {
                    throw StoreError.spaceConflict(existing: existing.space, requested: space)
                }
                info = existing
                if existingIdentity != identity {
                    var u = SQL("UPDATE vector_space SET identity = ")
                    u.bind(identity.storedForm)
                    u.append(" WHERE name = ")
                    u.bind(space.name)
                    try await Self.run(conn, u)
                    // The lists ranked the old model's vectors; the new model's get theirs as they are stored.
                    var d = SQL("DELETE FROM neighbour_list WHERE space = ")
                    d.bind(space.name)
                    try await Self.run(conn, d)
                }
            } else {
                let table = Self.tableName(for: space.name)
                let kind = Self.indexKind(for: space, large: large)
                info = SpaceInfo(space: space, table: table, index: kind)
                try await Self.run(conn, SQL("""
                    CREATE TABLE \(table) (
                        movie_id bigint PRIMARY KEY REFERENCES movie(id) ON DELETE CASCADE,
                        identity text NOT NULL,
                        embedding vector(\(space.dimension)) NOT NULL)
                    """))
                if let index = Self.indexDDL(info) { try await Self.run(conn, SQL(index)) }
                var ins = SQL(
                    "INSERT INTO vector_space (name, dimension, metric, identity, table_name, index_kind) VALUES (")
                ins.bind(space.name)
                ins.append(", ")
                ins.bind(space.dimension)
                ins.append(", ")
                ins.bind(space.metric.rawValue)
                ins.append(", ")
                ins.bind(identity.storedForm)
                ins.append(", ")
                ins.bind(table)
                ins.append(", ")
                ins.bind(kind.rawValue)
                ins.append(")")
                try await Self.run(conn, ins)
            }
            return (info, try await Self.spaceStats(conn, info, identity: identity))
        }
        spaces.withLock { $0[space.name] = info }
        return stats
    }

    public func upsertMovies(_ movies: [Movie]) async throws {
        guard !movies.isEmpty else { return }
        for m in movies where m.id < 0 {
            throw StoreError.invalidMovie(m.id, reason: "TMDB ids are non-negative")
        }
        // One statement cannot touch a row twice: the last version of a repeated id wins, as item-by-item would.
        var last: [MovieID: Int] = [:]
        for (i, m) in movies.enumerated() { last[m.id] = i }
        let unique = movies.enumerated().filter { last[$0.element.id] == $0.offset }.map(\.element)
        try await write { conn in
            for chunk in stride(from: 0, to: unique.count, by: 1000) {
                try await Self.run(conn, Self.movieUpsert(unique[chunk..<min(chunk + 1000, unique.count)]))
            }
        }
    }

    public func upsertEmbeddings(_ embeddings: [EmbeddingInput], space name: String, identity: ModelIdentity)
        async throws
    {
        guard !embeddings.isEmpty else { return }
        let (info, unique) = try await checkedBatch(embeddings, space: name)
        try await write { conn in
            try await Self.requireIdentity(identity, space: name, conn)
            try await Self.lockMovies(of: embeddings, conn)
            let replaced = try await Self.currentVectors(conn, info, among: unique.map(\.movieID))
            let rowsPerStatement = max(1, min(1000, 16_000_000 / (info.space.dimension * 4)))
            for start in stride(from: 0, to: unique.count, by: rowsPerStatement) {
                var ins = SQL("INSERT INTO \(info.table) (movie_id, identity, embedding) VALUES ")
                let idParam = ins.bindPlaceholder(identity.storedForm)
                for (i, e) in unique[start..<min(start + rowsPerStatement, unique.count)].enumerated() {
                    if i > 0 { ins.append(", ") }
                    ins.append("(")
                    ins.bind(e.movieID)
                    ins.append("::int8, \(idParam)::text, ")
                    ins.bind(e.vector)
                    ins.append("::real[]::vector)")
                }
                ins.append(
                    " ON CONFLICT (movie_id) DO UPDATE SET identity = EXCLUDED.identity, embedding = EXCLUDED.embedding")
                try await Self.run(conn, ins)
            }
            try await Self.maintainNeighbours(conn, info: info, added: unique.map(\.movieID), removed: replaced)
            try await Self.settleSkips(of: unique, space: name, conn)
        }
    }

    @discardableResult
    public func deleteMovies(ids: [MovieID]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await write { conn in
            var vectors: [(SpaceInfo, [MovieID])] = []
            for info in try await Self.spaceInfos(conn) { vectors.append((info, try await Self.currentVectors(conn, info, among: ids))) }
            var q = SQL("DELETE FROM movie WHERE id = ANY(")
            q.bind(ids)
            q.append("::int8[]) RETURNING id")
            let deleted = try await Self.all(conn, q).count
            for (info, removed) in vectors where !removed.isEmpty {
                try await Self.maintainNeighbours(conn, info: info, added: [], removed: removed)
            }
            return deleted
        }
    }

    public func recordSkips(_ skips: [PosterSkip], at time: Date) async throws {
        guard !skips.isEmpty else { return }
        for skip in skips { try skip.validate() }
        // One statement cannot touch a row twice: the last skip of a repeated key wins, as the contract says.
        let rows = PosterSkip.lastPerKey(skips).map { (skip: $0, attempts: 1, first: time, last: time) }
        // Another poster_path is another poster: its count starts again.
        try await writeSkips(rows, onConflict: """
            attempts = CASE WHEN poster_skip.poster_path IS NOT DISTINCT FROM EXCLUDED.poster_path
                THEN poster_skip.attempts + 1 ELSE 1 END,
            first_failed_at = CASE WHEN poster_skip.poster_path IS NOT DISTINCT FROM EXCLUDED.poster_path
                THEN poster_skip.first_failed_at ELSE EXCLUDED.first_failed_at END,
            """)
    }

    public func importSkipRecords(_ records: [SkipRecord]) async throws {
        guard !records.isEmpty else { return }
        for record in records { try record.validate() }
        let rows = SkipRecord.lastPerKey(records).map {
            (skip: $0.skip, attempts: $0.attempts, first: $0.firstFailedAt, last: $0.lastAttemptAt)
        }
        try await writeSkips(rows, onConflict: "attempts = EXCLUDED.attempts, first_failed_at = EXCLUDED.first_failed_at,")
    }

    /// Inserts skip rows in one transaction; an existing key takes `onConflict` (assignments ending with a comma)
    /// for its count and first time, and the row's details and last time.
    func writeSkips(_ rows: [(skip: PosterSkip, attempts: Int, first: Date, last: Date)],
                            onConflict: String) async throws {
        try await write { conn in
            var check = SQL("SELECT id FROM movie WHERE id = ANY(")
            check.bind(Array(Set(rows.map(\.skip.movieID))))
            check.append("::int8[]) FOR KEY SHARE")
            let present = Set(try await Self.all(conn, check).map { try $0.decode(Int.self) })
            if let missing = rows.first(where: { !present.contains($0.skip.movieID) }) {
                throw StoreError.unknownMovie(missing.skip.movieID)
            }
            for start in stride(from: 0, to: rows.count, by: 1000) {
                var q = SQL("""
                    INSERT INTO poster_skip (movie_id, space, reason, http_status, message, poster_path, source, identity,
                        attempts, first_failed_at, last_attempt_at) VALUES
                    """)
                for (i, row) in rows[start..<min(start + 1000, rows.count)].enumerated() {
                    let skip = row.skip
                    q.append(i == 0 ? " (" : ", (")
                    q.bind(skip.movieID); q.append("::int8, ")
                    q.bind(skip.space ?? SkipKey.posterSpaceColumn); q.append("::text, ")
                    q.bind(skip.reason.rawValue); q.append("::text, ")
                    q.bindOptional(skip.httpStatus); q.append("::int4, ")
                    q.bind(skip.message); q.append("::text, ")
                    q.bindOptional(skip.posterPath); q.append("::text, ")
                    q.bindOptional(skip.source); q.append("::text, ")
                    q.bindOptional(skip.identity?.storedForm); q.append("::text, ")
                    q.bind(row.attempts); q.append("::int4, ")
                    q.bind(row.first); q.append("::timestamptz, ")
                    q.bind(row.last); q.append("::timestamptz)")
                }
                q.append("""
                     ON CONFLICT (movie_id, space) DO UPDATE SET \(onConflict)
                        reason = EXCLUDED.reason, http_status = EXCLUDED.http_status, message = EXCLUDED.message,
                        poster_path = EXCLUDED.poster_path, source = EXCLUDED.source, identity = EXCLUDED.identity,
                        last_attempt_at = EXCLUDED.last_attempt_at
                    """)
                try await Self.run(conn, q)
            }
        }
    }

    public func skipRecords(movieIDs: [MovieID]?) async throws -> [SkipRecord] {
        if let movieIDs, movieIDs.isEmpty { return [] }
        return try await read { conn in
            var q = SQL("""
                SELECT movie_id, space, reason, http_status, message, poster_path, source, identity, attempts,
                    first_failed_at, last_attempt_at FROM poster_skip
                """)
            if let movieIDs {
                q.append(" WHERE movie_id = ANY(")
                q.bind(movieIDs)
                q.append("::int8[])")
            }
            // '' (the poster's own record) sorts first; byte order, as the SQLite store's Swift sort.
            q.append(" ORDER BY movie_id, space COLLATE \"C\"")
            return try await Self.all(conn, q).map(Self.decodeSkipRecord)
        }
    }

    static func decodeSkipRecord(_ row: PostgresRow) throws -> SkipRecord {
        let c = row.makeRandomAccess()
        let id = try c[0].decode(Int.self)
        let space = try c[1].decode(String.self)
        let reasonText = try c[2].decode(String.self)
        guard let reason = SkipReason(rawValue: reasonText) else {
            throw StoreError.corrupt("skip record of movie \(id) has unknown reason '\(reasonText)'")
        }
        var identity: ModelIdentity?
        if let identityText = try c[7].decode(String?.self) {
            guard let parsed = ModelIdentity(storedForm: identityText) else {
                throw StoreError.corrupt("skip record of movie \(id) has unparsable identity '\(identityText)'")
            }
            identity = parsed
        }
        let skip = PosterSkip(
            movieID: id, space: space == SkipKey.posterSpaceColumn ? nil : space, reason: reason,
            httpStatus: try c[3].decode(Int?.self), message: try c[4].decode(String.self),
            posterPath: try c[5].decode(String?.self), source: try c[6].decode(String?.self), identity: identity)
        return SkipRecord(
            skip: skip, attempts: try c[8].decode(Int.self), firstFailedAt: try c[9].decode(Date.self),
            lastAttemptAt: try c[10].decode(Date.self))
    }

    static func skipStats(_ conn: PostgresConnection) async throws -> SkipStats {
        var byReason: [String: Int] = [:]
        var records = 0
        for row in try await all(conn, SQL("SELECT reason, count(*)::int8 FROM poster_skip GROUP BY reason")) {
            let (reason, n) = try row.decode((String, Int).self)
            byReason[reason] = n
            records += n
        }
        let movies = try await all(conn, SQL("SELECT count(DISTINCT movie_id)::int8 FROM poster_skip")).first?
            .decode(Int.self) ?? 0
        return SkipStats(records: records, movies: movies, byReason: byReason)
    }
}
