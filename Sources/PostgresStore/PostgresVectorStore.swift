import PosterSimCore
import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Store
import Synchronization

/// The `VectorStore` on PostgreSQL with pgvector, through postgres-nio's `PostgresClient` (a connection pool).
///
/// Schema (created by `migrate()`, versioned in `schema_migrations`; see `PostgresMigrations`): `movie` (the TMDB
/// fields plus the release year and a case- and accent-folded label for filters and title search), `vector_space`
/// (name, dimension, metric, current model identity as `repo@sha256:HEX`, embeddings table, index kind),
/// `store_revision` (one counter row), `poster_skip` (the last failure per movie and model, see `recordSkips`), and one
/// embeddings table per space, `emb_<name>` (`movie_id` referencing
/// `movie` with `ON DELETE CASCADE`, the identity that made the vector, `embedding vector(dim)`), created when the space
/// is first registered.
///
/// How the `VectorStore` guarantees are met:
/// - **Atomic writes**: every mutating call is one transaction (multi-row `INSERT … ON CONFLICT` statements inside it);
///   an error rolls the whole call back.
/// - **Serialised writes**: each write transaction first bumps the `store_revision` row, taking its row lock, so writes
///   from every task and every process apply one after the other. The counter is `revision()`.
/// - **Snapshot reads**: a read is one statement (a snapshot in PostgreSQL), or a `REPEATABLE READ READ ONLY`
///   transaction when it needs several (`stats`, `completedPairs` over several spaces).
/// - **Deterministic order**: results are ordered in SQL by the Float32 score, then by movie id.
/// - **No mixing of checkpoints**: every search and count compares each row's identity with the space's current one
///   inside the same statement, so a checkpoint switched by another process is seen at once.
/// - **Scores** as in the embedded store: cosine similarity `1 - (a <=> b)`, and squared euclidean distance
///   (`vector_l2_squared_distance`, no square root).
///
/// Search: exact unless all of these hold, in which case it is approximate (HNSW), documented here:
/// the query has no filter, `approximateSearch` is on, and the space holds at least `exactScanBelow` vectors by the
/// planner's estimate (`pg_class.reltuples`, refreshed every 10 s). So small spaces (and the contract tests) and every
/// filtered query get exact, deterministic results. The approximate path takes `max(k, rerankCandidates)` candidates
/// from the index with `hnsw.iterative_scan = relaxed_order` (so rows of stale identities, skipped by the identity
/// check, do not shorten the result) and re-ranks them by the exact score with the id tie-break.
/// Indexes, by what pgvector's HNSW supports: up to 2,000 dimensions `vector` with `vector_cosine_ops` /
/// `vector_l2_ops` (CLIP 512-d); up to 4,000 dimensions `halfvec` with `halfvec_cosine_ops` / `halfvec_l2_ops`
/// (ResNet-50 2048-d); beyond that (VGG16 4096-d) `largeSpaceIndex`: exact scan (the default) or HNSW on
/// `binary_quantize(embedding)::bit(dim)` (Hamming) with exact re-ranking of `rerankCandidates`. `make bench-pg` on 10k
/// seeded unit vectors (2 cores): exact scan recall@10 1.0 at ~85 ms p50; binary-quantised HNSW ~8 ms p50 but recall@10
/// 0.29, so exact is the default and the quantised index is opt-in (`?vgg_index=binaryQuantized`).
/// The approximate paths trade recall for latency (10k random unit vectors, ef_search 100: recall@10 0.54 for 512-d,
/// 0.41 for 2048-d halfvec; see Benchmarks/PGBench/README.md; real poster embeddings cluster and do better); raise `ef_search` / `rerankCandidates`, or
/// `exactScanBelow`, to trade back.
///
/// Writes of embeddings are multi-row `INSERT … ON CONFLICT` statements with each vector bound as a binary `real[]`
/// parameter (cast to `vector`); `copyEmbeddings` (used by `postersim export`) streams a batch with `COPY … FROM STDIN`.
/// Connections use TLS as `sslmode` says (libpq's modes; `prefer` by default, `verify-full` against a public network).
///
/// Errors: contract errors are `StoreError`s, as in every store; failures of the server or the network are
/// `PostgresStoreError`s (connection failed at start-up, server unavailable past the retry window, statement
/// timeout). While the server restarts or is unreachable, every operation retries for `retryWindow`; all operations
/// are idempotent, so a retried write whose first commit went through does no harm.
public final class PostgresVectorStore: VectorStore, Sendable {
    public let configuration: PostgresStoreConfiguration
    let client: PostgresClient
    let logger: Logger
    private let runTask: Task<Void, Never>
    private let spaces = Mutex<[String: SpaceInfo]>([:])
    private let estimates = Mutex<[String: (rows: Double, at: ContinuousClock.Instant)]>([:])

    struct SpaceInfo: Sendable {
        let space: VectorSpace
        let table: String
        let index: IndexKind
    }

    enum IndexKind: String, Sendable {
        case exact, hnsw, hnswHalfvec = "hnsw_halfvec", hnswBit = "hnsw_bit"
    }

    /// Connects to the server at `url` (see `PostgresStoreConfiguration.init(url:)`), checks it answers, and applies
    /// pending migrations when `migrate` is true (otherwise a store whose schema is behind is refused).
    public static func open(url: String, migrate: Bool = true, logger: Logger = Logger(label: "postersim.pg"))
        async throws -> PostgresVectorStore
    {
        try await open(configuration: PostgresStoreConfiguration(url: url), migrate: migrate, logger: logger)
    }

    public static func open(
        configuration: PostgresStoreConfiguration, migrate: Bool = true,
        logger: Logger = Logger(label: "postersim.pg")
    ) async throws -> PostgresVectorStore {
        if let warning = configuration.tlsWarning { logger.warning("\(warning)") }
        // One direct connection first: a refused or failed login is reported at once, naming the URL.
        let tls = try configuration.transportSecurity()
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                configuration: connectionConfiguration(configuration, tls: tls), id: 0, logger: logger)
        } catch {
            throw PostgresStoreError.connectionFailed(url: configuration.redactedURL, reason: describe(error))
        }
        do {
            let migrations = PostgresMigrations(schema: configuration.schema, logger: logger)
            if migrate {
                _ = try await migrations.apply(on: connection)
            } else {
                let (current, latest) = try await migrations.versions(on: connection)
                guard current == latest else {
                    throw PostgresStoreError.unsupportedServer(
                        "schema '\(configuration.schema)' is at version \(current), this tool needs \(latest): "
                            + "run `postersim db migrate`")
                }
            }
            try? await connection.close()
        } catch {
            try? await connection.close()
            throw mapError(error, configuration: configuration)
        }
        return PostgresVectorStore(configuration: configuration, tls: tls, logger: logger)
    }

    private init(configuration: PostgresStoreConfiguration, tls: TransportSecurity, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        var pool = PostgresClient.Configuration(
            host: configuration.host, port: configuration.port, username: configuration.username,
            password: configuration.password, database: configuration.database, tls: tls.client)
        pool.options.maximumConnections = configuration.maximumConnections
        pool.options.connectTimeout = configuration.connectTimeout
        pool.options.additionalStartupParameters = Self.startupParameters(configuration)
        pool.options.keepAliveBehavior = nil
        let client = PostgresClient(configuration: pool, backgroundLogger: logger)
        self.client = client
        self.runTask = Task { await client.run() }
    }

    deinit {
        runTask.cancel()
    }

    /// Closes the pool's connections. The store is unusable afterwards.
    public func shutdown() async {
        runTask.cancel()
        _ = await runTask.value
    }

    static func startupParameters(_ c: PostgresStoreConfiguration) -> [(String, String)] {
        [
            ("search_path", "\(c.schema), public"),
            ("statement_timeout", "\(c.statementTimeoutMilliseconds)"),
            ("hnsw.ef_search", "\(c.efSearch)"),
            ("hnsw.iterative_scan", "relaxed_order"),
            ("application_name", "postersim"),
        ]
    }

    static func connectionConfiguration(_ c: PostgresStoreConfiguration, tls: TransportSecurity)
        -> PostgresConnection.Configuration
    {
        var config = PostgresConnection.Configuration(
            host: c.host, port: c.port, username: c.username, password: c.password, database: c.database,
            tls: tls.connection)
        let seconds: Int64 = max(1, c.connectTimeout.components.seconds)
        config.options.connectTimeout = .seconds(seconds)
        config.options.additionalStartupParameters = startupParameters(c)
        return config
    }

    // MARK: - Revision

    /// Changes whenever a write commits, in this process or another; equal values mean unchanged contents.
    public func revision() async throws -> UInt64 {
        let rows = try await read { conn in
            try await Self.all(conn, SQL("SELECT value FROM store_revision"))
        }
        guard let row = rows.first else { throw StoreError.corrupt("store_revision has no row") }
        return UInt64(max(0, try row.decode(Int.self)))
    }

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
            try await Self.settleSkips(of: unique, space: name, conn)
        }
    }

    @discardableResult
    public func deleteMovies(ids: [MovieID]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await write { conn in
            var q = SQL("DELETE FROM movie WHERE id = ANY(")
            q.bind(ids)
            q.append("::int8[]) RETURNING id")
            return try await Self.all(conn, q).count
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
    private func writeSkips(_ rows: [(skip: PosterSkip, attempts: Int, first: Date, last: Date)],
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
        try StoreError.validate(k: k)
        let info = try await spaceInfo(name)
        try info.space.validate(vector)
        let approximate = try await useApproximate(info, filter: filter)
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

    // MARK: - Export support

    /// Movie ids in ascending order after `after`, at most `limit` (for paging through the whole store).
    public func movieIDs(after: MovieID, limit: Int) async throws -> [MovieID] {
        try await read { conn in
            var q = SQL("SELECT id FROM movie WHERE id > ")
            q.bind(after)
            q.append("::int8 ORDER BY id LIMIT ")
            q.bind(limit)
            return try await Self.all(conn, q).map { try $0.decode(Int.self) }
        }
    }

    /// Each space with its current identity.
    public func spacesWithIdentity() async throws -> [(VectorSpace, ModelIdentity)] {
        try await stats().spaces.map { ($0.space, $0.identity) }
    }

    /// Current-identity embeddings of `space` for movie ids after `after`, ascending, at most `limit`.
    public func currentEmbeddings(space name: String, after: MovieID, limit: Int) async throws -> [EmbeddingInput] {
        let info = try await spaceInfo(name)
        return try await read { conn in
            var q = SQL("SELECT e.movie_id, e.embedding::real[] FROM \(info.table) e WHERE e.movie_id > ")
            q.bind(after)
            q.append("::int8 AND e.identity = (SELECT identity FROM vector_space WHERE name = ")
            q.bind(name)
            q.append(") ORDER BY e.movie_id LIMIT ")
            q.bind(limit)
            return try await Self.all(conn, q).map {
                let (id, v) = try $0.decode((Int, [Float]).self)
                return EmbeddingInput(movieID: id, vector: v)
            }
        }
    }

    /// The current-identity vectors of these movies in `space` (the HTTP API's `includeValues`).
    public func fetchVectors(ids: [MovieID], space name: String) async throws -> [MovieID: [Float]] {
        guard !ids.isEmpty else { return [:] }
        let info = try await spaceInfo(name)
        return try await read { conn in
            var q = SQL("SELECT e.movie_id, e.embedding::real[] FROM \(info.table) e WHERE e.movie_id = ANY(")
            q.bind(ids)
            q.append("::int8[]) AND e.identity = (SELECT identity FROM vector_space WHERE name = ")
            q.bind(name)
            q.append(")")
            var out: [MovieID: [Float]] = [:]
            for row in try await Self.all(conn, q) {
                let (id, v) = try row.decode((Int, [Float]).self)
                out[id] = v
            }
            return out
        }
    }

    /// Runs `ANALYZE` on the store's tables, so the planner's row estimates (which choose exact or approximate
    /// search) follow a bulk load at once instead of after autovacuum.
    public func analyze() async throws {
        try await read { conn in
            try await Self.run(conn, SQL("ANALYZE movie"))
            for table in try await Self.all(conn, SQL("SELECT name, table_name FROM vector_space")).map({
                let (space, table) = try $0.decode((String, String).self)
                return try PostgresStoreConfiguration.checkedTableName(table, space: space)
            }) {
                try await Self.run(conn, SQL("ANALYZE \(table)"))
            }
        }
        estimates.withLock { $0 = [:] }
    }

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

    // MARK: - Helpers

    func spaceInfo(_ name: String) async throws -> SpaceInfo {
        if let info = spaces.withLock({ $0[name] }) { return info }
        let row = try await read { conn in
            var q = SQL("SELECT dimension, metric, identity, table_name, index_kind FROM vector_space WHERE name = ")
            q.bind(name)
            return try await Self.all(conn, q).first
        }
        guard let row else { throw StoreError.unknownSpace(name) }
        let info = try Self.decodeSpace(row, name: name).0
        spaces.withLock { $0[name] = info }
        return info
    }

    func useApproximate(_ info: SpaceInfo, filter: SearchFilter) async throws -> Bool {
        guard configuration.approximateSearch, filter.isEmpty, info.index != .exact else { return false }
        let now = ContinuousClock.now
        if let cached = estimates.withLock({ $0[info.space.name] }), now - cached.at < .seconds(10) {
            return cached.rows >= Double(configuration.exactScanBelow)
        }
        let rows = try await read { conn in
            var q = SQL("SELECT reltuples::float8 FROM pg_class WHERE oid = ")
            q.bind(info.table)
            q.append("::regclass")
            return try await Self.all(conn, q).first?.decode(Double.self) ?? 0
        }
        estimates.withLock { $0[info.space.name] = (rows, now) }
        return rows >= Double(configuration.exactScanBelow)
    }

    static func spaceStats(_ conn: PostgresConnection, _ info: SpaceInfo, identity: ModelIdentity) async throws
        -> SpaceStats
    {
        var q = SQL("")
        let p = q.bindPlaceholder(identity.storedForm)
        q.append("SELECT count(*) FILTER (WHERE identity = \(p)::text), count(*) FILTER (WHERE identity <> \(p)::text) FROM \(info.table)")
        let row = try await all(conn, q).first
        let (current, stale) = try row?.decode((Int, Int).self) ?? (0, 0)
        return SpaceStats(space: info.space, identity: identity, vectors: current, staleVectors: stale)
    }

    static func relationSize(_ conn: PostgresConnection, _ table: String) async throws -> Int {
        var q = SQL("SELECT coalesce(pg_total_relation_size(to_regclass(")
        q.bind(table)
        q.append(")), 0)::int8")
        return try await all(conn, q).first?.decode(Int.self) ?? 0
    }

    static func decodeSpace(_ row: PostgresRow, name: String, offset: Int = 0) throws -> (SpaceInfo, ModelIdentity) {
        let cells = row.makeRandomAccess()
        let dimension = try cells[offset].decode(Int.self)
        let metricText = try cells[offset + 1].decode(String.self)
        let identityText = try cells[offset + 2].decode(String.self)
        let table = try PostgresStoreConfiguration.checkedTableName(cells[offset + 3].decode(String.self), space: name)
        let kindText = try cells[offset + 4].decode(String.self)
        guard let metric = DistanceMetric(rawValue: metricText) else {
            throw StoreError.corrupt("space '\(name)' has unknown metric '\(metricText)'")
        }
        guard let identity = ModelIdentity(storedForm: identityText) else {
            throw StoreError.corrupt("space '\(name)' has unparsable identity '\(identityText)'")
        }
        guard let kind = IndexKind(rawValue: kindText) else {
            throw StoreError.corrupt("space '\(name)' has unknown index kind '\(kindText)'")
        }
        return (SpaceInfo(space: VectorSpace(name: name, dimension: dimension, metric: metric), table: table, index: kind),
                identity)
    }

    static func decodeMovie(_ row: PostgresRow) throws -> Movie {
        let c = row.makeRandomAccess()
        return Movie(
            id: try c[0].decode(Int.self), title: try c[1].decode(String.self),
            originalTitle: try c[2].decode(String?.self), overview: try c[3].decode(String?.self),
            releaseDate: try c[4].decode(String?.self), posterPath: try c[5].decode(String?.self),
            backdropPath: try c[6].decode(String?.self), genreIDs: try c[7].decode([Int].self),
            originalLanguage: try c[8].decode(String?.self), popularity: try c[9].decode(Double?.self),
            voteAverage: try c[10].decode(Double?.self), voteCount: try c[11].decode(Int?.self),
            adult: try c[12].decode(Bool?.self), video: try c[13].decode(Bool?.self),
            popularityRank: try c[14].decode(Int?.self))
    }


    // MARK: - Running statements

    static func all(_ conn: PostgresConnection, _ q: SQL) async throws -> [PostgresRow] {
        let out: [PostgresRow]
        do {
            // Guarded: a statement on a connection that closes under it must not wait for ever (ClosedConnectionGuard).
            out = try await ClosedConnectionGuard.shared.run(on: conn) {
                var rows: [PostgresRow] = []
                for try await row in try await conn.query(q.query, logger: disabledLogger) { rows.append(row) }
                return rows
            }
        } catch {
            if ProcessInfo.processInfo.environment["POSTERSIM_PG_DEBUG"] != nil {
                FileHandle.standardError.write(Data("SQL failed: \(q.text)\n\(describe(error))\n".utf8))
            }
            throw error
        }
        return out
    }

    static func run(_ conn: PostgresConnection, _ q: SQL) async throws {
        _ = try await all(conn, q)
    }

    static let disabledLogger = Logger(label: "postersim.pg.quiet", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A write: one READ COMMITTED transaction that first bumps the revision row (serialising all writers).
    func write<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction("BEGIN") { conn in
            try await Self.run(conn, SQL("UPDATE store_revision SET value = value + 1"))
            return try await body(conn)
        }
    }

    /// A read of one statement (its own snapshot).
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withRetry {
            try await self.withLease { conn in try await body(conn) }
        }
    }

    /// A read of several statements that must see one snapshot.
    func readSnapshot<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws
        -> T
    {
        try await transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
    }

    func transaction<T: Sendable>(
        _ begin: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withRetry {
            try await self.withLease { conn in
                try await Self.run(conn, SQL(begin))
                do {
                    let result = try await body(conn)
                    try await Self.run(conn, SQL("COMMIT"))
                    return result
                } catch {
                    try? await Self.run(conn, SQL("ROLLBACK"))
                    throw error
                }
            }
        }
    }

    /// Runs `body`, retrying transient connection failures (server restarting or unreachable) for `retryWindow`
    /// with exponential backoff; other errors are mapped to `StoreError` / `PostgresStoreError` at once.
    func withRetry<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + configuration.retryWindow
        var delay = Duration.milliseconds(50)
        while true {
            do {
                return try await body()
            } catch {
                guard Self.isTransient(error), !Task.isCancelled else {
                    throw Self.mapError(error, configuration: configuration)
                }
                guard ContinuousClock.now + delay < deadline else {
                    throw PostgresStoreError.unavailable(url: configuration.redactedURL, reason: Self.describe(error))
                }
                logger.debug("retrying after transient error: \(Self.describe(error))")
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    /// No connection could be leased from the pool within `leaseTimeout` (server down or restarting).
    struct LeaseTimeout: Error, CustomStringConvertible {
        var description: String { "no connection could be made within the lease timeout" }
    }

    /// How long one attempt may wait for a pooled connection before the retry loop takes over.
    var leaseTimeout: Duration { configuration.connectTimeout + .seconds(5) }

    /// `client.withConnection`, but an attempt that cannot lease a connection within `leaseTimeout` gives up (the
    /// lease request is cancelled) with a transient `LeaseTimeout`, so a pool that waits on an unreachable server
    /// never blocks an operation past the retry window. Once leased, the body runs without a deadline (the
    /// statement timeout, if any, bounds it).
    func withLease<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let leased = Flag()
        let timeout = leaseTimeout
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await self.client.withConnection { conn in
                    leased.set()
                    return try await body(conn)
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                if !leased.isSet { throw LeaseTimeout() }
                return nil
            }
            while let next = try await group.next() {
                if let value = next {
                    group.cancelAll()
                    return value
                }
            }
            throw LeaseTimeout()
        }
    }

    static func isTransient(_ error: any Error) -> Bool {
        if error is LeaseTimeout || error is ConnectionClosedUnderStatement { return true }
        if let e = error as? PSQLError {
            if let state = e.serverInfo?[.sqlState] {
                return state.hasPrefix("08") || state == "57P01" || state == "57P02" || state == "57P03"
            }
            return e.code == .connectionError || e.code == .serverClosedConnection || e.code == .uncleanShutdown
                || e.code == .clientClosedConnection
        }
        if error is PostgresStoreError || error is StoreError || error is CancellationError { return false }
        // Socket errors from NIO while (re)connecting.
        let text = String(describing: error)
        return text.contains("connection") || text.contains("Connection") || text.contains("refused")
    }

    static func mapError(_ error: any Error, configuration: PostgresStoreConfiguration) -> any Error {
        if error is StoreError || error is PostgresStoreError || error is CancellationError { return error }
        if let e = error as? PSQLError {
            if let state = e.serverInfo?[.sqlState] {
                let message = e.serverInfo?[.message] ?? ""
                if state == "57014", message.contains("statement timeout") {
                    return PostgresStoreError.statementTimeout(milliseconds: configuration.statementTimeoutMilliseconds)
                }
                return PostgresStoreError.server(sqlState: state, message: message)
            }
            if isTransient(e) {
                return PostgresStoreError.unavailable(url: configuration.redactedURL, reason: describe(e))
            }
        }
        return StoreError.database(describe(error))
    }

    /// A readable account of a postgres-nio error (its own description hides server details).
    static func describe(_ error: any Error) -> String {
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] {
                return "\(message) (SQLSTATE \(e.serverInfo?[.sqlState] ?? "?"))"
            }
            if let underlying = e.underlying { return "\(e.code): \(underlying)" }
            return "\(e.code)"
        }
        return "\(error)"
    }
}

final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

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
    /// Whole movies with ids after `after`, ascending, at most `limit` (for export).
    public func movies(after: MovieID, limit: Int) async throws -> [Movie] {
        try await read { conn in
            var q = SQL("SELECT \(Self.movieColumns) FROM movie WHERE id > ")
            q.bind(after)
            q.append("::int8 ORDER BY id LIMIT ")
            q.bind(limit)
            return try await Self.all(conn, q).map(Self.decodeMovie)
        }
    }

    /// The batch checked against the space (dimension, finite values) and with duplicate movies reduced to their last
    /// vector, as one write applies it.
    func checkedBatch(_ embeddings: [EmbeddingInput], space name: String) async throws
        -> (SpaceInfo, [EmbeddingInput])
    {
        let info = try await spaceInfo(name)
        for e in embeddings { try info.space.validate(e.vector) }
        var last: [MovieID: Int] = [:]
        for (i, e) in embeddings.enumerated() { last[e.movieID] = i }
        return (info, embeddings.enumerated().filter { last[$0.element.movieID] == $0.offset }.map(\.element))
    }

    /// Every movie of the batch must exist: the first missing one (in batch order) fails it. KEY SHARE locks keep a
    /// concurrent delete from removing them before the insert.
    static func lockMovies(of embeddings: [EmbeddingInput], _ conn: PostgresConnection) async throws {
        var check = SQL("SELECT id FROM movie WHERE id = ANY(")
        check.bind(Array(Set(embeddings.map(\.movieID))))
        check.append("::int8[]) FOR KEY SHARE")
        let present = Set(try await all(conn, check).map { try $0.decode(Int.self) })
        if let missing = embeddings.first(where: { !present.contains($0.movieID) }) {
            throw StoreError.unknownMovie(missing.movieID)
        }
    }

    /// Throws unless `identity` is the space's current one (read inside the write's transaction).
    static func requireIdentity(_ identity: ModelIdentity, space name: String, _ conn: PostgresConnection) async throws {
        var q = SQL("SELECT identity FROM vector_space WHERE name = ")
        q.bind(name)
        guard let row = try await all(conn, q).first else { throw StoreError.unknownSpace(name) }
        let currentText = try row.decode(String.self)
        guard let current = ModelIdentity(storedForm: currentText) else {
            throw StoreError.corrupt("space '\(name)' has unparsable identity '\(currentText)'")
        }
        guard current == identity else {
            throw StoreError.identityMismatch(space: name, current: current, given: identity)
        }
    }

    /// `upsertEmbeddings` for bulk loads: the batch streams in with `COPY … FROM STDIN` (text format) into a temporary
    /// table, then one `INSERT … SELECT … ON CONFLICT` moves it into the space, all in one transaction with the same
    /// checks (identity, existing movies, dimension, finite values) and the same all-or-nothing guarantee.
    public func copyEmbeddings(_ embeddings: [EmbeddingInput], space name: String, identity: ModelIdentity)
        async throws
    {
        guard !embeddings.isEmpty else { return }
        let (info, unique) = try await checkedBatch(embeddings, space: name)
        let logger = Self.disabledLogger
        try await write { conn in
            try await Self.requireIdentity(identity, space: name, conn)
            try await Self.lockMovies(of: embeddings, conn)
            try await Self.run(conn, SQL("""
                CREATE TEMP TABLE IF NOT EXISTS postersim_load (movie_id bigint, embedding vector) ON COMMIT DELETE ROWS
                """))
            try await ClosedConnectionGuard.shared.run(on: conn) {
                try await conn.copyFrom(table: "postersim_load", columns: ["movie_id", "embedding"], logger: logger) {
                    writer in
                    var buffer = ByteBuffer()
                    for e in unique {
                        buffer.writeString("\(e.movieID)\t[")
                        for (j, x) in e.vector.enumerated() {
                            if j > 0 { buffer.writeString(",") }
                            buffer.writeString(x.description)
                        }
                        buffer.writeString("]\n")
                        if buffer.readableBytes > 1 << 20 {
                            try await writer.write(buffer)
                            buffer.clear()
                        }
                    }
                    if buffer.readableBytes > 0 { try await writer.write(buffer) }
                }
            }
            var ins = SQL("INSERT INTO \(info.table) (movie_id, identity, embedding) SELECT movie_id, ")
            ins.bind(identity.storedForm)
            ins.append("::text, embedding::vector(\(info.space.dimension)) FROM postersim_load")
            ins.append(" ON CONFLICT (movie_id) DO UPDATE SET identity = EXCLUDED.identity, embedding = EXCLUDED.embedding")
            try await Self.run(conn, ins)
            try await Self.settleSkips(of: unique, space: name, conn)
        }
    }

    /// Inside an embedding write: a stored vector settles the pair's skip record and the poster's own one.
    static func settleSkips(of embeddings: [EmbeddingInput], space name: String, _ conn: PostgresConnection)
        async throws
    {
        var q = SQL("DELETE FROM poster_skip WHERE movie_id = ANY(")
        q.bind(embeddings.map(\.movieID))
        q.append("::int8[]) AND space IN (")
        q.bind(name)
        q.append("::text, ")
        q.bind(SkipKey.posterSpaceColumn)
        q.append("::text)")
        try await run(conn, q)
    }
}
