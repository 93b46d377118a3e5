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

/// The merged popular list: distinct movies in first-occurrence order with `popularityRank` set.
public struct PopularList: Sendable, Equatable {
    public var movies: [Movie]
    public var pagesRead: Int
    /// Result entries that were not movies (missing id or title...), dropped.
    public var malformedResults: Int
}

/// A TMDB v3 client over AsyncHTTPClient for the two things ingest needs: the popular list and poster bytes.
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

    // MARK: - Popular list

    /// `GET {base}/movie/popular?language=…&page=N`.
    public func popularPage(_ page: Int) async throws -> TMDBPage {
        guard let credentials = settings.credentials else { throw TMDBError.missingCredentials }
        var query = "language=\(Self.percentEncoded(settings.language))&page=\(page)"
        var headers: [(String, String)] = [("Accept", "application/json")]
        switch credentials {
        case .bearerToken(let token): headers.append(("Authorization", "Bearer \(token)"))
        case .apiKey(let key): query += "&api_key=\(Self.percentEncoded(key))"
        }
        let url = "\(settings.baseURL)/movie/popular?\(query)"
        let body = try await get(url, headers: headers, maxBytes: settings.maxPageBytes)
        do {
            return try Self.decodePage(body)
        } catch {
            throw TMDBError.badJSON(url: redacted(url), detail: "\(error)")
        }
    }

    /// The popular list, pages `1...min(pages, total_pages, 500)` in order, merged by id: a movie repeated on a later
    /// page keeps its first position. `popularityRank` is the 1-based position in the merged list. With `limit`,
    /// stops fetching once that many distinct movies are known and returns the first `limit`.
    /// `onPage(page, lastPage)` is called as pages arrive.
    public func popularList(
        pages: Int, limit: Int? = nil, concurrency: Int = 4, onPage: (@Sendable (Int, Int) -> Void)? = nil
    ) async throws -> PopularList {
        var merged = MovieMerger()
        guard pages >= 1, limit.map({ $0 > 0 }) ?? true else {
            return PopularList(movies: [], pagesRead: 0, malformedResults: 0)
        }
        let first = try await popularPage(1)
        merged.add(first.results)
        var pagesRead = 1
        var malformed = first.malformedResults
        var lastPage = min(pages, max(first.totalPages, 1), TMDBSettings.maxPages)
        onPage?(1, lastPage)
        var next = 2
        let window = max(1, concurrency)
        while next <= lastPage, limit.map({ merged.count < $0 }) ?? true {
            // A window of pages in flight at once; merged in page order so ranks follow the list.
            let range = next...min(lastPage, next + window - 1)
            let fetched = try await withThrowingTaskGroup(of: TMDBPage.self) { group in
                for p in range { group.addTask { try await self.popularPage(p) } }
                var pagesByNumber: [Int: TMDBPage] = [:]
                for try await page in group { pagesByNumber[page.page] = page }
                return range.compactMap { pagesByNumber[$0] }
            }
            guard fetched.count == range.count else {
                throw TMDBError.badJSON(
                    url: redacted("\(settings.baseURL)/movie/popular"), detail: "a page answered with another page number")
            }
            for page in fetched {
                merged.add(page.results)
                pagesRead += 1
                malformed += page.malformedResults
                // total_pages can shrink while we page (the list is live): never ask beyond what TMDB last said.
                lastPage = min(lastPage, max(page.totalPages, page.page))
                onPage?(page.page, lastPage)
            }
            next = range.upperBound + 1
        }
        return PopularList(movies: merged.movies(limit: limit), pagesRead: pagesRead, malformedResults: malformed)
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
