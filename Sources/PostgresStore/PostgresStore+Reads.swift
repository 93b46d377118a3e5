// Reads: movies, exact and approximate search, counts and title search.
import PosterSimCore
import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Store
import Synchronization


extension PostgresVectorStore {
    // MARK: - Reads

    public func fetchMovies(ids: [MovieID]) async throws -> [Movie] {
        guard !ids.isEmpty else { return [] }
        let found = try await read { conn -> [MovieID: Movie] in
            var q = SQL("SELECT \(Self.movieColumns) FROM movie WHERE id = ANY(")
            q.bind(ids)
            q.append("::int8[])")
            var out: [MovieID: Movie] = [:]
            for row in try await Self.all(conn, q) {
                let m = try Self.decodeMovie(row)
                out[m.id] = m
            }
            return out
        }
        return ids.compactMap { found[$0] }
    }

    public func query(space name: String, vector: [Float], k: Int, filter: SearchFilter) async throws
        -> [SearchMatch]
    {
        try await query(space: name, vector: vector, k: k, filter: filter, exact: false)
    }

    /// `exact` false: HNSW candidates re-ranked exactly where `useApproximate` allows; true: always the exact scan.
    public func query(space name: String, vector: [Float], k: Int, filter: SearchFilter, exact: Bool) async throws
        -> [SearchMatch]
    {
        try StoreError.validate(k: k)
        let info = try await spaceInfo(name)
        try info.space.validate(vector)
        let approximate = exact ? false : try await useApproximate(info, filter: filter)
        var q = SQL("")
        let spaceParam = q.bindPlaceholder(name)
        let queryVector = q.bindPlaceholder(vector) + "::real[]::vector(\(info.space.dimension))"
        let identityExpr = "(SELECT identity FROM vector_space WHERE name = \(spaceParam))"
        let ranked = try Self.rankedSelect(
            info, queryVector: queryVector, identityExpr: identityExpr, excluding: nil, filter: filter, k: k,
            approximate: approximate, candidates: max(k, configuration.rerankCandidates), sql: &q)
        q.append(ranked)
        let statement = q
        let rows = try await read { conn in try await Self.all(conn, statement) }
        return try rows.map { row in
            let (id, score) = try row.decode((Int, Float).self)
            return SearchMatch(movieID: id, score: score)
        }
    }

    public func query(space name: String, movieID id: MovieID, k: Int, filter: SearchFilter, excludeSelf: Bool)
        async throws -> [SearchMatch]
    {
        try StoreError.validate(k: k)
        let info = try await spaceInfo(name)
        if let listed = try await listedQuery(info, movieID: id, k: k, filter: filter, excludeSelf: excludeSelf) {
            return listed
        }
        let approximate = try await useApproximate(info, filter: filter)
        // One statement: a status row (does the movie exist, does it have a current embedding), the movie itself if
        // it passes the filter, then the k nearest others.
        var q = SQL("")
        let spaceParam = q.bindPlaceholder(name)
        let idParam = q.bindPlaceholder(id)
        let identityExpr = "(SELECT identity FROM sp)"
        q.append("""
            WITH sp AS (SELECT identity FROM vector_space WHERE name = \(spaceParam)),
            me AS (SELECT e.embedding FROM \(info.table) e WHERE e.movie_id = \(idParam)::int8
                   AND e.identity = (SELECT identity FROM sp))
            SELECT 0::int8 AS kind, (SELECT count(*) FROM movie WHERE id = \(idParam)::int8)::int8 AS movie_id,
                   (SELECT count(*) FROM me)::real AS score
            UNION ALL
            SELECT 1::int8, m.id, \(Self.scoreExpr(info, "me.embedding", "me.embedding"))
            FROM me, movie m WHERE m.id = \(idParam)::int8
            """)
        let selfFilter = Self.filterSQL(filter, alias: "m", sql: &q)
        if !selfFilter.isEmpty { q.append(" AND " + selfFilter) }
        q.append(" UNION ALL SELECT 2::int8, r.movie_id, r.score FROM (")
        let ranked = try Self.rankedSelect(
            info, queryVector: "(SELECT embedding FROM me)", identityExpr: identityExpr, excluding: idParam,
            filter: filter, k: k, approximate: approximate, candidates: max(k, configuration.rerankCandidates),
            sql: &q)
        q.append(ranked)
        q.append(") r")
        let statement = q
        let rows = try await read { conn in try await Self.all(conn, statement) }
        var selfMatch: SearchMatch?
        var others: [SearchMatch] = []
        var exists = false
        var hasEmbedding = false
        for row in rows {
            // Without an embedding for the movie every distance is NULL; the status row says why.
            let (kind, movie, distance) = try row.decode((Int, Int, Float?).self)
            guard let score = distance else { continue }
            switch kind {
            case 0:
                exists = movie > 0
                hasEmbedding = score > 0
            case 1: selfMatch = SearchMatch(movieID: movie, score: score)
            default: others.append(SearchMatch(movieID: movie, score: score))
            }
        }
        guard exists else { throw StoreError.unknownMovie(id) }
        guard hasEmbedding else { throw StoreError.noEmbedding(movieID: id, space: name) }
        var result: [SearchMatch] = []
        if !excludeSelf, let selfMatch { result.append(selfMatch) }
        result += others.prefix(k - result.count)
        return result
    }

    public func movieCount() async throws -> Int {
        try await read { conn in
            try await Self.all(conn, SQL("SELECT count(*) FROM movie")).first?.decode(Int.self) ?? 0
        }
    }

    public func stats() async throws -> StoreStats {
        try await readSnapshot { conn in
            let movies = try await Self.all(conn, SQL("SELECT count(*) FROM movie")).first?.decode(Int.self) ?? 0
            var spaces: [SpaceStats] = []
            var bytes = 0
            for table in ["movie", "vector_space", "store_revision", "schema_migrations", "poster_skip"] {
                bytes += try await Self.relationSize(conn, table)
            }
            let rows = try await Self.all(
                conn,
                SQL("SELECT name, dimension, metric, identity, table_name, index_kind FROM vector_space ORDER BY name"))
            for row in rows {
                let name = try row.decode((String, Int, String, String, String, String).self).0
                let (info, identity) = try Self.decodeSpace(row, name: name, offset: 1)
                spaces.append(try await Self.spaceStats(conn, info, identity: identity))
                bytes += try await Self.relationSize(conn, info.table)
            }
            return StoreStats(movies: movies, spaces: spaces, bytesOnDisk: bytes, skips: try await Self.skipStats(conn))
        }
    }

    public func searchTitles(_ text: String, limit: Int) async throws -> [Movie] {
        guard limit > 0 else { return [] }
        let needle = Self.fold(text.trimmingCharacters(in: .whitespacesAndNewlines))
        return try await read { conn in
            var q = SQL("SELECT \(Self.movieColumns) FROM movie")
            if !needle.isEmpty {
                q.append(" WHERE strpos(label_folded, ")
                q.bind(needle)
                q.append("::text) > 0")
            }
            q.append(" ORDER BY popularity_rank NULLS LAST, id LIMIT ")
            q.bind(limit)
            return try await Self.all(conn, q).map(Self.decodeMovie)
        }
    }

    public func completedPairs(movieIDs: [MovieID], spaces names: [String]) async throws -> Set<EmbeddingKey> {
        guard !movieIDs.isEmpty, !names.isEmpty else {
            for n in names { _ = try await spaceInfo(n) }
            return []
        }
        var infos: [SpaceInfo] = []
        for n in names { infos.append(try await spaceInfo(n)) }
        var q = SQL("")
        let ids = q.bindPlaceholder(movieIDs)
        for (i, info) in infos.enumerated() {
            if i > 0 { q.append(" UNION ALL ") }
            let nameParam = q.bindPlaceholder(info.space.name)
            q.append("""
                SELECT \(i)::int8, e.movie_id FROM \(info.table) e WHERE e.movie_id = ANY(\(ids)::int8[])
                AND e.identity = (SELECT identity FROM vector_space WHERE name = \(nameParam))
                """)
        }
        let statement = q
        let rows = try await read { conn in try await Self.all(conn, statement) }
        var done = Set<EmbeddingKey>()
        for row in rows {
            let (i, id) = try row.decode((Int, Int).self)
            done.insert(EmbeddingKey(movieID: id, space: infos[i].space.name))
        }
        return done
    }
}
