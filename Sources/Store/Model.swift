import Foundation
// The metric is defined with the models (ModelHub, below the store in the dependency order) and re-exported, so code
// that imports Store names the same type.
@_exported import enum ModelHub.DistanceMetric

/// A named vector space: every embedding stored in it has `dimension` Float32 components and is compared by `metric`.
/// The store never mixes spaces; a space's name, dimension and metric are fixed once created.
public struct VectorSpace: Sendable, Hashable, Codable, CustomStringConvertible {
    public let name: String
    public let dimension: Int
    public let metric: DistanceMetric

    public init(name: String, dimension: Int, metric: DistanceMetric) {
        self.name = name
        self.dimension = dimension
        self.metric = metric
    }

    public var description: String { "\(name) (\(dimension)-d, \(metric.rawValue))" }
}

/// The checkpoint that produced an embedding: the model repository and the sha256 of its weights. Two identities are
/// equal only if both parts are equal; embeddings made under another identity than a space's current one are stale.
public struct ModelIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    public let repo: String
    /// Lowercase hex sha256 of the weights file.
    public let weightsSHA256: String

    public init(repo: String, weightsSHA256: String) {
        self.repo = repo
        self.weightsSHA256 = weightsSHA256.lowercased()
    }

    /// Parses the stored form `repo@sha256:HEX`.
    public init?(storedForm: String) {
        guard let at = storedForm.range(of: "@sha256:", options: .backwards) else { return nil }
        let repo = String(storedForm[..<at.lowerBound])
        let hex = String(storedForm[at.upperBound...])
        guard !repo.isEmpty, !hex.isEmpty else { return nil }
        self.init(repo: repo, weightsSHA256: hex)
    }

    /// `repo@sha256:HEX`, the string kept with each embedding.
    public var storedForm: String { "\(repo)@sha256:\(weightsSHA256)" }
    public var description: String { storedForm }
}

/// TMDB's numeric movie id. Integers in storage; APIs that speak JSON to a front end use `String(id)`.
public typealias MovieID = Int

/// A movie's metadata as TMDB's `/movie/popular` returns it (the fields the original pipeline stored), plus the rank in
/// the popular list. Codable with TMDB's snake_case keys; fields TMDB may omit or send as null are optional
/// (`genre_ids` decodes a missing value as empty).
public struct Movie: Sendable, Hashable, Codable {
    public var id: MovieID
    public var title: String
    public var originalTitle: String?
    public var overview: String?
    /// `YYYY-MM-DD`, or empty/nil when TMDB has no date.
    public var releaseDate: String?
    public var posterPath: String?
    public var backdropPath: String?
    public var genreIDs: [Int]
    public var originalLanguage: String?
    public var popularity: Double?
    public var voteAverage: Double?
    public var voteCount: Int?
    public var adult: Bool?
    public var video: Bool?
    /// 1-based position in the popular list (first occurrence), if the movie came from it. Not a TMDB field.
    public var popularityRank: Int?

    public init(
        id: MovieID, title: String, originalTitle: String? = nil, overview: String? = nil, releaseDate: String? = nil,
        posterPath: String? = nil, backdropPath: String? = nil, genreIDs: [Int] = [], originalLanguage: String? = nil,
        popularity: Double? = nil, voteAverage: Double? = nil, voteCount: Int? = nil, adult: Bool? = nil,
        video: Bool? = nil, popularityRank: Int? = nil
    ) {
        self.id = id
        self.title = title
        self.originalTitle = originalTitle
        self.overview = overview
        self.releaseDate = releaseDate
        self.posterPath = posterPath
        self.backdropPath = backdropPath
        self.genreIDs = genreIDs
        self.originalLanguage = originalLanguage
        self.popularity = popularity
        self.voteAverage = voteAverage
        self.voteCount = voteCount
        self.adult = adult
        self.video = video
        self.popularityRank = popularityRank
    }

    enum CodingKeys: String, CodingKey {
        case id, title, overview, popularity, adult, video
        case originalTitle = "original_title"
        case releaseDate = "release_date"
        case posterPath = "poster_path"
        case backdropPath = "backdrop_path"
        case genreIDs = "genre_ids"
        case originalLanguage = "original_language"
        case voteAverage = "vote_average"
        case voteCount = "vote_count"
        case popularityRank = "popularity_rank"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(MovieID.self, forKey: .id)
        title = try c.decode(String.self, forKey: .title)
        originalTitle = try c.decodeIfPresent(String.self, forKey: .originalTitle)
        overview = try c.decodeIfPresent(String.self, forKey: .overview)
        releaseDate = try c.decodeIfPresent(String.self, forKey: .releaseDate)
        posterPath = try c.decodeIfPresent(String.self, forKey: .posterPath)
        backdropPath = try c.decodeIfPresent(String.self, forKey: .backdropPath)
        genreIDs = try c.decodeIfPresent([Int].self, forKey: .genreIDs) ?? []
        originalLanguage = try c.decodeIfPresent(String.self, forKey: .originalLanguage)
        popularity = try c.decodeIfPresent(Double.self, forKey: .popularity)
        voteAverage = try c.decodeIfPresent(Double.self, forKey: .voteAverage)
        voteCount = try c.decodeIfPresent(Int.self, forKey: .voteCount)
        adult = try c.decodeIfPresent(Bool.self, forKey: .adult)
        video = try c.decodeIfPresent(Bool.self, forKey: .video)
        popularityRank = try c.decodeIfPresent(Int.self, forKey: .popularityRank)
    }

    /// The release year from `release_date` (`YYYY-…`), or nil when absent or unparsable.
    /// "Title - YYYY-MM-DD", as the original front end's title list shows a movie ("Title" alone without a date).
    public var label: String {
        guard let releaseDate, !releaseDate.isEmpty else { return title }
        return "\(title) - \(releaseDate)"
    }

    /// Whether `label` contains `text`, ignoring case and accents (an empty text matches everything).
    public func labelMatches(_ text: String) -> Bool {
        let needle = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !needle.isEmpty else { return true }
        return label.range(of: needle, options: [.caseInsensitive, .diacriticInsensitive]) != nil
    }

    public var releaseYear: Int? {
        guard let date = releaseDate, date.utf8.count >= 4 else { return nil }
        let digits = date.utf8.prefix(4)
        guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }
}

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

/// One query result: the movie id and its score in the space's metric (see `DistanceMetric`).
public struct SearchMatch: Sendable, Hashable, Codable {
    public var movieID: MovieID
    public var score: Float

    public init(movieID: MovieID, score: Float) {
        self.movieID = movieID
        self.score = score
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
