import PosterSimCore
import Foundation

/// Why a poster (or one model's embedding of it) was skipped. Raw values are stable: they are stored in the skip
/// table and shown in summaries, `postersim stats` and `postersim skipped`.
///
/// A reason is either transient (the same request may well work next time: the ingest retries it on every run) or
/// permanent (retrying the same poster gives the same answer: the ingest leaves it alone unless the movie's
/// `poster_path` changed, the model's checkpoint changed, or the user asks with `--retry-skipped`).
public enum SkipReason: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// The movie has no `poster_path`. Permanent.
    case noPosterPath = "no_poster_path"
    /// The `poster_path` is not a plain file name. Permanent.
    case invalidPosterPath = "invalid_poster_path"
    /// 404 from the image host, or no such file in `--posters DIR`. Permanent.
    case posterNotFound = "poster_not_found"
    /// Another client-error status from the image host (400, 401, 403, 410...); the status is recorded. Permanent.
    case httpError = "http_error"
    /// 5xx or 429 still answered after the client's retries; the status is recorded. Transient.
    case serverError = "server_error"
    /// The image host did not answer in time (connect, read or whole-request timeout), after retries. Transient.
    case timeout
    /// The connection failed (refused, reset, closed mid-body), after retries. Transient.
    case networkError = "network_error"
    /// Any other failure to obtain the bytes (an unreadable local file, no image host configured). Transient.
    case downloadFailed = "download_failed"
    /// The poster is larger than the download limit, or declares more pixels than the decoder accepts. Permanent.
    case tooLarge = "too_large"
    /// Not a JPEG, PNG or WebP, or a variant the decoder does not handle (e.g. 12-bit JPEG). Permanent.
    case unsupportedFormat = "unsupported_format"
    /// The bytes are a truncated, corrupt, empty or zero-sized image. Permanent.
    case undecodable
    /// One model's preprocessing refused the image (e.g. an extreme aspect ratio). Permanent for that checkpoint.
    case preprocessingFailed = "preprocessing_failed"
    /// One model produced a vector the space cannot hold (non-finite, or zero norm for cosine). Permanent for that
    /// checkpoint.
    case invalidEmbedding = "invalid_embedding"

    /// Whether a later run should try again without being asked.
    public var isTransient: Bool {
        switch self {
        case .serverError, .timeout, .networkError, .downloadFailed: true
        case .noPosterPath, .invalidPosterPath, .posterNotFound, .httpError, .tooLarge, .unsupportedFormat,
            .undecodable, .preprocessingFailed, .invalidEmbedding:
            false
        }
    }

    public var description: String { rawValue }
}

/// One failed attempt at a movie's poster, as an ingest run reports it to `VectorStore.recordSkips`.
public struct PosterSkip: Sendable, Hashable, Codable {
    public var movieID: MovieID
    /// nil when the poster itself failed (fetching or decoding: every model is skipped); otherwise the space of the
    /// one model whose preprocessing or embedding failed.
    public var space: String?
    public var reason: SkipReason
    /// The HTTP status behind a download failure, when there was one.
    public var httpStatus: Int?
    /// What went wrong, for a person.
    public var message: String
    /// The movie's `poster_path` at the time (nil when it had none).
    public var posterPath: String?
    /// The URL or file that was tried (nil when nothing could be tried).
    public var source: String?
    /// For a model's failure: the checkpoint it happened under (a new checkpoint is tried again).
    public var identity: ModelIdentity?

    public init(
        movieID: MovieID, space: String?, reason: SkipReason, httpStatus: Int? = nil, message: String,
        posterPath: String?, source: String?, identity: ModelIdentity? = nil
    ) {
        self.movieID = movieID
        self.space = space
        self.reason = reason
        self.httpStatus = httpStatus
        self.message = message
        self.posterPath = posterPath
        self.source = source
        self.identity = identity
    }

    /// The key a store keeps one record per: (movie, space), the poster's own record having no space.
    public var key: SkipKey { SkipKey(movieID: movieID, space: space) }

    /// `skips` with repeated keys reduced to their last occurrence, in the order of those occurrences (what one
    /// `recordSkips` call stores).
    public static func lastPerKey(_ skips: [PosterSkip]) -> [PosterSkip] { lastOccurrences(skips, key: \.key) }

    /// Throws what a store throws for a skip it cannot hold: an empty space name or message, a negative movie id.
    public func validate() throws {
        if let space, space.isEmpty { throw StoreError.invalidSpace("empty name in a skip record") }
        guard movieID >= 0 else { throw StoreError.invalidMovie(movieID, reason: "TMDB ids are non-negative") }
        guard !message.isEmpty else { throw StoreError.invalidMovie(movieID, reason: "skip record without a message") }
    }
}

/// Which record a skip belongs to: a movie's poster (`space` nil) or one model's embedding of it.
public struct SkipKey: Sendable, Hashable, Codable {
    public var movieID: MovieID
    public var space: String?

    public init(movieID: MovieID, space: String?) {
        self.movieID = movieID
        self.space = space
    }
}

/// A stored skip: the last failure of a (movie, space) pair, how many runs failed on it and when.
public struct SkipRecord: Sendable, Hashable, Codable {
    /// The last failure.
    public var skip: PosterSkip
    /// Failed runs on this record's poster; starts again at 1 when the movie's `poster_path` changed.
    public var attempts: Int
    /// The first failure counted in `attempts`.
    public var firstFailedAt: Date
    public var lastAttemptAt: Date

    public init(skip: PosterSkip, attempts: Int, firstFailedAt: Date, lastAttemptAt: Date) {
        self.skip = skip
        self.attempts = attempts
        self.firstFailedAt = firstFailedAt
        self.lastAttemptAt = lastAttemptAt
    }

    /// Throws what a store throws for a record it cannot hold: a bad skip, fewer than one attempt, times out of order.
    public func validate() throws {
        try skip.validate()
        guard attempts >= 1 else {
            throw StoreError.invalidMovie(skip.movieID, reason: "skip record with \(attempts) attempts")
        }
        guard firstFailedAt <= lastAttemptAt else {
            throw StoreError.invalidMovie(skip.movieID, reason: "skip record whose first failure is after its last attempt")
        }
    }

    /// `records` with repeated keys reduced to their last occurrence, in the order of those occurrences.
    public static func lastPerKey(_ records: [SkipRecord]) -> [SkipRecord] { lastOccurrences(records, key: \.skip.key) }
}

/// `items` with repeated keys reduced to their last occurrence, kept in the order of those occurrences.
private func lastOccurrences<T>(_ items: [T], key: (T) -> SkipKey) -> [T] {
    var last: [SkipKey: Int] = [:]
    for (i, item) in items.enumerated() { last[key(item)] = i }
    return items.enumerated().filter { last[key($0.element)] == $0.offset }.map(\.element)
}

/// Counts of the skip records in a store.
public struct SkipStats: Sendable, Hashable, Codable {
    /// Records (a movie counts once for its poster plus once per model that failed on its own).
    public var records: Int
    /// Distinct movies with at least one record.
    public var movies: Int
    /// Records per `SkipReason` raw value.
    public var byReason: [String: Int]

    public init(records: Int, movies: Int, byReason: [String: Int]) {
        self.records = records
        self.movies = movies
        self.byReason = byReason
    }

    public static let none = SkipStats(records: 0, movies: 0, byReason: [:])

    /// Records whose reason a later run retries by itself.
    public var transient: Int {
        byReason.reduce(0) { $0 + (SkipReason(rawValue: $1.key)?.isTransient == true ? $1.value : 0) }
    }
}

/// Storage of the space column: the poster's own record has no model, kept as '' because a primary key column
/// cannot hold NULL.
extension SkipKey {
    public static let posterSpaceColumn = ""
}
