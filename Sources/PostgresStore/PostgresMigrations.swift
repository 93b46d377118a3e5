import Logging
import PostgresNIO
import Store

/// The store's schema, as numbered migrations recorded in `schema_migrations` (version, name, applied_at). `apply`
/// runs the missing ones in order, in one transaction under an advisory lock, so concurrent starts (several test
/// cases, several processes) migrate once. Embedding tables are not migrations: each is created with its space
/// (`registerSpace`), because spaces are data (name, dimension, metric).
///
/// Never edit a released migration; append a new one.
public struct PostgresMigrations: Sendable {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        let statements: [String]
    }

    public let schema: String
    let logger: Logger

    public init(schema: String, logger: Logger) {
        self.schema = schema
        self.logger = logger
    }

    public static let all: [Migration] = [
        Migration(
            version: 1, name: "movies, vector spaces, store revision",
            statements: [
                """
                CREATE TABLE movie (
                    id bigint PRIMARY KEY CHECK (id >= 0),
                    title text NOT NULL,
                    original_title text,
                    overview text,
                    release_date text,
                    poster_path text,
                    backdrop_path text,
                    genre_ids bigint[] NOT NULL DEFAULT '{}',
                    original_language text,
                    popularity double precision,
                    vote_average double precision,
                    vote_count bigint,
                    adult boolean,
                    video boolean,
                    popularity_rank bigint,
                    release_year bigint,
                    label_folded text NOT NULL
                )
                """,
                "CREATE INDEX movie_by_popularity ON movie (popularity_rank NULLS LAST, id)",
                """
                CREATE TABLE vector_space (
                    name text PRIMARY KEY,
                    dimension integer NOT NULL CHECK (dimension > 0),
                    metric text NOT NULL CHECK (metric IN ('cosine', 'euclidean')),
                    identity text NOT NULL,
                    table_name text NOT NULL UNIQUE,
                    index_kind text NOT NULL
                )
                """,
                """
                CREATE TABLE store_revision (
                    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                    value bigint NOT NULL
                )
                """,
                "INSERT INTO store_revision (singleton, value) VALUES (true, 1)",
            ]),
        Migration(
            version: 2, name: "skip records",
            statements: [
                // One row per (movie, space); space '' is the poster's own record (primary key columns are NOT NULL).
                """
                CREATE TABLE poster_skip (
                    movie_id bigint NOT NULL REFERENCES movie(id) ON DELETE CASCADE,
                    space text NOT NULL,
                    reason text NOT NULL,
                    http_status integer,
                    message text NOT NULL,
                    poster_path text,
                    source text,
                    identity text,
                    attempts integer NOT NULL CHECK (attempts >= 1),
                    first_failed_at timestamptz NOT NULL,
                    last_attempt_at timestamptz NOT NULL,
                    PRIMARY KEY (movie_id, space)
                )
                """,
                "CREATE INDEX poster_skip_by_reason ON poster_skip (reason)",
            ]),
        Migration(
            version: 3, name: "pinecone indexes",
            statements: [
                // Users' indexes; each one's records live in its own table (`rec_<name>`, made with the index, as
                // embedding tables are made with their space): a pgvector column needs its dimension.
                """
                CREATE TABLE record_index (
                    name text PRIMARY KEY,
                    dimension integer NOT NULL CHECK (dimension > 0),
                    metric text NOT NULL CHECK (metric IN ('cosine', 'euclidean', 'dotproduct')),
                    cloud text NOT NULL,
                    region text NOT NULL,
                    table_name text NOT NULL UNIQUE,
                    generation bigint NOT NULL DEFAULT 0
                )
                """,
            ]),
        Migration(
            version: 4, name: "catalogue sources and sync state",
            statements: [
                """
                CREATE TABLE catalogue_state (
                    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                    language text,
                    sync_watermark timestamptz
                )
                """,
                "INSERT INTO catalogue_state (singleton) VALUES (true)",
                "CREATE TABLE catalogue_source (key text PRIMARY KEY, spec text NOT NULL)",
                """
                CREATE TABLE movie_sighting (
                    movie_id bigint NOT NULL REFERENCES movie(id) ON DELETE CASCADE,
                    source text NOT NULL,
                    first_seen_at timestamptz NOT NULL,
                    last_seen_at timestamptz NOT NULL,
                    PRIMARY KEY (movie_id, source)
                )
                """,
            ]),
        Migration(
            version: 5, name: "neighbour lists",
            statements: [
                // Each current vector's nearest neighbours (NeighbourList), best first; worst_* repeat the last entry
                // so a write can tell in SQL which lists a new vector enters. The GIN index finds the lists that hold
                // a movie whose vector is replaced or deleted.
                """
                CREATE TABLE neighbour_list (
                    space text NOT NULL REFERENCES vector_space(name) ON DELETE CASCADE,
                    movie_id bigint NOT NULL REFERENCES movie(id) ON DELETE CASCADE,
                    complete boolean NOT NULL,
                    ids bigint[] NOT NULL,
                    scores real[] NOT NULL,
                    worst_score real,
                    worst_id bigint,
                    PRIMARY KEY (space, movie_id)
                )
                """,
                "CREATE INDEX neighbour_list_members ON neighbour_list USING gin (ids)",
            ]),
    ]

    public static var latestVersion: Int { all.last?.version ?? 0 }

    /// (version the database is at, version this code needs).
    func versions(on conn: PostgresConnection) async throws -> (Int, Int) {
        let exists = try await rows(
            conn, "SELECT to_regclass('\(schema).schema_migrations') IS NOT NULL"
        ).first?.decode(Bool.self) ?? false
        guard exists else { return (0, Self.latestVersion) }
        let v = try await rows(conn, "SELECT coalesce(max(version), 0)::int8 FROM \(schema).schema_migrations")
            .first?.decode(Int.self) ?? 0
        return (v, Self.latestVersion)
    }

    /// Applies the missing migrations; returns the ones applied.
    @discardableResult
    public func apply(on conn: PostgresConnection) async throws -> [Migration] {
        _ = try await rows(conn, "BEGIN")
        do {
            // Migrations may wait for another process's; the configured statement timeout is for queries.
            _ = try await rows(conn, "SET LOCAL statement_timeout = 0")
            _ = try await rows(conn, "SELECT pg_advisory_xact_lock(727274001)")
            do {
                _ = try await rows(conn, "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public")
            } catch {
                throw PostgresStoreError.unsupportedServer(
                    "pgvector is needed (CREATE EXTENSION vector failed: \(PostgresVectorStore.describe(error)))")
            }
            _ = try await rows(conn, "CREATE SCHEMA IF NOT EXISTS \(schema)")
            _ = try await rows(
                conn,
                """
                CREATE TABLE IF NOT EXISTS \(schema).schema_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let done = Set(
                try await rows(conn, "SELECT version::int8 FROM \(schema).schema_migrations").map {
                    try $0.decode(Int.self)
                })
            var applied: [Migration] = []
            _ = try await rows(conn, "SET LOCAL search_path = \(schema), public")
            for m in Self.all where !done.contains(m.version) {
                for statement in m.statements { _ = try await rows(conn, statement) }
                var q = SQL("INSERT INTO schema_migrations (version, name) VALUES (")
                q.bind(m.version)
                q.append("::int4, ")
                q.bind(m.name)
                q.append(")")
                _ = try await PostgresVectorStore.all(conn, q)
                logger.info("applied migration \(m.version): \(m.name)")
                applied.append(m)
            }
            _ = try await rows(conn, "COMMIT")
            return applied
        } catch {
            _ = try? await rows(conn, "ROLLBACK")
            throw error
        }
    }

    /// Connects with `configuration` and applies the missing migrations (the `postersim db migrate` command).
    public static func run(configuration: PostgresStoreConfiguration, logger: Logger) async throws
        -> (applied: [Migration], version: Int)
    {
        let conn: PostgresConnection
        do {
            conn = try await PostgresConnection.connect(
                configuration: PostgresVectorStore.connectionConfiguration(
                    configuration, tls: try configuration.transportSecurity()),
                id: 0, logger: logger)
        } catch {
            throw PostgresStoreError.connectionFailed(
                url: configuration.redactedURL, reason: PostgresVectorStore.describe(error))
        }
        do {
            let m = PostgresMigrations(schema: configuration.schema, logger: logger)
            let applied = try await m.apply(on: conn)
            let version = try await m.versions(on: conn).0
            try? await conn.close()
            return (applied, version)
        } catch {
            try? await conn.close()
            throw PostgresVectorStore.mapError(error, configuration: configuration)
        }
    }

    private func rows(_ conn: PostgresConnection, _ sql: String) async throws -> [PostgresRow] {
        try await PostgresVectorStore.all(conn, SQL(sql))
    }
}
