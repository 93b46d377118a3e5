import PosterSimCore
import Foundation

/// A store of movies and their embeddings in named vector spaces, with exact (or, for a server store, documented)
/// top-k similarity search. `SQLiteVectorStore` is the embedded implementation; a PostgreSQL store implements the same
/// protocol and passes the same contract tests.
///
/// Guarantees every implementation gives:
///
/// - **Atomic writes.** Each mutating call is one transaction: `upsertMovies`, `upsertEmbeddings` (a whole batch),
///   `deleteMovies`, `registerSpace` and `recordSkips` either take effect completely or not at all. When one throws, the store is
///   as it was before the call: a batch that fails on its fifth item leaves none of the first four.
/// - **Snapshot reads.** Every read (fetch, query, count, stats, completed pairs) sees the state after some set of
///   completed writes, never part of a write in progress: a query running while a batch is being written either sees
///   the whole batch or none of it. A read that starts after a write returned sees that write (read-your-writes).
/// - **Serialised writes.** Writes from concurrent tasks are applied one after the other; none is lost.
/// - **Deterministic results.** Matches are ordered by score (descending for cosine similarity, ascending for squared
///   euclidean distance), ties broken by ascending movie id.
/// - **No mixing of checkpoints.** Each space has one current `ModelIdentity`. Only embeddings made under it are
///   searchable and count as done; the others are reported as stale until overwritten.
/// - **Durability.** A write that returned survives a crash of the process (for the file store: SQLite WAL commit).
///
/// Errors are `StoreError` values (dimension mismatch, unknown movie/space, identity mismatch...). Bad input never
/// traps.
public protocol VectorStore: Sendable {
    /// Creates `space` with `identity` as its current model, or reopens it. Reopening with the same identity changes
    /// nothing; with another identity it makes every existing embedding of the space stale (they stop being searched
    /// and counted as done, and are replaced as the new model re-embeds the movies). Throws `spaceConflict` when the
    /// space exists with another dimension or metric.
    @discardableResult
    func registerSpace(_ space: VectorSpace, identity: ModelIdentity) async throws -> SpaceStats

    /// Inserts or replaces movies (by id), in one transaction. Replacing keeps the movie's embeddings.
    func upsertMovies(_ movies: [Movie]) async throws

    /// Inserts or replaces the embeddings of a batch of movies in one space, in one transaction (all or nothing).
    /// `identity` must be the space's current identity. Every movie must already exist; every vector must have the
    /// space's dimension and finite components (and, for cosine, a non-zero norm). The same transaction deletes the
    /// skip records this success settles: each movie's record for `space` and its poster's own record (see
    /// `recordSkips`), so a stored vector and a skip record for it never exist together.
    func upsertEmbeddings(_ embeddings: [EmbeddingInput], space: String, identity: ModelIdentity) async throws

    /// The movies with these ids that exist, in the order of `ids` (unknown ids are skipped).
    func fetchMovies(ids: [MovieID]) async throws -> [Movie]

    /// Deletes movies and all their embeddings and skip records, in one transaction. Unknown ids are ignored. Returns how many movies
    /// were deleted.
    @discardableResult
    func deleteMovies(ids: [MovieID]) async throws -> Int

    /// The `k` movies closest to `vector` in `space` that pass `filter`: `query(…, exact: false)`.
    func query(space: String, vector: [Float], k: Int, filter: SearchFilter) async throws -> [SearchMatch]

    /// The `k` movies closest to `vector` in `space` that pass `filter`. With `exact` true the answer is always the
    /// exact one. With `exact` false a store may answer approximately where its documentation says when (the SQLite
    /// store: unfiltered or broadly filtered queries on spaces of `approximateSearchFrom` films or more, by
    /// `ListGraphSearch`); the scores
    /// it returns are still exact for the films it returns. Stores that always scan need not implement it.
    func query(space: String, vector: [Float], k: Int, filter: SearchFilter, exact: Bool) async throws -> [SearchMatch]

    /// The `k` movies closest to movie `id`'s current embedding in `space` that pass `filter`. Unless `excludeSelf`,
    /// the movie itself comes first (if it passes the filter) and counts toward `k`, as in the original service.
    /// Throws `unknownMovie` when no such movie exists and `noEmbedding` when it has no current embedding in the space.
    func query(space: String, movieID id: MovieID, k: Int, filter: SearchFilter, excludeSelf: Bool) async throws
        -> [SearchMatch]

    /// Number of movies.
    func movieCount() async throws -> Int

    /// Per-space counts (current and stale vectors), skip records by reason and, for a file store, its size.
    func stats() async throws -> StoreStats

    /// Movies whose label "Title - YYYY-MM-DD" contains `text`, ignoring case and accents, most popular first
    /// (popularity rank, then id), at most `limit`. The title autocomplete of the original front end.
    func searchTitles(_ text: String, limit: Int) async throws -> [Movie]

    /// Which of `movieIDs` have a current embedding in each of `spaces` (for a resumable ingest).
    func completedPairs(movieIDs: [MovieID], spaces: [String]) async throws -> Set<EmbeddingKey>

    /// Records failed ingest attempts, in one transaction (all or nothing). The store keeps one record per
    /// `SkipKey` (movie, and space or none for the poster itself): a new key is stored with `attempts` 1 and
    /// `firstFailedAt` = `lastAttemptAt` = `time`; an existing one takes the new reason, status, message, source and
    /// identity, `lastAttemptAt` = `time`, and `attempts` + 1 — or 1 with `firstFailedAt` = `time` when the
    /// `posterPath` differs from the recorded one (another poster). A key repeated within `skips` counts once (the
    /// last occurrence wins). Every movie must exist (`unknownMovie` otherwise); a skip's space need not be
    /// registered. Records disappear when the pair later succeeds (`upsertEmbeddings`) or the movie is deleted.
    func recordSkips(_ skips: [PosterSkip], at time: Date) async throws

    /// Stores skip records as they are, attempts and times included, replacing any record with the same key, in one
    /// transaction (all or nothing): how `postersim export` copies them, so copying twice leaves the same records.
    /// A key repeated within `records` counts once (the last wins). Every movie must exist (`unknownMovie`
    /// otherwise); bad records are refused as by `recordSkips`.
    func importSkipRecords(_ records: [SkipRecord]) async throws

    /// The skip records of these movies (`nil`: every record), ordered by movie id, the poster's own record before
    /// the models' records (by space name). Times come back with at least millisecond precision.
    func skipRecords(movieIDs: [MovieID]?) async throws -> [SkipRecord]

    /// The store's revision: changes whenever a write commits, in this process or another; equal values mean
    /// unchanged contents. (Caches of query results key on it.)
    func revision() async throws -> UInt64

    /// The current vectors of these movies in `space` (movies without one are left out). The HTTP API returns them
    /// as a match's `values` when asked. A store that cannot return vectors keeps the default, which throws.
    func fetchVectors(ids: [MovieID], space: String) async throws -> [MovieID: [Float]]
}

extension VectorStore {
    public func fetchVectors(ids: [MovieID], space: String) async throws -> [MovieID: [Float]] {
        throw StoreError.database("this store does not return stored vectors")
    }

    public func fetchMovie(id: MovieID) async throws -> Movie? {
        try await fetchMovies(ids: [id]).first
    }

    public func query(space: String, vector: [Float], k: Int) async throws -> [SearchMatch] {
        try await query(space: space, vector: vector, k: k, filter: .none)
    }

    /// Stores whose `query(space:vector:k:filter:)` is always exact.
    public func query(space: String, vector: [Float], k: Int, filter: SearchFilter, exact: Bool) async throws
        -> [SearchMatch]
    {
        try await query(space: space, vector: vector, k: k, filter: filter)
    }

    public func query(space: String, movieID id: MovieID, k: Int, excludeSelf: Bool = false) async throws
        -> [SearchMatch]
    {
        try await query(space: space, movieID: id, k: k, filter: .none, excludeSelf: excludeSelf)
    }
}
