import PosterSimCore
import Foundation
import GRDB
import Logging

/// The embedded `VectorStore`: one SQLite file (GRDB `DatabasePool`, WAL mode), with each space's current vectors
/// also held in memory as one contiguous matrix for exact search.
///
/// Guarantees, in addition to those of `VectorStore`:
/// - Every write is one SQLite transaction (`BEGIN IMMEDIATE`); writes are serialised by GRDB's single writer.
/// - The in-memory indexes are immutable snapshots. A write builds the next snapshot after its transaction commits,
///   while still holding the writer, and publishes it under a lock; so the memory state changes in commit order, a
///   query never sees a half-applied batch, and queries never wait for a write (they only copy a reference).
/// - Appending to a space reuses its matrix buffer in place (readers only read rows below their snapshot's row count);
///   replaced or deleted rows are tombstoned and compacted away later, so a write costs O(batch), not O(store),
///   except for occasional compaction.
/// - Vectors are stored as little-endian Float32 BLOBs of exactly `dimension * 4` bytes; reopening the file rebuilds
///   the same indexes (a BLOB of the wrong size is reported as `StoreError.corrupt`).
/// - The schema is versioned with GRDB's `DatabaseMigrator`; opening an older file migrates it.
/// - One instance per file should write, but others may. The file keeps a revision counter bumped inside every write
///   transaction. Each instance knows the revision its in-memory indexes reflect; `revision()` and the queries check
///   the file's counter (at most once per `externalCheckInterval`, so the check costs nothing on a busy server) and,
///   when another instance or process has committed, reload the indexes from the file. Reloads are spaced at least
///   four times their own duration apart, so a long external ingest cannot keep a server busy reloading. A write
///   of this instance that finds the counter moved by someone else reloads too, instead of patching its indexes.
///   Other processes' writes are thus seen by queries within about `externalCheckInterval` (zero: checked at every
///   read, and reloads are not spaced); `fetchMovies`,
///   `movieCount`, `stats` and `searchTitles` read the file and see them at once.
/// - With an index file (`IndexFilePolicy`, `SQLiteVectorStore+IndexFile.swift`), opening and reloading map the
///   snapshot stored at the file's revision when it equals the database's, instead of decoding every row; the answers
///   are the same either way, given that the file's matrices pass the check that runs in the background after the
///   open (a damaged file is dropped for the rows: `verifyInBackground`). Writes to a mapped space append after the
///   mapped rows without copying them (`MatrixStorage`), and a large enough delta is folded into a new file
///   (`foldDeltaIfLarge`).
public final class SQLiteVectorStore: VectorStore {
    public static let defaultPath = "./postersim.sqlite"

    /// The database file.
    public let path: String
    /// Threads one query may use for its scan.
    public let searchThreads: Int
    /// How list upkeep scores writes; nil chooses by batch size (`NeighbourScoringMethod.automatic`).
    public let neighbourScoring: NeighbourScoringMethod?
    /// Spaces with at least this many films answer unfiltered queries by vector approximately, through the lists,
    /// unless the caller asks for `exact`; nil: always exact. Below 100,000 films the scan takes a few milliseconds.
    public let approximateSearchFrom: Int?
    public static let defaultApproximateSearchFrom = 100_000

    /// How often, at most, reads look at the file for other processes' commits.
    public let externalCheckInterval: Duration

    let pool: DatabasePool
    /// Record-index namespaces loaded for search, by index generation (see `SQLiteVectorStore+Records.swift`).
    let recordCache = RecordNamespaceCache()
    let current: Locked<StoreSnapshot>
    /// The revision `current` reflects. Set after `current`, so a reader that sees a revision sees its snapshot.
    let loadedRevision: Locked<UInt64>
    private let checks: Locked<ExternalCheckState>
    /// Time this instance spent keeping neighbour lists (scoring and writing them), for benchmarks.
    let neighbourTime = Locked<Duration>(.zero)
    /// How this store uses its index file, how the indexes were last loaded, and the queue that writes the file.
    let indexFilePolicy: IndexFilePolicy
    let indexLoadState: Locked<IndexLoad>
    let indexWriteError = Locked<IndexFileError?>(nil)
    let indexWriter = DispatchQueue(label: "postersim.store.index-file", qos: .utility)
    /// Where the matrices of a mapped index file are checked after the open (`IndexFileVerification`).
    let indexVerifier = DispatchQueue(label: "postersim.store.index-verify", qos: .utility)
    /// For what happens in the background: an index file found damaged, or its verification finished.
    let logger: Logger
    /// The smallest delta (`SpaceIndex.delta`) of a mapped space that is folded into a new index file
    /// (`foldDeltaIfLarge`); tests lower it.
    let foldMinimum = Locked(SQLiteVectorStore.defaultFoldMinimum)
    /// Pairs list upkeep scored, and rescored exactly (`NeighbourMaintenance.Result`), since this instance opened.
    let neighbourPairs = Locked<(scored: Int, rescored: Int)>((0, 0))
    /// The int8 codes list upkeep screens big writes with when told to (`neighbourScoring: .boundedInt8GEMM`), kept
    /// between writes: about a quarter of the matrices' memory.
    let rowCodes = RowCodesCache()
    /// Queries by vector answered through the lists (`graphSearch`) since this instance opened.
    let approximateQueries = Locked(0)
    /// Rows `ListGraphSearch` samples for its entry points (tests lower it to exercise the graph on small spaces).
    let graphEntrySample = Locked(ListGraphSearch.defaultEntrySample)

    struct ExternalCheckState: Sendable {
        var nextCheck: ContinuousClock.Instant
        var nextReloadAllowed: ContinuousClock.Instant
    }

    /// Opens (creating if needed) the store at `path`, migrates it and loads every space's current vectors: mapped from
    /// the index file when `indexFile` allows and the file is current, else decoded from the rows.
    public init(
        path: String = SQLiteVectorStore.defaultPath, searchThreads: Int = ExactSearch.defaultThreads,
        externalCheckInterval: Duration = .milliseconds(100), neighbourScoring: NeighbourScoringMethod? = nil,
        approximateSearchFrom: Int? = SQLiteVectorStore.defaultApproximateSearchFrom,
        indexFile: IndexFilePolicy = .mapIfCurrent, logger: Logger = Logger(label: "postersim.store")
    ) throws {
        self.path = path
        self.logger = logger
        self.approximateSearchFrom = approximateSearchFrom
        self.neighbourScoring = neighbourScoring
        indexFilePolicy = indexFile
        self.searchThreads = max(1, searchThreads)
        self.externalCheckInterval = externalCheckInterval
        let now = ContinuousClock.now
        checks = Locked(ExternalCheckState(nextCheck: now + externalCheckInterval, nextReloadAllowed: now))
        do {
            var config = Configuration()
            config.foreignKeysEnabled = true
            config.label = "postersim.store"
            config.prepareDatabase { db in
                // The writer rewrites the neighbour lists a new film enters (about a hundred per space); SQLite's
                // default 2 MiB page cache did not hold them, so they were read back from the OS on every write. With
                // 128 MiB, list upkeep took 10% less at 50,000 CLIP films (53.7 -> 48.4 s). The kernel still takes about
                // a fifth of a write (perf): the WAL's writes and its checkpoints. Readers keep the default.
                if !db.configuration.readonly { try db.execute(sql: "PRAGMA cache_size = -\(Self.writerCacheKiB)") }
            }
            pool = try DatabasePool(path: path, configuration: config)
            try Self.migrator.migrate(pool)
            let sidecar = indexFile == .off ? nil : Self.indexFilePath(of: path)
            // A writer killed mid-write (a server stopped while rewriting the file) leaves its temporary behind.
            if let sidecar { SpaceIndexFile.removeAbandonedTemporaries(of: sidecar) }
            let loaded = try pool.read { db in try Self.loadSnapshot(db, indexFile: sidecar) }
            current = Locked(loaded.snapshot)
            loadedRevision = Locked(loaded.stamp.revision)
            indexLoadState = Locked(loaded.load)
            if let verification = loaded.verification { verifyInBackground(verification) }
            if indexFile == .mapAndRefresh, case .rows = loaded.load {
                writeIndexFileInBackground(loaded.snapshot, stamp: loaded.stamp)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.database("cannot open \(path): \(error)")
        }
    }

    /// The writer connection's page cache, in KiB (SQLite's default is 2 MiB).
    static let writerCacheKiB = 128 * 1024

    // MARK: Schema

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: movies, vector spaces, embeddings") { db in
            try db.execute(
                sql: """
                    CREATE TABLE movie (
                        id INTEGER PRIMARY KEY NOT NULL,
                        title TEXT NOT NULL,
                        original_title TEXT,
                        overview TEXT,
                        release_date TEXT,
                        poster_path TEXT,
                        backdrop_path TEXT,
                        genre_ids TEXT NOT NULL DEFAULT '[]',
                        original_language TEXT,
                        popularity REAL,
                        vote_average REAL,
                        vote_count INTEGER,
                        adult INTEGER,
                        video INTEGER,
                        popularity_rank INTEGER
                    );
                    CREATE TABLE vector_space (
                        name TEXT PRIMARY KEY NOT NULL,
                        dimension INTEGER NOT NULL CHECK (dimension > 0),
                        metric TEXT NOT NULL CHECK (metric IN ('cosine', 'euclidean')),
                        identity TEXT NOT NULL
                    );
                    CREATE TABLE embedding (
                        space TEXT NOT NULL REFERENCES vector_space(name) ON DELETE CASCADE,
                        movie_id INTEGER NOT NULL REFERENCES movie(id) ON DELETE CASCADE,
                        identity TEXT NOT NULL,
                        vector BLOB NOT NULL,
                        PRIMARY KEY (space, movie_id)
                    );
                    CREATE INDEX embedding_by_movie ON embedding(movie_id);
                    """)
        }
        m.registerMigration("v2: revision counter") { db in
            try db.execute(
                sql: """
                    CREATE TABLE store_revision (
                        id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
                        value INTEGER NOT NULL
                    );
                    INSERT INTO store_revision (id, value) VALUES (1, 1);
                    """)
        }
        m.registerMigration("v3: skip records") { db in
            // One row per (movie, space); space '' is the poster's own record (a primary key column cannot be NULL).
            // Times are Unix seconds.
            try db.execute(
                sql: """
                    CREATE TABLE poster_skip (
                        movie_id INTEGER NOT NULL REFERENCES movie(id) ON DELETE CASCADE,
                        space TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        http_status INTEGER,
                        message TEXT NOT NULL,
                        poster_path TEXT,
                        source TEXT,
                        identity TEXT,
                        attempts INTEGER NOT NULL CHECK (attempts >= 1),
                        first_failed_at REAL NOT NULL,
                        last_attempt_at REAL NOT NULL,
                        PRIMARY KEY (movie_id, space)
                    );
                    CREATE INDEX poster_skip_by_reason ON poster_skip(reason);
                    """)
        }
        m.registerMigration("v4: pinecone indexes") { db in try Self.createRecordTables(db) }
        m.registerMigration("v5: catalogue sources and sync state") { db in
            try db.execute(sql: SQLiteVectorStore.catalogueSchema)
        }
        m.registerMigration("v6: neighbour lists") { db in try Self.createNeighbourListTable(db) }
        m.registerMigration("v7: store instance id") { db in try Self.createStoreInstance(db) }
        return m
    }

    // MARK: Writes

    @discardableResult
    public func registerSpace(_ space: VectorSpace, identity: ModelIdentity) async throws -> SpaceStats {
        guard !space.name.isEmpty else { throw StoreError.invalidSpace("empty name") }
        guard space.dimension > 0, space.dimension <= 1 << 20 else {
            throw StoreError.invalidSpace("dimension \(space.dimension) out of range 1...\(1 << 20)")
        }
        return try await write { db in
            var loaded: PendingSpace?
            var revision = (before: UInt64(0), after: UInt64(0))
            let stats: SpaceStats = try db.inTransactionReturning {
                if let row = try Row.fetchOne(
                    db, sql: "SELECT dimension, metric, identity FROM vector_space WHERE name = ?",
                    arguments: [space.name])
                {
                    let existing = try Self.space(named: space.name, from: row)
                    guard existing.space == space else {
                        throw StoreError.spaceConflict(existing: existing.space, requested: space)
                    }
                    if existing.identity != identity {
                        revision = try Self.bumpRevision(db)
                        try db.execute(
                            sql: "UPDATE vector_space SET identity = ? WHERE name = ?",
                            arguments: [identity.storedForm, space.name])
                        // The lists ranked the old model's vectors; the new model's get theirs as they are stored.
                        try db.execute(sql: "DELETE FROM neighbour_list WHERE space = ?", arguments: [space.name])
                        loaded = try Self.loadSpace(db, space: space, identity: identity)
                    }
                } else {
                    revision = try Self.bumpRevision(db)
                    try db.execute(
                        sql: "INSERT INTO vector_space (name, dimension, metric, identity) VALUES (?, ?, ?, ?)",
                        arguments: [space.name, space.dimension, space.metric.rawValue, identity.storedForm])
                    loaded = PendingSpace(
                        space: space, identity: identity,
                        storage: MatrixStorage(dimension: space.dimension, capacityRows: 64), ids: [], fields: [])
                }
                return try Self.spaceStats(db, space: space, identity: identity)
            }
            if revision.after == 0, self.current.value.spaces[space.name]?.identity != identity {
                // Unchanged in the file, but created or switched by another instance since our indexes were loaded.
                try self.reload(db)
            }
            self.publish(db, revision: revision) { loaded.map { self.current.value.installing($0) } }
            return stats
        }
    }

    public func upsertMovies(_ movies: [Movie]) async throws {
        guard !movies.isEmpty else { return }
        for m in movies where m.id < 0 {
            throw StoreError.invalidMovie(m.id, reason: "TMDB ids are non-negative")
        }
        try await write { db in
            let revision = try db.inTransactionReturning {
                let revision = try Self.bumpRevision(db)
                try Self.writeMovies(db, movies)
                return revision
            }
            self.publish(db, revision: revision) { self.current.value.updatingMovies(movies.map(MovieFilterFields.init)) }
        }
    }

    /// Inserts or replaces movie rows, inside the caller's transaction.
    static func writeMovies(_ db: Database, _ movies: [Movie]) throws {
        let stmt = try db.cachedStatement(
            sql: """
                INSERT INTO movie (id, title, original_title, overview, release_date, poster_path,
                    backdrop_path, genre_ids, original_language, popularity, vote_average, vote_count, adult,
                    video, popularity_rank)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET
                    title = excluded.title, original_title = excluded.original_title,
                    overview = excluded.overview, release_date = excluded.release_date,
                    poster_path = excluded.poster_path, backdrop_path = excluded.backdrop_path,
                    genre_ids = excluded.genre_ids, original_language = excluded.original_language,
                    popularity = excluded.popularity, vote_average = excluded.vote_average,
                    vote_count = excluded.vote_count, adult = excluded.adult, video = excluded.video,
                    popularity_rank = excluded.popularity_rank
                """)
        for m in movies {
            let genres = "[" + m.genreIDs.map(String.init).joined(separator: ",") + "]"
            let args: [(any DatabaseValueConvertible)?] = [
                m.id, m.title, m.originalTitle, m.overview, m.releaseDate, m.posterPath, m.backdropPath,
                genres, m.originalLanguage, m.popularity, m.voteAverage, m.voteCount, m.adult, m.video,
                m.popularityRank,
            ]
            try stmt.execute(arguments: StatementArguments(args))
        }
    }

    public func upsertEmbeddings(_ embeddings: [EmbeddingInput], space name: String, identity: ModelIdentity)
        async throws
    {
        guard !embeddings.isEmpty else { return }
        try await refreshIfChanged()
        let snapshot = current.value
        guard let index = snapshot.spaces[name] else { throw StoreError.unknownSpace(name) }
        for e in embeddings { try index.space.validate(e.vector) }
        try await write { db in
            let (next, revision) = try db.inTransactionReturning {
                let revision = try Self.bumpRevision(db)
                // The lists are derived from the space as it is in the file just before this write, so the snapshot
                // they start from must be that state: reload it when someone else has committed since ours.
                let base = revision.before == self.loadedRevision.value ? self.current.value : try Self.loadSnapshot(db)
                // Re-read the space inside the transaction: another process may have switched its identity.
                guard let row = try Row.fetchOne(
                    db, sql: "SELECT dimension, metric, identity FROM vector_space WHERE name = ?", arguments: [name])
                else { throw StoreError.unknownSpace(name) }
                let stored = try Self.space(named: name, from: row)
                guard stored.identity == identity else {
                    throw StoreError.identityMismatch(space: name, current: stored.identity, given: identity)
                }
                let movieStmt = try db.cachedStatement(
                    sql: """
                        SELECT release_date, genre_ids, original_language, adult, vote_count FROM movie WHERE id = ?
                        """)
                let insert = try db.cachedStatement(
                    sql: """
                        INSERT INTO embedding (space, movie_id, identity, vector) VALUES (?, ?, ?, ?)
                        ON CONFLICT(space, movie_id) DO UPDATE SET identity = excluded.identity, vector = excluded.vector
                        """)
                // A stored vector settles the pair's skip record and the poster's own one.
                let settle = try db.cachedStatement(
                    sql: "DELETE FROM poster_skip WHERE movie_id = ? AND space IN (?, ?)")
                var out: [(id: MovieID, vector: [Float], fields: MovieFilterFields)] = []
                out.reserveCapacity(embeddings.count)
                let identityText = identity.storedForm
                for e in embeddings {
                    // Item by item, so a missing movie aborts the batch midway and the rollback undoes the rest.
                    guard let m = try Row.fetchOne(movieStmt, arguments: [e.movieID]) else {
                        throw StoreError.unknownMovie(e.movieID)
                    }
                    try insert.execute(arguments: [name, e.movieID, identityText, VectorBlob.encode(e.vector)])
                    try settle.execute(arguments: [e.movieID, name, SkipKey.posterSpaceColumn])
                    out.append((e.movieID, e.vector, Self.filterFields(id: e.movieID, row: m)))
                }
                return (try self.storingNeighbours(db, base: base, upserting: out, space: name), revision)
            }
            self.current.set(next)
            self.loadedRevision.set(revision.after)
            self.foldDeltaIfLarge(db)
        }
    }

    @discardableResult
    public func deleteMovies(ids: [MovieID]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await write { db in
            let (deleted, next, revision) = try db.inTransactionReturning {
                let revision = try Self.bumpRevision(db)
                let base = revision.before == self.loadedRevision.value ? self.current.value : try Self.loadSnapshot(db)
                var n = 0
                let stmt = try db.cachedStatement(sql: "DELETE FROM movie WHERE id = ?")
                for id in ids {
                    try stmt.execute(arguments: [id])
                    n += db.changesCount
                }
                return (n, try self.storingNeighbours(db, base: base, deleting: ids), revision)
            }
            self.current.set(next)
            self.loadedRevision.set(revision.after)
            self.foldDeltaIfLarge(db)
            return deleted
        }
    }

    public func recordSkips(_ skips: [PosterSkip], at time: Date) async throws {
        guard !skips.isEmpty else { return }
        for skip in skips { try skip.validate() }
        let seconds = time.timeIntervalSince1970
        let rows = PosterSkip.lastPerKey(skips).map { (skip: $0, attempts: 1, first: seconds, last: seconds) }
        // Another poster_path is another poster: its count starts again.
        try await writeSkips(rows, onConflict: """
            attempts = CASE WHEN poster_skip.poster_path IS excluded.poster_path
                THEN poster_skip.attempts + 1 ELSE 1 END,
            first_failed_at = CASE WHEN poster_skip.poster_path IS excluded.poster_path
                THEN poster_skip.first_failed_at ELSE excluded.first_failed_at END,
            """)
    }

    public func importSkipRecords(_ records: [SkipRecord]) async throws {
        guard !records.isEmpty else { return }
        for record in records { try record.validate() }
        let rows = SkipRecord.lastPerKey(records).map {
            (skip: $0.skip, attempts: $0.attempts, first: $0.firstFailedAt.timeIntervalSince1970,
             last: $0.lastAttemptAt.timeIntervalSince1970)
        }
        try await writeSkips(rows, onConflict: """
            attempts = excluded.attempts, first_failed_at = excluded.first_failed_at,
            """)
    }

    /// Inserts skip rows in one transaction; an existing key takes `onConflict` (assignments ending with a comma)
    /// for its count and first time, and the row's details and last time.
    private func writeSkips(_ rows: [(skip: PosterSkip, attempts: Int, first: Double, last: Double)],
                            onConflict: String) async throws {
        try await write { db in
            let revision = try db.inTransactionReturning {
                let revision = try Self.bumpRevision(db)
                let exists = try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM movie WHERE id = ?)")
                let upsert = try db.makeStatement(
                    sql: """
                        INSERT INTO poster_skip (movie_id, space, reason, http_status, message, poster_path, source,
                            identity, attempts, first_failed_at, last_attempt_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT(movie_id, space) DO UPDATE SET \(onConflict)
                            reason = excluded.reason, http_status = excluded.http_status,
                            message = excluded.message, poster_path = excluded.poster_path,
                            source = excluded.source, identity = excluded.identity,
                            last_attempt_at = excluded.last_attempt_at
                        """)
                for row in rows {
                    let skip = row.skip
                    guard try Bool.fetchOne(exists, arguments: [skip.movieID]) == true else {
                        throw StoreError.unknownMovie(skip.movieID)
                    }
                    let args: [(any DatabaseValueConvertible)?] = [
                        skip.movieID, skip.space ?? SkipKey.posterSpaceColumn, skip.reason.rawValue, skip.httpStatus,
                        skip.message, skip.posterPath, skip.source, skip.identity?.storedForm, row.attempts,
                        row.first, row.last,
                    ]
                    try upsert.execute(arguments: StatementArguments(args))
                }
                return revision
            }
            self.publish(db, revision: revision) { nil }
        }
    }

    public func skipRecords(movieIDs: [MovieID]?) async throws -> [SkipRecord] {
        if let movieIDs, movieIDs.isEmpty { return [] }
        return try await read { db in
            let columns = """
                SELECT movie_id, space, reason, http_status, message, poster_path, source, identity, attempts,
                    first_failed_at, last_attempt_at FROM poster_skip
                """
            var records: [SkipRecord] = []
            if let movieIDs {
                for chunk in stride(from: 0, to: movieIDs.count, by: 500).map({ Array(movieIDs[$0..<min($0 + 500, movieIDs.count)]) }) {
                    let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                    for row in try Row.fetchAll(
                        db, sql: "\(columns) WHERE movie_id IN (\(marks))", arguments: StatementArguments(chunk))
                    {
                        records.append(try Self.skipRecord(from: row))
                    }
                }
            } else {
                for row in try Row.fetchAll(db, sql: columns) { records.append(try Self.skipRecord(from: row)) }
            }
            // '' (the poster's own record) sorts before every space name.
            return records.sorted {
                ($0.skip.movieID, $0.skip.space ?? "") < ($1.skip.movieID, $1.skip.space ?? "")
            }
        }
    }

    static func skipRecord(from row: Row) throws -> SkipRecord {
        let id: MovieID = row["movie_id"]
        let reasonText: String = row["reason"]
        guard let reason = SkipReason(rawValue: reasonText) else {
            throw StoreError.corrupt("skip record of movie \(id) has unknown reason '\(reasonText)'")
        }
        let space: String = row["space"]
        let identityText: String? = row["identity"]
        var identity: ModelIdentity?
        if let identityText {
            guard let parsed = ModelIdentity(storedForm: identityText) else {
                throw StoreError.corrupt("skip record of movie \(id) has unparsable identity '\(identityText)'")
            }
            identity = parsed
        }
        let skip = PosterSkip(
            movieID: id, space: space == SkipKey.posterSpaceColumn ? nil : space, reason: reason,
            httpStatus: row["http_status"], message: row["message"], posterPath: row["poster_path"],
            source: row["source"], identity: identity)
        return SkipRecord(
            skip: skip, attempts: row["attempts"],
            firstFailedAt: Date(timeIntervalSince1970: row["first_failed_at"]),
            lastAttemptAt: Date(timeIntervalSince1970: row["last_attempt_at"]))
    }

    static func skipStats(_ db: Database) throws -> SkipStats {
        var byReason: [String: Int] = [:]
        var records = 0
        for row in try Row.fetchAll(db, sql: "SELECT reason, count(*) AS n FROM poster_skip GROUP BY reason") {
            let n: Int = row["n"]
            byReason[row["reason"]] = n
            records += n
        }
        let movies = try Int.fetchOne(db, sql: "SELECT count(DISTINCT movie_id) FROM poster_skip") ?? 0
        return SkipStats(records: records, movies: movies, byReason: byReason)
    }

    // MARK: Reads

    public func fetchMovies(ids: [MovieID]) async throws -> [Movie] {
        guard !ids.isEmpty else { return [] }
        let found: [MovieID: Movie] = try await read { db in
            var out: [MovieID: Movie] = [:]
            // Chunks stay under SQLite's bound-parameter limit.
            for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                for row in try Row.fetchAll(
                    db, sql: "SELECT * FROM movie WHERE id IN (\(marks))", arguments: StatementArguments(chunk))
                {
                    let m = try Self.movie(from: row)
                    out[m.id] = m
                }
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

    /// Approximate (`exact` false) only for queries for at most `ListGraphSearch.beamWidth` films on spaces of
    /// `approximateSearchFrom` films or more whose lists are all in place, unfiltered or with a filter passing more
    /// than 1 row in `SpaceIndex.prefilterBelowFraction`; everything else scans (a narrow filter scores its rows only).
    public func query(space name: String, vector: [Float], k: Int, filter: SearchFilter, exact: Bool) async throws
        -> [SearchMatch]
    {
        try StoreError.validate(k: k)
        try await refreshIfChanged()
        let revision = loadedRevision.value
        let snapshot = current.value
        guard let index = snapshot.spaces[name] else { throw StoreError.unknownSpace(name) }
        try index.space.validate(vector)
        let compiled = filter.isEmpty ? nil : snapshot.interner.compile(filter)
        // A narrow filter's rows, found once: they decide against the lists and are what the scan then scores.
        var narrowRows: [Int]? = nil
        if !exact, let from = approximateSearchFrom, index.liveCount >= from, k <= ListGraphSearch.beamWidth {
            if let compiled { narrowRows = index.narrowFilterRows(compiled) }
            if narrowRows == nil,
                let found = try await graphSearch(
                    vector, k: k, filter: compiled, in: index, snapshot: snapshot, revision: revision)
            {
                return found
            }
        }
        return index.search(vector, k: k, filter: compiled, narrowRows: narrowRows, maxThreads: searchThreads)
    }

    public func query(space name: String, movieID id: MovieID, k: Int, filter: SearchFilter, excludeSelf: Bool)
        async throws -> [SearchMatch]
    {
        try StoreError.validate(k: k)
        try await refreshIfChanged()
        // Revision first: `publish` sets the snapshot before the revision, so this snapshot is at least as new.
        let revision = loadedRevision.value
        let snapshot = current.value
        guard let index = snapshot.spaces[name] else { throw StoreError.unknownSpace(name) }
        guard let row = index.rowOfMovie[id], let vector = index.vector(of: id) else {
            let exists = try await read { db in
                try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM movie WHERE id = ?)", arguments: [id])
            }
            if exists == true { throw StoreError.noEmbedding(movieID: id, space: name) }
            throw StoreError.unknownMovie(id)
        }
        let compiled = filter.isEmpty ? nil : snapshot.interner.compile(filter)
        var result: [SearchMatch] = []
        var remaining = k
        if !excludeSelf, compiled?.accepts(index.rowMeta[row], id: Int64(id)) ?? true {
            // The movie's own score, computed by the same kernel path as every other row.
            result.append(SearchMatch(movieID: id, score: index.score(row: row, query: vector)))
            remaining -= 1
        }
        if remaining > 0 {
            if let listed = try await listedNeighbours(
                of: id, in: index, revision: revision, count: remaining, filter: compiled)
            {
                result += listed
            } else {
                result += index.search(
                    vector, k: remaining, filter: compiled, excludedRow: row, maxThreads: searchThreads)
            }
        }
        return result
    }

    public func searchTitles(_ text: String, limit: Int) async throws -> [Movie] {
        guard limit > 0 else { return [] }
        // Accent-insensitive matching is done in Swift: SQLite's LIKE folds ASCII case only. A full pass over the
        // titles is cheap at the catalogue sizes this store is for (10k movies: a few milliseconds).
        return try await read { db in
            var found: [Movie] = []
            let rows = try Row.fetchCursor(
                db, sql: "SELECT * FROM movie ORDER BY popularity_rank IS NULL, popularity_rank, id")
            while let row = try rows.next() {
                let movie = try Self.movie(from: row)
                if movie.labelMatches(text) {
                    found.append(movie)
                    if found.count == limit { break }
                }
            }
            return found
        }
    }

    public func movieCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM movie") ?? 0 }
    }

    public func stats() async throws -> StoreStats {
        let (movies, spaces, skips) = try await read { db in
            let movies = try Int.fetchOne(db, sql: "SELECT count(*) FROM movie") ?? 0
            var spaces: [SpaceStats] = []
            for row in try Row.fetchAll(db, sql: "SELECT name, dimension, metric, identity FROM vector_space ORDER BY name") {
                let name: String = row["name"]
                let s = try Self.space(named: name, from: row)
                spaces.append(try Self.spaceStats(db, space: s.space, identity: s.identity))
            }
            return (movies, spaces, try Self.skipStats(db))
        }
        var bytes = 0
        for suffix in ["", "-wal"] {
            if let size = try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size] as? Int {
                bytes += size
            }
        }
        return StoreStats(movies: movies, spaces: spaces, bytesOnDisk: bytes, skips: skips)
    }

    public func completedPairs(movieIDs: [MovieID], spaces: [String]) async throws -> Set<EmbeddingKey> {
        try await refreshIfChanged()
        let snapshot = current.value
        var done = Set<EmbeddingKey>()
        for name in spaces {
            guard let index = snapshot.spaces[name] else { throw StoreError.unknownSpace(name) }
            for id in movieIDs where index.rowOfMovie[id] != nil {
                done.insert(EmbeddingKey(movieID: id, space: name))
            }
        }
        return done
    }

    public func fetchVectors(ids: [MovieID], space name: String) async throws -> [MovieID: [Float]] {
        try await refreshIfChanged()
        guard let index = current.value.spaces[name] else { throw StoreError.unknownSpace(name) }
        var out: [MovieID: [Float]] = [:]
        for id in ids { if let v = index.vector(of: id) { out[id] = v } }
        return out
    }

    public func revision() async throws -> UInt64 {
        try await refreshIfChanged()
        return loadedRevision.value
    }

    /// Reloads the in-memory indexes from the file now if another instance or process has committed since they were
    /// loaded (regardless of `externalCheckInterval`). Returns whether it reloaded.
    @discardableResult
    public func reloadIfChanged() async throws -> Bool {
        try await refreshIfChanged(force: true)
    }

    // MARK: Helpers

    /// Called only from inside a GRDB write closure, after the commit of a transaction that moved the file's revision
    /// from `revision.before` to `revision.after` (both 0 when it changed nothing), so one writer at a time derives the
    /// next snapshot from the current one; the expensive part ran before this call, outside the lock readers take.
    /// When someone else had committed since our snapshot (before != the loaded revision), patching it would miss their
    /// changes: reload from the file instead.
    func publish(_ db: Database, revision: (before: UInt64, after: UInt64), next: () -> StoreSnapshot?) {
        guard revision.after != 0 else { return }
        if revision.before == loadedRevision.value {
            if let snapshot = next() { current.set(snapshot) }
            loadedRevision.set(revision.after)
        } else {
            // Best effort: if the reload fails, the next check retries (the loaded revision still differs).
            _ = try? reload(db)
        }
    }

    /// Loads the snapshot and revision from the file in one read transaction on `db` (the writer connection, so no
    /// write of this instance interleaves) and publishes them. `avoiding`: decode the rows, not the index file, for
    /// this reason (the file was found damaged).
    @discardableResult
    func reload(_ db: Database, avoiding damage: IndexFileError? = nil) throws -> LoadedSnapshot? {
        var loaded: LoadedSnapshot?
        try db.inTransaction(.deferred) {
            // A process that changed the store may have written the index file for its revision: map it if so.
            let file = indexFilePolicy == .off || damage != nil ? nil : indexFilePath
            loaded = try Self.loadSnapshot(db, indexFile: file)
            return .commit
        }
        guard var loaded else { return nil }
        if let damage { loaded.load = .rows(because: damage) }
        current.set(loaded.snapshot)
        loadedRevision.set(loaded.stamp.revision)
        indexLoadState.set(loaded.load)
        if let verification = loaded.verification { verifyInBackground(verification) }
        return loaded
    }

    /// Looks at the file's revision (at most once per `externalCheckInterval` unless `force`) and reloads when another
    /// instance has committed.
    @discardableResult
    func refreshIfChanged(force: Bool = false) async throws -> Bool {
        let now = ContinuousClock.now
        let due: Bool = checks.update { state in
            guard force || now >= state.nextCheck else { return false }
            state.nextCheck = now + externalCheckInterval
            return true
        }
        guard due else { return false }
        let onDisk = try await read { db in try Self.readRevision(db) }
        guard onDisk != loadedRevision.value else { return false }
        guard force || now >= checks.value.nextReloadAllowed else { return false }
        let took: Duration? = try await write { db in
            guard try Self.readRevision(db) != self.loadedRevision.value else { return nil }
            let started = ContinuousClock.now
            try self.reload(db)
            return ContinuousClock.now - started
        }
        if let took, externalCheckInterval > .zero {
            // The reload's own time (not the wait for the writer), so a busy process does not stop following.
            checks.update { $0.nextReloadAllowed = ContinuousClock.now + took * 4 }
        }
        return took != nil
    }

    static func readRevision(_ db: Database) throws -> UInt64 {
        UInt64(truncatingIfNeeded: try Int64.fetchOne(db, sql: "SELECT value FROM store_revision WHERE id = 1") ?? 0)
    }

    /// Inside a write transaction: moves the revision on by one; returns the values before and after.
    static func bumpRevision(_ db: Database) throws -> (before: UInt64, after: UInt64) {
        let before = try readRevision(db)
        try db.execute(sql: "UPDATE store_revision SET value = value + 1 WHERE id = 1")
        return (before, before + 1)
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.writeWithoutTransaction(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.database("\(error)")
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.database("\(error)")
        }
    }


    static func space(named name: String, from row: Row) throws -> (space: VectorSpace, identity: ModelIdentity) {
        let dimension: Int = row["dimension"]
        let metricText: String = row["metric"]
        let identityText: String = row["identity"]
        guard let metric = DistanceMetric(rawValue: metricText) else {
            throw StoreError.corrupt("space '\(name)' has unknown metric '\(metricText)'")
        }
        guard let identity = ModelIdentity(storedForm: identityText) else {
            throw StoreError.corrupt("space '\(name)' has unparsable identity '\(identityText)'")
        }
        return (VectorSpace(name: name, dimension: dimension, metric: metric), identity)
    }

    static func spaceStats(_ db: Database, space: VectorSpace, identity: ModelIdentity) throws -> SpaceStats {
        let row = try Row.fetchOne(
            db,
            sql: """
                SELECT coalesce(sum(identity = ?), 0) AS current, coalesce(sum(identity != ?), 0) AS stale
                FROM embedding WHERE space = ?
                """,
            arguments: [identity.storedForm, identity.storedForm, space.name])
        return SpaceStats(
            space: space, identity: identity, vectors: row?["current"] ?? 0, staleVectors: row?["stale"] ?? 0)
    }

    static func parseGenres(_ text: String) -> [Int] {
        text.split(whereSeparator: { $0 == "[" || $0 == "]" || $0 == "," || $0 == " " }).compactMap { Int($0) }
    }

    static func filterFields(id: MovieID, row: Row) -> MovieFilterFields {
        let date: String? = row["release_date"]
        let genres: String = row["genre_ids"] ?? "[]"
        let probe = Movie(id: id, title: "", releaseDate: date)
        return MovieFilterFields(
            id: id, releaseYear: probe.releaseYear, genreIDs: parseGenres(genres),
            originalLanguage: row["original_language"], adult: row["adult"], voteCount: row["vote_count"])
    }

    static func movie(from row: Row) throws -> Movie {
        let genres: String = row["genre_ids"] ?? "[]"
        return Movie(
            id: row["id"], title: row["title"], originalTitle: row["original_title"], overview: row["overview"],
            releaseDate: row["release_date"], posterPath: row["poster_path"], backdropPath: row["backdrop_path"],
            genreIDs: parseGenres(genres), originalLanguage: row["original_language"], popularity: row["popularity"],
            voteAverage: row["vote_average"], voteCount: row["vote_count"], adult: row["adult"], video: row["video"],
            popularityRank: row["popularity_rank"])
    }

    /// Loads one space's current-identity vectors (ordered by movie id) and their movies' filter fields.
    static func loadSpace(_ db: Database, space: VectorSpace, identity: ModelIdentity) throws -> PendingSpace {
        let count =
            try Int.fetchOne(
                db, sql: "SELECT count(*) FROM embedding WHERE space = ? AND identity = ?",
                arguments: [space.name, identity.storedForm]) ?? 0
        let storage = MatrixStorage(dimension: space.dimension, capacityRows: max(64, count + count / 4))
        var ids: [MovieID] = []
        var fields: [MovieFilterFields] = []
        ids.reserveCapacity(count)
        fields.reserveCapacity(count)
        let rows = try Row.fetchCursor(
            db,
            sql: """
                SELECT e.movie_id, e.vector, m.release_date, m.genre_ids, m.original_language, m.adult, m.vote_count
                FROM embedding e JOIN movie m ON m.id = e.movie_id
                WHERE e.space = ? AND e.identity = ? ORDER BY e.movie_id
                """,
            arguments: [space.name, identity.storedForm])
        while let row = try rows.next() {
            let id: MovieID = row["movie_id"]
            let r = ids.count
            guard r < storage.capacityRows else { throw StoreError.corrupt("space '\(space.name)' grew while loading") }
            let blob: Data = row["vector"]
            try VectorBlob.decode(blob, into: storage.row(r), dimension: space.dimension, space: space.name, id: id)
            ids.append(id)
            fields.append(filterFields(id: id, row: row))
        }
        var pending = PendingSpace(space: space, identity: identity, storage: storage, ids: ids, fields: fields)
        pending.neighbourBounds = try loadNeighbourBounds(db, space: space.name)
        return pending
    }

    static func loadSnapshot(_ db: Database) throws -> StoreSnapshot {
        var snapshot = StoreSnapshot.empty
        for row in try Row.fetchAll(db, sql: "SELECT name, dimension, metric, identity FROM vector_space") {
            let name: String = row["name"]
            let s = try space(named: name, from: row)
            snapshot = snapshot.installing(try loadSpace(db, space: s.space, identity: s.identity))
        }
        return snapshot
    }
}

extension Database {
    /// Runs `body` in an immediate transaction, returning its value; rolls back and rethrows on error.
    func inTransactionReturning<T>(_ body: () throws -> T) throws -> T {
        var result: T?
        try inTransaction(.immediate) {
            result = try body()
            return .commit
        }
        guard let result else { throw StoreError.database("transaction returned no value") }
        return result
    }
}
