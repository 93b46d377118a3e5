import PosterSimCore
import AsyncHTTPClient
import Foundation
import HTTPSupport
import Logging
import NIOCore
import NIOHTTP1
import Store
import Synchronization

/// One page of TMDB's `/movie/popular`. `results` holds the entries that decoded as movies; entries that did not
/// (no id or title, wrong types) are counted in `malformedResults` rather than failing the page.
public struct TMDBPage: Sendable, Equatable {
    public var page: Int
    public var results: [Movie]
    public var totalPages: Int
    public var totalResults: Int
    public var malformedResults: Int
}

/// A merged paged list: distinct movies in first-occurrence order (with `popularityRank` set when ranked).
public struct MovieList: Sendable, Equatable {
    public var movies: [Movie]
    public var pagesRead: Int
    /// Result entries that were not movies (missing id or title...), dropped.
    public var malformedResults: Int
    /// The largest `total_pages` any page announced (more than `pageCap` means the list was cut).
    public var totalPages: Int = 0
}

/// The popular list's name before other lists existed.
public typealias PopularList = MovieList

/// Pages read and what they held, while walking a list.
struct PageWalk {
    var pagesRead = 0
    var malformed = 0
    var totalPages = 0

    mutating func count(_ page: TMDBPage) {
        pagesRead += 1
        malformed += page.malformedResults
        totalPages = max(totalPages, page.totalPages)
    }
}

/// A TMDB v3 client over AsyncHTTPClient for what ingest and sync need: movie lists (popular, top rated, now
/// playing, upcoming, trending, discover), one movie's details, the change feed, and poster bytes.
///
/// Guarantees:
/// - Every request (API or image, first attempt or retry) first takes a token from one shared `RateLimiter`
///   (`requestsPerSecond`, default 40).
/// - Retryable statuses (HTTPSupport's `RetryPolicy`: 408, 429, 5xx) and transport failures (connect/read timeout,
///   dropped connection, short body) are retried up to `maxAttempts` with jittered exponential backoff, waiting at
///   least a `Retry-After` (seconds or HTTP-date). Waits (back-off and rate limit) are on `clock`.
///   Other statuses fail at once with a typed `TMDBError`: 401 `unauthorized` (with a hint naming the env
///   vars), 404 `notFound`, anything else `httpStatus`; unreadable JSON is `badJSON`.
/// - Credentials go to the API host only; the API key never appears in errors or logs.
/// - Cancellation stops waiting at once (backoff sleeps and the limiter are cancellable) and is never retried.
/// - Call `shutdown()` (or use `withClient`) before the client is released.
public final class TMDBClient: Sendable {
    public let settings: TMDBSettings
    public let limiter: RateLimiter
    private let http: HTTPClient
    private let retry: RetryPolicy
    private let clock: any HTTPClock
    private let logger: Logger
    private let counter = RequestCounter()

    /// `clock` times the retries' waits and the rate limit (tests pass a `VirtualClock`).
    public init(
        settings: TMDBSettings, logger: Logger = Logger(label: "postersim.tmdb"),
        clock: any HTTPClock = SystemHTTPClock()
    ) throws(TMDBError) {
        let settings = try settings.validated()
        self.settings = settings
        self.logger = logger
        self.clock = clock
        self.limiter = RateLimiter(rate: settings.requestsPerSecond, burst: settings.burst, clock: clock)
        self.retry = RetryPolicy(
            maxAttempts: settings.maxAttempts, baseDelay: settings.retryBaseDelay, maxDelay: settings.maxRetryDelay,
            maxRetryAfter: settings.maxRetryAfter)
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .follow(max: 5, allowCycles: false),
            timeout: .init(connect: Self.timeAmount(settings.connectTimeout), read: Self.timeAmount(settings.readTimeout)))
        configuration.decompression = .disabled
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Runs `body` with a client and shuts it down afterwards, also when `body` throws.
    public static func withClient<Result: Sendable>(
        settings: TMDBSettings, logger: Logger = Logger(label: "postersim.tmdb"),
        clock: any HTTPClock = SystemHTTPClock(), _ body: (TMDBClient) async throws -> Result
    ) async throws -> Result {
        try await withShutdown(try TMDBClient(settings: settings, logger: logger, clock: clock), shutdown: { try await $0.shutdown() }, body)
    }

    public func shutdown() async throws {
        try await http.shutdown()
    }

    /// Requests sent so far, retries included (for statistics and tests).
    public var requestsSent: Int { counter.value }

    // MARK: - Lists

    /// `GET {base}{path}?language=…&{query}` with the credentials: the body of a 2xx answer. Every API endpoint goes
    /// through here (and so through the rate limiter and the retry policy).
    func apiGet(_ path: String, query: [(String, String)]) async throws -> (body: [UInt8], url: String) {
        guard let credentials = settings.credentials else { throw TMDBError.missingCredentials }
        var parts = ["language=\(Self.percentEncoded(settings.language))"]
        parts += query.map { "\(Self.percentEncoded($0.0))=\(Self.percentEncoded($0.1))" }
        var headers: [(String, String)] = [("Accept", "application/json")]
        switch credentials {
        case .bearerToken(let token): headers.append(("Authorization", "Bearer \(token)"))
        case .apiKey(let key): parts.append("api_key=\(Self.percentEncoded(key))")
        }
        let url = "\(settings.baseURL)\(path)?\(parts.joined(separator: "&"))"
        return (try await get(url, headers: headers, maxBytes: settings.maxPageBytes), url)
    }

    /// One page of a paged movie list (`/movie/popular`, `/trending/movie/week`, `/discover/movie`...).
    public func listPage(_ path: String, query: [(String, String)] = [], page: Int) async throws -> TMDBPage {
        let (body, url) = try await apiGet(path, query: query + [("page", String(page))])
        do {
            return try Self.decodePage(body)
        } catch {
            throw TMDBError.badJSON(url: redacted(url), detail: "\(error)")
        }
    }

    /// `GET {base}/movie/popular?language=…&page=N`.
    public func popularPage(_ page: Int) async throws -> TMDBPage {
        try await listPage("/movie/popular", page: page)
    }

    /// The popular list (see `pagedList`).
    public func popularList(
        pages: Int, limit: Int? = nil, concurrency: Int = 4, onPage: (@Sendable (Int, Int) -> Void)? = nil
    ) async throws -> PopularList {
        try await pagedList("/movie/popular", pages: pages, limit: limit, concurrency: concurrency, onPage: onPage)
    }

    /// A paged list, pages `1...min(pages, total_pages, pageCap)` in order, merged by id: a movie repeated on a later
    /// page keeps its first position. With `ranked`, `popularityRank` is the 1-based position in the merged list
    /// (the popular list's meaning); otherwise it stays nil. With `limit`, stops fetching once that many distinct
    /// movies are known and returns the first `limit`. `onPage(page, lastPage)` is called as pages arrive.
    public func pagedList(
        _ path: String, query: [(String, String)] = [], pages: Int, limit: Int? = nil, concurrency: Int = 4,
        ranked: Bool = true, onPage: (@Sendable (Int, Int) -> Void)? = nil
    ) async throws -> MovieList {
        var merged = MovieMerger()
        var walk = PageWalk()
        try await walkPages(
            path, query: query, pages: pages, concurrency: concurrency,
            until: { limit.map { merged.count >= $0 } ?? false }
        ) { page, lastPage in
            merged.add(page.results)
            walk.count(page)
            onPage?(page.page, lastPage)
        }
        guard limit.map({ $0 > 0 }) ?? true else { return MovieList(movies: [], pagesRead: 0, malformedResults: 0) }
        let movies = ranked ? merged.movies(limit: limit) : merged.unranked(limit: limit)
        return MovieList(
            movies: movies, pagesRead: walk.pagesRead, malformedResults: walk.malformed,
            totalPages: walk.totalPages)
    }

    /// Reads pages `1...min(pages, total_pages, pageCap)` in windows of `concurrency`, handing each to `consume` in
    /// page order, until `until()` holds. `total_pages` may shrink while paging (lists are live): never asks beyond
    /// what TMDB last said.
    /// With `firstPage` (page 1, already read and consumed by the caller) the walk starts at page 2.
    func walkPages(
        _ path: String, query: [(String, String)], pages: Int, concurrency: Int, firstPage: TMDBPage? = nil,
        until: () -> Bool = { false }, consume: (TMDBPage, Int) throws -> Void
    ) async throws {
        guard pages >= 1, !until() else { return }
        let first: TMDBPage
        if let firstPage {
            first = firstPage
        } else {
            first = try await listPage(path, query: query, page: 1)
        }
        var lastPage = min(pages, max(first.totalPages, 1), settings.pageCap)
        if firstPage == nil { try consume(first, lastPage) }
        var next = 2
        let window = max(1, concurrency)
        while next <= lastPage, !until() {
            let range = next...min(lastPage, next + window - 1)
            let fetched = try await withThrowingTaskGroup(of: TMDBPage.self) { group in
                for p in range { group.addTask { try await self.listPage(path, query: query, page: p) } }
                var pagesByNumber: [Int: TMDBPage] = [:]
                for try await page in group { pagesByNumber[page.page] = page }
                return range.compactMap { pagesByNumber[$0] }
            }
            guard fetched.count == range.count else {
                throw TMDBError.badJSON(
                    url: redacted("\(settings.baseURL)\(path)"), detail: "a page answered with another page number")
            }
            for page in fetched {
                lastPage = min(lastPage, max(page.totalPages, page.page))
                try consume(page, lastPage)
            }
            next = range.upperBound + 1
        }
    }

    static func decodePage(_ body: [UInt8]) throws -> TMDBPage {
        struct Lenient: Decodable {
            let movie: Movie?
            init(from decoder: any Decoder) throws { movie = try? Movie(from: decoder) }
        }
        struct Raw: Decodable {
            let page: Int
            let results: [Lenient]
            let total_pages: Int
            let total_results: Int?
        }
        let raw = try JSONDecoder().decode(Raw.self, from: Data(body))
        let movies = raw.results.compactMap(\.movie)
        return TMDBPage(
            page: raw.page, results: movies, totalPages: raw.total_pages, totalResults: raw.total_results ?? 0,
            malformedResults: raw.results.count - movies.count)
    }

    // MARK: - Posters

    /// `{image base}/{size}{poster_path}` after checking that `posterPath` is a plain file name.
    public func posterURL(posterPath: String, size: String) throws(TMDBError) -> String {
        guard let name = try? PosterCache.fileName(of: posterPath) else { throw .invalidPosterPath(posterPath) }
        guard PosterCache.isSafeComponent(size) else { throw .invalidSettings("poster size '\(size)'") }
        return "\(settings.imageBaseURL)/\(size)/\(name)"
    }

    /// The poster's bytes. 404 is `notFound`; other failures as for every request.
    public func fetchPoster(posterPath: String, size: String) async throws -> [UInt8] {
        let url = try posterURL(posterPath: posterPath, size: size)
        return try await get(url, headers: [], maxBytes: settings.maxPosterBytes)
    }

    // MARK: - Requests

    /// GET with rate limiting, retries and typed errors; returns the whole body of a 2xx answer.
    func get(_ url: String, headers: [(String, String)], maxBytes: Int) async throws -> [UInt8] {
        let shown = redacted(url)
        return try await retry.run(clock: clock) { _ -> RetryPolicy.Outcome<[UInt8], RequestFailure> in
            try await limiter.acquire()
            counter.increment()
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            do {
                let response = try await http.execute(request, timeout: Self.timeAmount(settings.requestTimeout))
                let status = Int(response.status.code)
                if (200...299).contains(status) {
                    let buffer: ByteBuffer
                    do {
                        buffer = try await response.body.collect(upTo: maxBytes)
                    } catch is NIOTooManyBytesError {
                        throw TMDBError.responseTooLarge(url: shown, limit: maxBytes)
                    }
                    return .success(Array(buffer.readableBytesView))
                }
                // Drain a little of the error body so the connection can be reused.
                _ = try? await response.body.collect(upTo: 64 << 10)
                switch status {
                case 401: throw TMDBError.unauthorized(url: shown)
                case 404: throw TMDBError.notFound(url: shown)
                case _ where RetryPolicy.isRetryable(status: status):
                    let retryAfter = response.headers.first(name: "Retry-After").flatMap {
                        RetryPolicy.retryAfter($0, now: clock.date)
                    }
                    return .retry(.status(status), retryAfter: retryAfter)
                default: throw TMDBError.httpStatus(status, url: shown)
                }
            } catch let error as TMDBError {
                throw error
            } catch {
                // Cancellation surfaces as CancellationError or as AsyncHTTPClient's `.cancelled`: never retried.
                if Task.isCancelled || error is CancellationError { throw CancellationError() }
                return .retry(Self.isTimeout(error) ? .timeout("\(error)") : .transport("\(error)"), retryAfter: nil)
            }
        } willRetry: { retry in
            logger.debug(
                "retrying",
                metadata: [
                    "url": "\(shown)", "attempt": "\(retry.attempt)", "why": "\(retry.failure)", "delay": "\(retry.delay)",
                ])
        } giveUp: { attempts, last in
            TMDBError.tooManyRetries(url: shown, attempts: attempts, last: last)
        }
    }

    /// Whether a transport error is AsyncHTTPClient's or NIO's report of a deadline passing.
    static func isTimeout(_ error: any Error) -> Bool {
        if let e = error as? HTTPClientError {
            return [
                HTTPClientError.deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout,
                .getConnectionFromPoolTimeout,
            ].contains(e)
        }
        if case ChannelError.connectTimeout? = error as? ChannelError { return true }
        return false
    }

    /// The URL with any `api_key` value hidden.
    func redacted(_ url: String) -> String {
        guard case .apiKey(let key)? = settings.credentials, !key.isEmpty else { return url }
        return url.replacingOccurrences(of: "api_key=\(Self.percentEncoded(key))", with: "api_key=***")
    }

    static func percentEncoded(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    static func timeAmount(_ seconds: Double) -> TimeAmount {
        .nanoseconds(Int64(min(seconds, 86_400) * 1e9))
    }
}

/// Merges movie lists by id, keeping each movie's first occurrence and order.
struct MovieMerger {
    private(set) var ordered: [Movie] = []
    private var seen: Set<MovieID> = []

    var count: Int { ordered.count }

    mutating func add(_ movies: [Movie]) {
        for m in movies where seen.insert(m.id).inserted {
            ordered.append(m)
        }
    }

    /// The merged movies without ranks, optionally only the first `limit`.
    func unranked(limit: Int?) -> [Movie] {
        limit.map { Array(ordered.prefix(max(0, $0))) } ?? ordered
    }

    /// The merged movies with `popularityRank` = 1-based position, optionally only the first `limit`.
    func movies(limit: Int?) -> [Movie] {
        let kept = limit.map { Array(ordered.prefix(max(0, $0))) } ?? ordered
        return kept.enumerated().map { index, movie in
            var m = movie
            m.popularityRank = index + 1
            return m
        }
    }
}

/// A thread-safe counter.
final class RequestCounter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
