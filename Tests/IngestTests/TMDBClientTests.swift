// The real TMDB client against the local fake: paging, auth, merging, retries, timeouts, rate limit, typed errors.
import PosterSimCore
import Foundation
import HTTPSupport
import Ingest
import Store
import Testing

/// `count` movies with ids starting at `first`, posters `/p{id}.png`.
func movies(_ ids: some Sequence<Int>) -> [[String: Any]] {
    ids.map { movieJSON(id: $0, title: "Movie \($0)", posterPath: "/p\($0).png") }
}

@Suite struct TMDBClientTests {
    @Test func pagesAreMergedByIDKeepingFirstRank() async throws {
        let fake = FakeTMDB()
        try fake.setPage(1, movies: movies(1...20))
        // Page 2 repeats 5 and 20 (the live list shifts while paging); page 3 repeats 21.
        try fake.setPage(2, movies: movies([21, 5, 22, 20, 23]))
        try fake.setPage(3, movies: movies([21, 24]))
        fake.setTotalPages(3)
        let list = try await withFakeTMDB(fake) {
            try await TMDBClient.withClient(settings: testSettings(fake)) { try await $0.popularList(pages: 10) }
        }
        #expect(list.movies.map(\.id) == Array(1...20) + [21, 22, 23, 24])
        #expect(list.movies.map(\.popularityRank) == (1...24).map { Optional($0) })
        #expect(list.pagesRead == 3)
        // total_pages (3) is smaller than asked (10): nothing beyond page 3 is requested.
        let pages = fake.requests(prefix: "/3/").compactMap { r in
            r.query.split(separator: "&").first { $0.hasPrefix("page=") }.map { Int($0.dropFirst(5))! }
        }
        #expect(pages.sorted() == [1, 2, 3])
        // Metadata comes through.
        let first = try #require(list.movies.first)
        #expect(first.title == "Movie 1" && first.posterPath == "/p1.png" && first.genreIDs == [18, 29])
        #expect(first.voteCount == 101 && first.originalLanguage == "en")
    }

    @Test func pagesAskedIsRespectedAndLimitStopsEarly() async throws {
        let fake = FakeTMDB()
        for p in 1...5 { try fake.setPage(p, movies: movies(((p - 1) * 20 + 1)...(p * 20))) }
        fake.setTotalPages(500)
        let (two, limited) = try await withFakeTMDB(fake) {
            try await TMDBClient.withClient(settings: testSettings(fake)) { client in
                (try await client.popularList(pages: 2), try await client.popularList(pages: 5, limit: 25, concurrency: 1))
            }
        }
        #expect(two.movies.count == 40)
        #expect(limited.movies.map(\.id) == Array(1...25))
        // 2 pages for the first call; the limited one stops after page 2 (25 movies known), with a window of 1.
        #expect(fake.requests(prefix: "/3/").count == 4)
    }

    @Test func bearerTokenAndAPIKeyAuth() async throws {
        let fake = FakeTMDB()
        try fake.setPage(1, movies: movies(1...3))
        try await withFakeTMDB(fake) {
            let viaKey = try await TMDBClient.withClient(settings: testSettings(fake, credentials: .apiKey("test-key"))) {
                try await $0.popularPage(1)
            }
            #expect(viaKey.results.count == 3)
            let log = fake.requests(prefix: "/3/")
            #expect(log.last?.query.contains("api_key=test-key") == true)
            #expect(log.last?.authorization == nil)
            _ = try await TMDBClient.withClient(settings: testSettings(fake)) { try await $0.popularPage(1) }
            #expect(fake.requests(prefix: "/3/").last?.authorization == "Bearer test-token")
            #expect(fake.requests(prefix: "/3/").last?.query.contains("api_key") == false)
            #expect(fake.requests(prefix: "/3/").last?.query.contains("language=en-US") == true)
        }
    }

    @Test func unauthorizedIsTypedWithAHintAndHidesTheKey() async throws {
        let fake = FakeTMDB()
        try fake.setPage(1, movies: movies(1...3))
        try await withFakeTMDB(fake) {
            do {
                _ = try await TMDBClient.withClient(settings: testSettings(fake, credentials: .apiKey("wrong-secret"))) {
                    try await $0.popularPage(1)
                }
                Issue.record("expected 401")
            } catch let error as TMDBError {
                guard case .unauthorized = error else { Issue.record("got \(error)"); return }
                #expect(error.description.contains("TMDB_API_TOKEN") && error.description.contains("TMDB_API_KEY"))
                #expect(!error.description.contains("wrong-secret"))
            }
            // 401 is not retried.
            #expect(fake.requests(prefix: "/3/").count == 1)
            await #expect(throws: TMDBError.missingCredentials) {
                _ = try await TMDBClient.withClient(settings: testSettings(fake, credentials: nil)) {
                    try await $0.popularPage(1)
                }
            }
        }
    }

    // Waits are checked on a VirtualClock shared by the client and the fake (the fake logs arrival times on it), so
    // they are exact and a loaded machine cannot fail them. Parsing of both Retry-After forms is tested with the
    // policy itself (HTTPSupportTests).
    @Test func retriesHonourRetryAfterSeconds() async throws {
        let clock = VirtualClock()
        let fake = FakeTMDB(clock: clock)
        try fake.setPage(1, movies: movies(1...3))
        fake.inject([.status(429, retryAfter: "1")], for: "page:1")
        let page = try await withFakeTMDB(fake) {
            try await TMDBClient.withClient(settings: testSettings(fake), clock: clock) { try await $0.popularPage(1) }
        }
        #expect(page.results.count == 3)
        #expect(fake.requests(prefix: "/3/").count == 2)
        let log = fake.requests(prefix: "/3/")
        // The retry came at least Retry-After (1 s) after the 429, although the backoff alone is ~10 ms.
        #expect(log[1].time - log[0].time >= .seconds(1))
    }

    @Test func retryAfterAsHTTPDateIsHonoured() async throws {
        let clock = VirtualClock()
        let fake = FakeTMDB(clock: clock)
        try fake.setPage(1, movies: movies(1...3))
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        // An absolute date three seconds ahead on the client's clock.
        let retryDate = clock.date.addingTimeInterval(3)
        fake.inject([.status(503, retryAfter: formatter.string(from: retryDate))], for: "page:1")
        _ = try await withFakeTMDB(fake) {
            var settings = testSettings(fake)
            settings.maxRetryAfter = 10
            return try await TMDBClient.withClient(settings: settings, clock: clock) { try await $0.popularPage(1) }
        }
        let log = fake.requests(prefix: "/3/")
        #expect(log.count == 2)
        // The retry was not sent before the date.
        #expect(clock.date >= retryDate)
        #expect(log[1].time - log[0].time >= .seconds(3))
    }

    @Test func serverErrorsAreRetriedThenGivenUp() async throws {
        let fake = FakeTMDB()
        try fake.setPage(1, movies: movies(1...3))
        try fake.setPage(2, movies: movies(4...6))
        fake.inject([.status(500, retryAfter: nil), .status(502, retryAfter: nil)], for: "page:1")
        fake.inject(Array(repeating: .status(500, retryAfter: nil), count: 10), for: "page:2")
        try await withFakeTMDB(fake) {
            try await TMDBClient.withClient(settings: testSettings(fake)) { client in
                let page = try await client.popularPage(1)
                #expect(page.results.map(\.id) == [1, 2, 3])
                do {
                    _ = try await client.popularPage(2)
                    Issue.record("expected tooManyRetries")
                } catch let error as TMDBError {
                    guard case .tooManyRetries(_, let attempts, let last) = error else {
                        Issue.record("got \(error)")
                        return
                    }
                    #expect(attempts == 4 && last == .status(500) && last.description == "HTTP 500")
                }
            }
        }
        #expect(fake.requests(prefix: "/3/").count == 3 + 4)
    }

    @Test func slowAnswerTimesOutAndIsRetried() async throws {
        let fake = FakeTMDB()
        try fake.setPage(1, movies: movies(1...3))
        try fake.setPage(2, movies: movies(4...6))
        // Page 1: slow but within the read timeout. Page 2: first answer slower than the read timeout.
        // Margins wide enough for a machine whose two cores are busy with the other suites running in parallel.
        fake.inject([.delay(0.2)], for: "page:1")
        fake.inject([.delay(12)], for: "page:2")
        let (p1, p2) = try await withFakeTMDB(fake) {
            var settings = testSettings(fake)
            settings.readTimeout = 5
            return try await TMDBClient.withClient(settings: settings) { client in
                (try await client.popularPage(1), try await client.popularPage(2))
            }
        }
        #expect(p1.results.count == 3 && p2.results.count == 3)
        #expect(fake.requests(prefix: "/3/").count == 3)
    }

    @Test func badJSONAndNotFoundAreTyped() async throws {
        let fake = FakeTMDB()
        fake.inject([.body("{\"page\": 1, \"results\": [")], for: "page:1")
        try await withFakeTMDB(fake) {
            try await TMDBClient.withClient(settings: testSettings(fake)) { client in
                do {
                    _ = try await client.popularPage(1)
                    Issue.record("expected badJSON")
                } catch let error as TMDBError {
                    guard case .badJSON = error else { Issue.record("got \(error)"); return }
                }
                do {
                    _ = try await client.fetchPoster(posterPath: "/missing.png", size: "w500")
                    Issue.record("expected notFound")
                } catch let error as TMDBError {
                    guard case .notFound(let url) = error else { Issue.record("got \(error)"); return }
                    #expect(url.hasSuffix("/t/p/w500/missing.png"))
                }
                await #expect(throws: TMDBError.invalidPosterPath("/../etc/passwd")) {
                    _ = try await client.fetchPoster(posterPath: "/../etc/passwd", size: "original")
                }
            }
        }
    }

    @Test func malformedResultsAreDroppedNotFatal() async throws {
        let fake = FakeTMDB()
        fake.inject(
            [.body(#"{"page":1,"results":[{"id":1,"title":"A"},{"title":"no id"},{"id":"x","title":"bad id"},{"id":2,"title":"B","genre_ids":null}],"total_pages":1,"total_results":4}"#)],
            for: "page:1")
        let page = try await withFakeTMDB(fake) {
            try await TMDBClient.withClient(settings: testSettings(fake)) { try await $0.popularPage(1) }
        }
        #expect(page.results.map(\.id) == [1, 2])
        #expect(page.malformedResults == 2)
    }

    @Test func droppedConnectionIsRetried() async throws {
        let fake = FakeTMDB()
        let poster = generatedPoster(seed: 1)
        fake.setPoster("a.png", poster)
        fake.inject([.cut], for: "poster:a.png")
        let bytes = try await withFakeTMDB(fake) {
            try await TMDBClient.withClient(settings: testSettings(fake)) {
                try await $0.fetchPoster(posterPath: "/a.png", size: "original")
            }
        }
        #expect(bytes == poster)
        #expect(fake.requests(prefix: "/t/p/original/a.png").count == 2)
    }

    @Test func rateLimitSpacesRequests() async throws {
        let clock = VirtualClock()
        let fake = FakeTMDB(clock: clock)
        fake.setPoster("a.png", generatedPoster(seed: 1))
        let n = 21
        let started = clock.now
        try await withFakeTMDB(fake) {
            var settings = testSettings(fake)
            settings.requestsPerSecond = 40
            settings.burst = 1
            try await TMDBClient.withClient(settings: settings, clock: clock) { client in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<n { group.addTask { _ = try await client.fetchPoster(posterPath: "/a.png", size: "w92") } }
                    try await group.waitForAll()
                }
            }
        }
        let elapsed = clock.now - started
        // 21 requests at 40/s with no burst: the last starts 20 intervals (0.5 s) after the first.
        #expect(elapsed >= .milliseconds(500) - tick)
        let times = fake.requests(prefix: "/t/p/").map(\.time).sorted()
        #expect(times.count == n)
        // At the server, the k-th arrival comes no earlier than the k-th slot (k intervals of 25 ms): no request
        // reached it before the limiter let it go.
        for (k, t) in times.enumerated() { #expect(t - started >= .milliseconds(25 * k) - tick, "arrival \(k)") }
    }

    @Test func rateLimiterSpacesStartsAfterTheBurst() async throws {
        let clock = VirtualClock()
        let limiter = RateLimiter(rate: 100, burst: 5, clock: clock)
        let origin = clock.now
        var starts: [Duration] = []
        for _ in 0..<25 {
            try await limiter.acquire()
            starts.append(clock.now - origin)
        }
        // The first 5 go at once; request i (0-based) never starts before (i - 4) intervals of 10 ms.
        for (i, t) in starts.enumerated() where i >= 5 {
            #expect(t >= .milliseconds((i - 4) * 10) - tick)
        }
        #expect(starts[4] < .milliseconds(10))
        // Sharing: concurrent callers of a fresh limiter get one slot each, so 20 take at least 19 intervals.
        let shared = RateLimiter(rate: 100, burst: 1, clock: clock)
        let before = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 { group.addTask { try await shared.acquire() } }
            try await group.waitForAll()
        }
        #expect(clock.now - before >= .milliseconds(190) - tick)
    }

    @Test func settingsFromEnvironment() {
        let s = TMDBSettings.resolve(
            environment: ["TMDB_API_KEY": "k", "TMDB_BASE_URL": "http://x/3/", "TMDB_IMAGE_BASE_URL": ""],
            baseURL: nil, imageBaseURL: nil)
        #expect(s.credentials == .apiKey("k"))
        #expect(s.baseURL == "http://x/3")
        #expect(s.imageBaseURL == TMDBSettings.defaultImageBaseURL)
        let t = TMDBSettings.resolve(
            environment: ["TMDB_API_KEY": "k", "TMDB_API_TOKEN": "t", "TMDB_BASE_URL": "http://x/3"],
            baseURL: "http://flag/3", imageBaseURL: "http://img/t/p")
        #expect(t.credentials == .bearerToken("t"))
        #expect(t.baseURL == "http://flag/3" && t.imageBaseURL == "http://img/t/p")
        #expect(TMDBSettings.resolve(environment: [:]).baseURL == "https://api.themoviedb.org/3")
        #expect(TMDBSettings.resolve(environment: [:]).credentials == nil)
    }
}

/// The limiter computes slots in floating-point seconds and sleeps whole nanoseconds: a slot may land this much early.
let tick = Duration.microseconds(1)
