// The catalogue's own records, beside the movies and vectors: where each movie was listed and when it was last seen,
// which TMDB sources and language the catalogue is built from, and how far `postersim sync` has followed TMDB's
// change feed.
import Foundation
import PosterSimCore

/// A TMDB source an ingest used, as the store keeps it: `key` names the source (`list:popular`, `trending:week`,
/// `discover:…`, `ids`), `spec` is the whole request (pages, filters, ids) in the ingest's own text form, so a later
/// sync can ask the same again. The store does not interpret either.
public struct CatalogueSourceRecord: Sendable, Hashable, Codable {
    public var key: String
    public var spec: String

    public init(key: String, spec: String) {
        self.key = key
        self.spec = spec
    }
}

/// The catalogue as a whole.
public struct CatalogueState: Sendable, Hashable, Codable {
    /// TMDB `language` of the titles and overviews (e.g. `en-US`); nil until the first ingest says.
    public var language: String?
    /// The sources earlier ingests used, by key.
    public var sources: [CatalogueSourceRecord]
    /// The time up to which TMDB's changes are reflected in the store: the start of the last sync (or first
    /// ingest) whose writes all committed. nil before any.
    public var syncWatermark: Date?

    public init(language: String? = nil, sources: [CatalogueSourceRecord] = [], syncWatermark: Date? = nil) {
        self.language = language
        self.sources = sources
        self.syncWatermark = syncWatermark
    }
}

/// Where one movie came from: every source key that listed it, and when.
public struct CatalogueEntry: Sendable, Hashable, Codable {
    public var movieID: MovieID
    /// Source keys, sorted.
    public var sources: [String]
    public var firstSeenAt: Date
    public var lastSeenAt: Date

    public init(movieID: MovieID, sources: [String], firstSeenAt: Date, lastSeenAt: Date) {
        self.movieID = movieID
        self.sources = sources
        self.firstSeenAt = firstSeenAt
        self.lastSeenAt = lastSeenAt
    }
}

/// What `refreshMovies` changed, decided inside its transaction.
public struct CatalogueRefresh: Sendable, Hashable, Codable {
    /// Movies the store did not hold.
    public var added: [MovieID] = []
    /// Movies held before whose stored fields differ from the new ones (poster changes included; a changed
    /// `popularityRank` alone does not count).
    public var metadataChanged: [MovieID] = []
    /// Movies held before whose `poster_path` changed: their vectors were deleted.
    public var posterChanged: [MovieID] = []

    public init(added: [MovieID] = [], metadataChanged: [MovieID] = [], posterChanged: [MovieID] = []) {
        self.added = added
        self.metadataChanged = metadataChanged
        self.posterChanged = posterChanged
    }

    public mutating func merge(_ other: CatalogueRefresh) {
        added += other.added
        metadataChanged += other.metadataChanged
        posterChanged += other.posterChanged
    }
}

/// A `VectorStore` that also keeps the catalogue's records, for ingest from several TMDB sources and for
/// `postersim sync`. `SQLiteVectorStore` and `PostgresVectorStore` implement it and pass the same contract tests.
///
/// Guarantees, besides those of `VectorStore` (each call one transaction, snapshot reads, durability):
/// - **A changed poster is a missing vector.** `refreshMovies` deletes, in its own transaction, every vector of a
///   movie whose `poster_path` differs from the stored one (nil and a value differ): a vector describes the poster it
///   was made from. So a run killed after the metadata committed still finds the pair missing (`completedPairs`)
///   and embeds it again; nothing records "to do" outside the data itself.
/// - **Ranks are kept.** A movie given with `popularityRank == nil` keeps its stored rank (sources other than the
///   popular list have none); a rank that is set replaces it.
/// - **One language.** `adoptCatalogue` sets the language once; another language later is `languageMismatch`.
/// - Sightings and sources are records only: deleting a movie deletes its sightings; the watermark moves only when
///   `setSyncWatermark` is called (callers call it after their writes committed).
public protocol CatalogueStore: VectorStore {
    /// Language, sources and watermark.
    func catalogueState() async throws -> CatalogueState

    /// Sets the language if none is recorded (throws `languageMismatch` if another is) and adds or replaces
    /// `sources` by key, in one transaction. Returns the new state.
    @discardableResult
    func adoptCatalogue(language: String, sources: [CatalogueSourceRecord]) async throws -> CatalogueState

    /// Upserts `movies` (a repeated id: the last wins), deletes the vectors of those whose `poster_path` changed, and
    /// records that `source` listed each at `time` (first sighting kept, last one moved), in one transaction.
    @discardableResult
    func refreshMovies(_ movies: [Movie], source: String, at time: Date) async throws -> CatalogueRefresh

    /// The catalogue entries of these movies (nil: all), by movie id. A movie stored by a plain `upsertMovies` and
    /// never refreshed has none.
    func catalogueEntries(movieIDs: [MovieID]?) async throws -> [CatalogueEntry]

    /// Every movie id in the store, ascending.
    func allMovieIDs() async throws -> [MovieID]

    /// Records that TMDB's changes up to `time` are reflected (the next sync reads the change feed from there).
    func setSyncWatermark(_ time: Date) async throws
}

/// Splits refreshed movies into added, changed and changed-poster, comparing each with its stored version. The one
/// comparison both stores use inside their transactions.
public struct CatalogueDiff {
    public private(set) var refresh = CatalogueRefresh()
    /// The movies to write (stored ranks kept), one per id, in first-occurrence order.
    public private(set) var movies: [Movie] = []

    public init(new: [Movie], stored: [MovieID: Movie]) {
        var last: [MovieID: Movie] = [:]
        var order: [MovieID] = []
        for m in new {
            if last.updateValue(m, forKey: m.id) == nil { order.append(m.id) }
        }
        for id in order {
            guard let m = last[id] else { continue }
            let old = stored[id]
            let merged = merged(stored: old, new: m)
            movies.append(merged)
            guard let old else {
                refresh.added.append(id)
                continue
            }
            // A new rank alone (lists reorder every day) is written but is not a metadata change.
            var rerankedOld = old
            rerankedOld.popularityRank = merged.popularityRank
            if rerankedOld != merged { refresh.metadataChanged.append(id) }
            if old.posterPath != merged.posterPath { refresh.posterChanged.append(id) }
        }
    }

    private func merged(stored: Movie?, new: Movie) -> Movie {
        var m = new
        if m.popularityRank == nil { m.popularityRank = stored?.popularityRank }
        return m
    }
}

// Input checks and the grouping both stores share.
extension CatalogueStore {
    public static func validateCatalogue(language: String, sources: [CatalogueSourceRecord]) throws {
        guard !language.isEmpty else { throw StoreError.invalidCatalogue("empty language") }
        for s in sources where s.key.isEmpty {
            throw StoreError.invalidCatalogue("a source needs a key (spec '\(s.spec)')")
        }
    }

    public static func validateRefresh(_ movies: [Movie], source: String) throws {
        guard !source.isEmpty else { throw StoreError.invalidCatalogue("a sighting needs a source") }
        for m in movies where m.id < 0 {
            throw StoreError.invalidMovie(m.id, reason: "TMDB ids are non-negative")
        }
    }
}

extension CatalogueEntry {
    /// One entry per movie from (movie, source, first, last) rows, ordered by movie id, sources sorted.
    public static func grouping(_ rows: [(MovieID, String, Date, Date)]) -> [CatalogueEntry] {
        var byMovie: [MovieID: CatalogueEntry] = [:]
        for (id, source, first, last) in rows {
            if var e = byMovie[id] {
                e.sources.append(source)
                e.firstSeenAt = min(e.firstSeenAt, first)
                e.lastSeenAt = max(e.lastSeenAt, last)
                byMovie[id] = e
            } else {
                byMovie[id] = CatalogueEntry(movieID: id, sources: [source], firstSeenAt: first, lastSeenAt: last)
            }
        }
        return byMovie.keys.sorted().compactMap { id in
            byMovie[id].map { var e = $0; e.sources.sort(); return e }
        }
    }
}
