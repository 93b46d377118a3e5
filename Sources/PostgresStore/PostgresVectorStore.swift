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
    let runTask: Task<Void, Never>
    let spaces = Mutex<[String: SpaceInfo]>([:])
    let estimates = Mutex<[String: (rows: Double, at: ContinuousClock.Instant)]>([:])
    /// Record-index namespaces loaded for exact search (see `PostgresStore+Records.swift`).
    let recordCache = RecordNamespaceCache()
    /// Record queries answered by the HNSW path (for tests and reports: which path a query took).
    public let approximateRecordQueries = Mutex<Int>(0)

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
}
