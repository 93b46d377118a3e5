import PosterSimCore
import Foundation
import HTTPSupport
import Imaging
import Store

/// Everything an ingest run needs besides the store and the models: a plain value the `postersim ingest` command fills
/// from its flags (`tmdb`/`json FILE`, `--pages`, `--limit`, `--models`, `--poster-size`, `--posters`,
/// `--concurrency`, `--batch-size`, `--retry-skipped`, `--base-url`, `--image-base-url`).
public struct IngestConfiguration: Sendable {
    /// Where the movie list comes from.
    public enum Source: Sendable, Equatable {
        /// TMDB's `/movie/popular`, pages 1...`pages`.
        case tmdb
        /// A TMDB source: a list, trending, discover or explicit ids (`postersim ingest tmdb --list/--trending/
        /// --discover/--ids`). A store that keeps catalogue records (`CatalogueStore`) records it for `sync`.
        case catalogue(CatalogueSource)
        /// A JSON array of TMDB result objects (the `results` shape of a popular page).
        case jsonFile(String)

        /// The TMDB source this is, if any (`.tmdb` is the popular list with `pages`).
        func catalogueSource(pages: Int) -> CatalogueSource? {
            switch self {
            case .tmdb: .list(.popular, pages: pages)
            case .catalogue(let source): source
            case .jsonFile: nil
            }
        }
    }

    public var source: Source
    /// Popular-list pages to read (`--pages`); TMDB serves at most 500 and the list's `total_pages` is respected.
    public var pages: Int = TMDBSettings.maxPages
    /// Keep only the first `limit` distinct movies (`--limit`).
    public var limit: Int? = nil
    /// Space names of the models to run (`--models clip,resnet50`); nil runs every embedder given to the pipeline.
    public var models: [String]? = nil
    /// TMDB image size segment (`--poster-size`): `original` (what the original pipeline embedded) or e.g. `w500`.
    public var posterSize: String = "original"
    /// Read posters from this folder by `poster_path` instead of downloading (`--posters DIR`).
    public var postersDirectory: String? = nil
    /// Downloaded posters are kept here (`{dir}/{size}/{file}`); nil disables the cache.
    public var posterCacheDirectory: String? = PosterCache.defaultDirectory
    /// Posters fetched, decoded and preprocessed at the same time; also bounds the posters held in memory.
    public var concurrency: Int = 8
    /// Images per embedding call, and per store transaction unless `writeBatchSize` says more.
    public var batchSize: Int = 8
    /// Vectors per store transaction and model (`--write-batch`); nil writes each forward batch as it comes. On a big
    /// catalogue a write's neighbour-list upkeep reads the whole space once, whatever the write's size, so fewer,
    /// bigger writes cost less per film (with 32 or more vectors the SQLite store scores them with one GEMM). A run
    /// killed in between loses at most the unwritten vectors' forward passes; they are redone on restart.
    public var writeBatchSize: Int? = nil
    /// Also retry posters an earlier run skipped for a permanent reason (`--retry-skipped`). Without it, only
    /// transient skips (timeouts, network errors, 5xx, 429) are retried, plus permanent ones whose movie has another
    /// `poster_path` (or, for a model's own failure, whose model has another checkpoint) since.
    public var retrySkipped: Bool = false
    /// Endpoints, credentials, rate limit and retry policy.
    public var tmdb: TMDBSettings = TMDBSettings.resolve()
    public var decoder: PosterDecoder = PosterDecoder()
    /// The TMDB client's clock (retries, rate limit) and the time sightings are recorded at; tests pass a
    /// `VirtualClock`.
    public var clock: any HTTPClock = SystemHTTPClock()

    public init(source: Source) {
        self.source = source
    }
}

/// One skipped poster, with what went wrong. `space` is nil when the poster itself failed (every model skipped), or
/// the model's space when only that model failed. The run also records it in the store (`VectorStore.recordSkips`).
public struct SkippedPoster: Sendable, Hashable, Codable {
    public var movieID: MovieID
    public var title: String
    public var posterPath: String?
    public var space: String?
    public var reason: SkipReason
    public var detail: String
    /// The HTTP status behind a download failure, when there was one.
    public var httpStatus: Int?
    /// The URL or file tried.
    public var source: String?

    public init(
        movieID: MovieID, title: String, posterPath: String?, space: String?, reason: SkipReason, detail: String,
        httpStatus: Int? = nil, source: String? = nil
    ) {
        self.movieID = movieID
        self.title = title
        self.posterPath = posterPath
        self.space = space
        self.reason = reason
        self.detail = detail
        self.httpStatus = httpStatus
        self.source = source
    }

    /// The store's record of this skip; `identity` is the failing model's checkpoint for a model's own failure.
    public func record(identity: ModelIdentity?) -> PosterSkip {
        PosterSkip(
            movieID: movieID, space: space, reason: reason, httpStatus: httpStatus, message: detail,
            posterPath: posterPath, source: source, identity: space == nil ? nil : identity)
    }
}

/// Where a run stands: `completed` of `total` movies that needed work are finished (embedded or skipped).
public struct IngestProgress: Sendable, Equatable {
    public var completed: Int
    public var total: Int
    public var embedded: Int
    public var skipped: Int
    /// Seconds since the embedding phase started.
    public var elapsed: Double
    /// Finished movies per second so far.
    public var rate: Double
    /// Seconds left at the current rate; nil before the first movie is finished.
    public var eta: Double?

    public init(completed: Int, total: Int, embedded: Int, skipped: Int, elapsed: Double, rate: Double, eta: Double?) {
        self.completed = completed
        self.total = total
        self.embedded = embedded
        self.skipped = skipped
        self.elapsed = elapsed
        self.rate = rate
        self.eta = eta
    }
}

/// What the pipeline reports while it runs, in order: listing, plan, progress (with skips and stored batches),
/// finished.
public enum IngestEvent: Sendable {
    /// A popular-list page arrived (`page` of `lastPage`).
    case listingPage(page: Int, lastPage: Int)
    /// The source gave `movies` distinct movies (after `limit`); `malformed` entries were not movies.
    case listed(movies: Int, malformed: Int)
    /// `pending` movies need at least one of `models`; `alreadyDone` have every model embedded; `notRetried` miss
    /// something an earlier run skipped for a permanent reason, and are left alone.
    case planned(pending: Int, alreadyDone: Int, notRetried: Int, models: [String])
    case progress(IngestProgress)
    case skipped(SkippedPoster)
    /// One store transaction committed `count` vectors of `space`.
    case batchStored(space: String, count: Int)
    case finished(IngestSummary)
}

/// The outcome of a run. `nothingDone` is the one condition under which the CLI exits non-zero: there was work
/// (or nothing to ingest at all) and not a single vector could be stored.
public struct IngestSummary: Sendable, Codable, Equatable {
    /// Distinct movies from the source (after `limit`).
    public var listed: Int
    /// Source entries that did not decode as movies.
    public var malformed: Int
    /// Movies that had every selected model embedded before this run.
    public var alreadyDone: Int
    /// Movies left alone because what they miss was skipped for a permanent reason by an earlier run (see
    /// `IngestConfiguration.retrySkipped`).
    public var notRetried: Int
    /// Vectors of the listed movies in the selected models' spaces that were current before this run.
    public var vectorsBefore: Int
    /// Movies that needed work.
    public var pending: Int
    /// Movies all of whose missing models were embedded by this run.
    public var embedded: Int
    /// Every skip, in the order they happened.
    public var skipped: [SkippedPoster]
    /// Vectors committed by this run, per space.
    public var vectorsWritten: [String: Int]
    public var elapsedSeconds: Double

    public init(
        listed: Int, malformed: Int, alreadyDone: Int, notRetried: Int = 0, vectorsBefore: Int = 0, pending: Int,
        embedded: Int, skipped: [SkippedPoster], vectorsWritten: [String: Int], elapsedSeconds: Double
    ) {
        self.listed = listed
        self.malformed = malformed
        self.alreadyDone = alreadyDone
        self.notRetried = notRetried
        self.vectorsBefore = vectorsBefore
        self.pending = pending
        self.embedded = embedded
        self.skipped = skipped
        self.vectorsWritten = vectorsWritten
        self.elapsedSeconds = elapsedSeconds
    }

    /// Skips per reason name.
    public var skippedByReason: [String: Int] {
        skipped.reduce(into: [:]) { $0[$1.reason.rawValue, default: 0] += 1 }
    }

    /// Distinct movies with at least one skip.
    public var skippedMovies: Int { Set(skipped.map(\.movieID)).count }

    /// True when nothing could be done: no movies at all, or movies needed work (now or, skipped permanently, in an
    /// earlier run), no vector was stored and none was stored before either. A rerun that finds everything
    /// embeddable already done (only unfixable posters left, e.g. movies without a poster) is a success.
    public var nothingDone: Bool {
        listed == 0
            || (pending + notRetried > 0 && vectorsBefore == 0 && vectorsWritten.values.reduce(0, +) == 0)
    }

    /// Embedded movies per second of this run.
    public var moviesPerSecond: Double { elapsedSeconds > 0 ? Double(embedded) / elapsedSeconds : 0 }
}
