// The store's own vocabulary: what goes in (embeddings), what a query may ask (filters, k) and gives back (matches),
// the counts it reports and the errors every store throws. The domain types (movies, spaces, identities) are
// PosterSimCore's.
import Foundation
import PosterSimCore

/// One embedding to store: the movie it belongs to and its vector (length = the space's dimension).
public struct EmbeddingInput: Sendable, Hashable {
    public var movieID: MovieID
    public var vector: [Float]

    public init(movieID: MovieID, vector: [Float]) {
        self.movieID = movieID
        self.vector = vector
    }
}

/// Restrictions on which movies a query may return. Every set field must hold; nil fields do not restrict.
/// A movie without a release date never passes a year bound; a movie with `adult == nil` counts as not adult; a
/// movie with `vote_count == nil` counts as 0 votes.
public struct SearchFilter: Sendable, Hashable, Codable {
    /// Inclusive lower bound on the release year.
    public var minYear: Int?
    /// Inclusive upper bound on the release year.
    public var maxYear: Int?
    /// The movie's `genre_ids` must contain this id.
    public var genreID: Int?
    /// The movie's `original_language` must equal this code (e.g. "en").
    public var originalLanguage: String?
    /// The movie's adult flag must equal this.
    public var adult: Bool?
    /// Inclusive minimum `vote_count`.
    public var minVoteCount: Int?

    public init(
        minYear: Int? = nil, maxYear: Int? = nil, genreID: Int? = nil, originalLanguage: String? = nil,
        adult: Bool? = nil, minVoteCount: Int? = nil
    ) {
        self.minYear = minYear
        self.maxYear = maxYear
        self.genreID = genreID
        self.originalLanguage = originalLanguage
        self.adult = adult
        self.minVoteCount = minVoteCount
    }

    public static let none = SearchFilter()

    public var isEmpty: Bool { self == .none }

    /// Whether `movie` passes (the reference semantics; the in-memory index evaluates the same rules on packed rows).
    public func accepts(_ movie: Movie) -> Bool {
        if minYear != nil || maxYear != nil {
            guard let year = movie.releaseYear else { return false }
            if let lo = minYear, year < lo { return false }
            if let hi = maxYear, year > hi { return false }
        }
        if let g = genreID, !movie.genreIDs.contains(g) { return false }
        if let lang = originalLanguage, movie.originalLanguage != lang { return false }
        if let a = adult, (movie.adult ?? false) != a { return false }
        if let v = minVoteCount, (movie.voteCount ?? 0) < v { return false }
        return true
    }
}

/// Counts for one space: vectors under the current identity (searchable) and vectors under another (stale).
public struct SpaceStats: Sendable, Hashable, Codable {
    public var space: VectorSpace
    public var identity: ModelIdentity
    public var vectors: Int
    public var staleVectors: Int

    public init(space: VectorSpace, identity: ModelIdentity, vectors: Int, staleVectors: Int) {
        self.space = space
        self.identity = identity
        self.vectors = vectors
        self.staleVectors = staleVectors
    }
}

/// Counts for the whole store.
public struct StoreStats: Sendable, Hashable, Codable {
    public var movies: Int
    public var spaces: [SpaceStats]
    /// Bytes on disk (database file plus write-ahead log), when the store is file-backed.
    public var bytesOnDisk: Int?
    /// Skip records left by ingest runs (posters that could not be fetched, decoded or embedded).
    public var skips: SkipStats

    public init(movies: Int, spaces: [SpaceStats], bytesOnDisk: Int?, skips: SkipStats = .none) {
        self.movies = movies
        self.spaces = spaces
        self.bytesOnDisk = bytesOnDisk
        self.skips = skips
    }
}

/// A (movie, space) pair whose embedding exists under the space's current identity.
public struct EmbeddingKey: Sendable, Hashable, Codable {
    public var movieID: MovieID
    public var space: String

    public init(movieID: MovieID, space: String) {
        self.movieID = movieID
        self.space = space
    }
}

/// An error of a store backed by a server, telling whether the failure is the server's condition of the moment
/// (unreachable, restarting, a statement timeout) rather than the request's. Callers such as the HTTP API answer
/// "try again" (503) for those instead of an internal error.
public protocol ServerStoreError: Error {
    var isTemporary: Bool { get }
}

/// Errors from any `VectorStore`.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownSpace(String)
    /// A space was registered again with another dimension or metric.
    case spaceConflict(existing: VectorSpace, requested: VectorSpace)
    case invalidSpace(String)
    case dimensionMismatch(space: String, expected: Int, actual: Int)
    /// An embedding was written under another identity than the space's current one.
    case identityMismatch(space: String, current: ModelIdentity, given: ModelIdentity)
    case unknownMovie(MovieID)
    /// The movie exists but has no current embedding in the space.
    case noEmbedding(movieID: MovieID, space: String)
    case invalidVector(space: String, reason: String)
    case invalidK(Int)
    case invalidMovie(MovieID, reason: String)
    /// Stored data that cannot be read back (wrong BLOB size, unparsable identity...).
    case corrupt(String)
    case database(String)
    /// The catalogue's titles are in `stored`; a run asked for `requested` (one language per catalogue).
    case languageMismatch(stored: String, requested: String)
    /// A catalogue record that cannot be stored (empty language or source key).
    case invalidCatalogue(String)

    public var description: String {
        switch self {
        case .unknownSpace(let n): return "unknown vector space '\(n)'"
        case .spaceConflict(let e, let r): return "vector space '\(e.name)' exists as \(e), cannot reopen it as \(r)"
        case .invalidSpace(let why): return "invalid vector space: \(why)"
        case .dimensionMismatch(let s, let e, let a):
            return "vector of \(a) components given for space '\(s)', which has \(e)"
        case .identityMismatch(let s, let c, let g):
            return "embeddings for space '\(s)' made by \(g), but the space's current model is \(c)"
        case .unknownMovie(let id): return "unknown movie id \(id)"
        case .noEmbedding(let id, let s): return "movie \(id) has no current embedding in space '\(s)'"
        case .invalidVector(let s, let why): return "invalid vector for space '\(s)': \(why)"
        case .invalidK(let k): return "k must be between 1 and \(StoreError.maxK), got \(k)"
        case .invalidMovie(let id, let why): return "invalid movie \(id): \(why)"
        case .corrupt(let what): return "corrupt store: \(what)"
        case .database(let what): return "database error: \(what)"
        case .invalidCatalogue(let why): return "invalid catalogue record: \(why)"
        case .languageMismatch(let stored, let requested):
            return "the catalogue is in \(stored), not \(requested) (one language per store; use another store for \(requested))"
        }
    }

    /// The largest top-k any query accepts.
    public static let maxK = 10_000
}

// Input checks every store applies before touching its storage, so all stores throw the same errors.
extension StoreError {
    /// Throws `invalidK` unless 1 ≤ k ≤ `maxK`.
    public static func validate(k: Int) throws {
        guard k >= 1, k <= StoreError.maxK else { throw StoreError.invalidK(k) }
    }
}

extension VectorSpace {
    /// Throws the error a store gives for a vector this space cannot hold: wrong dimension, a non-finite component,
    /// a zero vector under cosine, or a norm that overflows Float32.
    public func validate(_ v: [Float]) throws {
        guard v.count == dimension else {
            throw StoreError.dimensionMismatch(space: name, expected: dimension, actual: v.count)
        }
        var sumSquares: Double = 0
        for x in v {
            guard x.isFinite else { throw StoreError.invalidVector(space: name, reason: "non-finite component") }
            sumSquares += Double(x) * Double(x)
        }
        if metric == .cosine, !(sumSquares > 0) {
            throw StoreError.invalidVector(space: name, reason: "zero vector has no cosine similarity")
        }
        if !sumSquares.isFinite || sumSquares > Double(Float.greatestFiniteMagnitude) {
            throw StoreError.invalidVector(space: name, reason: "norm overflows Float32")
        }
    }
}
