// The SQL the store builds: statements with bound parameters, scores, filters, indexes and table names.
import PosterSimCore
import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Store
import Synchronization


/// A statement under construction: SQL text plus its bound parameters (`$1`, `$2`, …).
struct SQL: Sendable {
    var text: String
    var binds = PostgresBindings()
    private var count = 0

    init(_ text: String) { self.text = text }

    mutating func append(_ s: String) { text += s }

    /// Binds `value` and returns its placeholder, without writing it into the text.
    @discardableResult
    mutating func bindPlaceholder<T: PostgresEncodable & Sendable>(_ value: T) -> String {
        try! binds.append(value)
        count += 1
        return "$\(count)"
    }

    mutating func bind<T: PostgresEncodable & Sendable>(_ value: T) {
        let placeholder = bindPlaceholder(value)
        text += placeholder
    }

    mutating func bindOptional<T: PostgresEncodable & Sendable>(_ value: T?) {
        if let value { bind(value) } else {
            binds.appendNull()
            count += 1
            text += "$\(count)"
        }
    }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: text, binds: binds) }
}

extension PostgresVectorStore {
    // MARK: - SQL pieces

    static let movieColumns = """
        id, title, original_title, overview, release_date, poster_path, backdrop_path, genre_ids, original_language,
        popularity, vote_average, vote_count, adult, video, popularity_rank
        """

    static func movieUpsert(_ movies: ArraySlice<Movie>) throws -> SQL {
        var q = SQL("""
            INSERT INTO movie (id, title, original_title, overview, release_date, poster_path, backdrop_path, genre_ids,
                original_language, popularity, vote_average, vote_count, adult, video, popularity_rank, release_year,
                label_folded) VALUES
            """)
        for (i, m) in movies.enumerated() {
            q.append(i == 0 ? " (" : ", (")
            q.bind(m.id); q.append("::int8, ")
            q.bind(m.title); q.append("::text, ")
            q.bindOptional(m.originalTitle); q.append("::text, ")
            q.bindOptional(m.overview); q.append("::text, ")
            q.bindOptional(m.releaseDate); q.append("::text, ")
            q.bindOptional(m.posterPath); q.append("::text, ")
            q.bindOptional(m.backdropPath); q.append("::text, ")
            q.bind(m.genreIDs); q.append("::int8[], ")
            q.bindOptional(m.originalLanguage); q.append("::text, ")
            q.bindOptional(m.popularity); q.append("::float8, ")
            q.bindOptional(m.voteAverage); q.append("::float8, ")
            q.bindOptional(m.voteCount); q.append("::int8, ")
            q.bindOptional(m.adult); q.append("::bool, ")
            q.bindOptional(m.video); q.append("::bool, ")
            q.bindOptional(m.popularityRank); q.append("::int8, ")
            q.bindOptional(m.releaseYear); q.append("::int8, ")
            q.bind(fold(m.label)); q.append("::text)")
        }
        q.append("""
             ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, original_title = EXCLUDED.original_title,
                overview = EXCLUDED.overview, release_date = EXCLUDED.release_date, poster_path = EXCLUDED.poster_path,
                backdrop_path = EXCLUDED.backdrop_path, genre_ids = EXCLUDED.genre_ids,
                original_language = EXCLUDED.original_language, popularity = EXCLUDED.popularity,
                vote_average = EXCLUDED.vote_average, vote_count = EXCLUDED.vote_count, adult = EXCLUDED.adult,
                video = EXCLUDED.video, popularity_rank = EXCLUDED.popularity_rank,
                release_year = EXCLUDED.release_year, label_folded = EXCLUDED.label_folded
            """)
        return q
    }

    /// The score of `a` against `b` as Float32, in the space's meaning.
    static func scoreExpr(_ info: SpaceInfo, _ a: String, _ b: String) -> String {
        switch info.space.metric {
        case .cosine: return "(1 - (\(a) <=> \(b)))::real"
        case .euclidean: return "vector_l2_squared_distance(\(a), \(b))::real"
        }
    }

    /// What the HNSW index orders by, for the approximate path (nil: the space has no index).
    static func annOrderExpr(_ info: SpaceInfo, column: String, query: String) -> String? {
        let d = info.space.dimension
        let op = info.space.metric == .cosine ? "<=>" : "<->"
        switch info.index {
        case .exact: return nil
        case .hnsw: return "\(column) \(op) \(query)"
        case .hnswHalfvec: return "(\(column)::halfvec(\(d))) \(op) ((\(query))::halfvec(\(d)))"
        case .hnswBit: return "(binary_quantize(\(column))::bit(\(d))) <~> (binary_quantize(\(query))::bit(\(d)))"
        }
    }

    /// `SELECT movie_id, score … ORDER BY score, movie_id LIMIT k` over the space's current rows (minus `excluding`)
    /// that pass `filter`: an exact scan, or index candidates re-ranked exactly.
    static func rankedSelect(
        _ info: SpaceInfo, queryVector: String, identityExpr: String, excluding: String?, filter: SearchFilter, k: Int,
        approximate: Bool, candidates: Int, sql q: inout SQL
    ) throws -> String {
        let direction = info.space.metric.higherIsCloser ? "DESC" : "ASC"
        var conditions = ["e.identity = \(identityExpr)"]
        if let excluding { conditions.append("e.movie_id <> \(excluding)::int8") }
        let kParam = q.bindPlaceholder(k)
        if approximate, let ann = annOrderExpr(info, column: "e.embedding", query: queryVector) {
            let cParam = q.bindPlaceholder(candidates)
            return """
                (SELECT c.movie_id, \(scoreExpr(info, "c.embedding", queryVector)) AS score FROM (
                    SELECT e.movie_id, e.embedding FROM \(info.table) e WHERE \(conditions.joined(separator: " AND "))
                    ORDER BY \(ann) LIMIT \(cParam)) c
                 ORDER BY score \(direction), c.movie_id LIMIT \(kParam))
                """
        }
        var join = ""
        let f = filterSQL(filter, alias: "m", sql: &q)
        if !f.isEmpty {
            join = " JOIN movie m ON m.id = e.movie_id"
            conditions.append(f)
        }
        return """
            (SELECT e.movie_id, \(scoreExpr(info, "e.embedding", queryVector)) AS score FROM \(info.table) e\(join)
             WHERE \(conditions.joined(separator: " AND ")) ORDER BY score \(direction), e.movie_id LIMIT \(kParam))
            """
    }

    /// The filter as a SQL condition on `alias` (a `movie` row), with the same rules as `SearchFilter.accepts`.
    static func filterSQL(_ f: SearchFilter, alias m: String, sql q: inout SQL) -> String {
        var parts: [String] = []
        if let v = f.minYear { parts.append("\(m).release_year >= \(q.bindPlaceholder(v))::int8") }
        if let v = f.maxYear { parts.append("\(m).release_year <= \(q.bindPlaceholder(v))::int8") }
        if let v = f.genreID { parts.append("\(m).genre_ids @> ARRAY[\(q.bindPlaceholder(v))::int8]") }
        if let v = f.originalLanguage { parts.append("\(m).original_language = \(q.bindPlaceholder(v))::text") }
        if let v = f.adult { parts.append("coalesce(\(m).adult, false) = \(q.bindPlaceholder(v))::bool") }
        if let v = f.minVoteCount { parts.append("coalesce(\(m).vote_count, 0) >= \(q.bindPlaceholder(v))::int8") }
        return parts.joined(separator: " AND ")
    }

    static func indexKind(for space: VectorSpace, large: PostgresStoreConfiguration.LargeSpaceIndex) -> IndexKind {
        if space.dimension <= 2000 { return .hnsw }
        if space.dimension <= 4000 { return .hnswHalfvec }
        if space.dimension <= 64_000, large == .binaryQuantized { return .hnswBit }
        return .exact
    }

    static func indexDDL(_ info: SpaceInfo) -> String? {
        let d = info.space.dimension
        let cos = info.space.metric == .cosine
        let name = "\(info.table)_hnsw"
        switch info.index {
        case .exact: return nil
        case .hnsw:
            return "CREATE INDEX \(name) ON \(info.table) USING hnsw (embedding \(cos ? "vector_cosine_ops" : "vector_l2_ops"))"
        case .hnswHalfvec:
            return "CREATE INDEX \(name) ON \(info.table) USING hnsw ((embedding::halfvec(\(d))) "
                + (cos ? "halfvec_cosine_ops)" : "halfvec_l2_ops)")
        case .hnswBit:
            return "CREATE INDEX \(name) ON \(info.table) USING hnsw ((binary_quantize(embedding)::bit(\(d))) bit_hamming_ops)"
        }
    }

    /// `emb_<name>` for plain names, else `emb_x<hex>`: a safe identifier, never quoted user text.
    static func tableName(for space: String) -> String {
        if PostgresStoreConfiguration.isPlainIdentifier(space), space.utf8.count <= 40 { return "emb_\(space)" }
        let hex = space.utf8.prefix(28).map { String(format: "%02x", $0) }.joined()
        var h: UInt32 = 2_166_136_261
        for b in space.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return "emb_x\(hex)_\(String(h, radix: 16))"
    }

    /// Lowercased, accents removed: what the title search compares.
    static func fold(_ s: String) -> String {
        s.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
    }
}
