// The client's endpoints beyond the popular list against the stand-in: lists and trending, discover under a page
// cap, details with 404, the change feed's pages and dates, and the faults every request survives.
import Foundation
import HTTPSupport
import Ingest
import PosterSimCore
import Testing

@Suite(.timeLimit(.minutes(2))) struct TMDBCatalogueClientTests {
    /// A stand-in holding `byYear` films per year (ids from 1), 2 per page and 3 pages at most (so 6 per query).
    static func discoverWorld(_ byYear: [Int: Int]) -> FakeTMDB {
        let fake = FakeTMDB()
        fake.configureCatalogue(pageSize: 2, pageCap: 3)
        var id = 1
        for (year, n) in byYear.sorted(by: { $0.key < $1.key }) {
            for i in 0..<n {
                fake.addMovies([
                    FakeMovie(
                        id: id, title: "Film \(id)", posterPath: "/d\(id).png",
                        releaseDate: CalendarDay(number: CalendarDay(year: year, month: 1, day: 1).number + i * 36).description,
                        popularity: Double(1000 - id), voteCount: 10 * id, originalLanguage: id % 2 == 0 ? "fr" : "en",
                        adult: false, genres: [18])
                ])
                id += 1
            }
        }
        return fake
    }

    @Test func discoverSplitsAYearBeyondThePageCapAndReadsEveryFilm() async throws {
        let fake = Self.discoverWorld([2019: 3, 2020: 10, 2021: 0])
        // The fake's port is known once it runs.
        let settings: @Sendable () -> TMDBSettings = {
            var s = testSettings(fake)
            s.pageCap = 3
            return s
        }
        let result = try await withFakeTMDB(fake) {
            try await TMDBClient.withClient(settings: settings()) { client in
                try await client.discover(DiscoverFilters(yearFrom: 2019, yearTo: 2021))
            }
        }
        #expect(result.movies.map(\.id).sorted() == Array(1...13))
        #expect(result.truncatedDays.isEmpty)
        // 2020 (10 films, 5 pages) was halved; 2019 and 2021 were one query each.
        #expect(result.ranges.first?.description == "2019-01-01...2019-12-31")
        #expect(result.ranges.contains { $0.lowerBound.description == "2020-01-01" && $0.upperBound.description != "2020-12-31" })
        #expect(result.ranges.last?.description == "2021-01-01...2021-12-31")
        // Never a page beyond the cap.
        let pages = fake.requests(prefix: "/3/discover/movie").compactMap {
            URLComponents(string: "http://x/?\($0.query)")?.queryItems?.first { $0.name == "page" }?.value.flatMap(Int.init)
        }
        #expect(pages.max() == 3)

        // Filters reach TMDB: only French films with at least 40 votes.
        var f = DiscoverFilters(yearFrom: 2020, yearTo: 2020)
        f.originalLanguage = "fr"
        f.minVotes = 40
        let french = try await withFakeTMDB(fake) {
            try await TMDBClient.withClient(settings: settings()) { try await $0.discover(f) }
        }
        #expect(french.movies.map(\.id).sorted() == [4, 6, 8, 10, 12])
    }

    @Test func listsTrendingDetailsAndChangesSurviveFaults() async throws {
        let clock = VirtualClock(date: SyncWorld.dayOne)
        let fake = FakeTMDB(clock: clock)
        fake.configureCatalogue(pageSize: 2, changesPageSize: 2)
        for id in 1...6 {
            fake.addMovies([
                FakeMovie(
                    id: id, title: "Film \(id)", posterPath: "/f\(id).png", releaseDate: "2020-05-0\(id)",
                    popularity: 10, voteCount: 5, originalLanguage: "en", adult: false, genres: [18, 27])
            ])
        }
        fake.setList("now_playing", ids: [3, 1, 2, 1, 4])
        fake.setList("trending:day", ids: [6, 5])
        clock.advance(by: .seconds(86_400))
        for id in [2, 4, 6] { fake.change(id) { $0.voteCount += 1 } }
        fake.remove(5)
        // Faults: 429 with Retry-After on a list page, 503 on a details call, a slow changes page (timed out, then
        // retried), and an answer cut by a 500 before the first trending page.
        fake.inject([.status(429, retryAfter: "1")], for: "/3/movie/now_playing:2")
        fake.inject([.status(503, retryAfter: nil), .status(502, retryAfter: nil)], for: "/3/movie/2")
        fake.inject([.delay(6)], for: "/3/movie/changes:2")
        fake.inject([.status(500, retryAfter: nil)], for: "/3/trending/movie/day:1")
        let settings: @Sendable () -> TMDBSettings = {
            var s = testSettings(fake)
            // Wide margins: the other suites keep both cores busy, and only the delayed page may time out.
            s.readTimeout = 2
            s.requestTimeout = 3
            return s
        }
        let clientClock = VirtualClock()
        let (nowPlaying, trending, lookups, changes) = try await withFakeTMDB(fake) {
            try await TMDBClient.withClient(settings: settings(), clock: clientClock) { client in
                (
                    try await client.list(.list(.nowPlaying, pages: 10)),
                    try await client.list(.trending(.day, pages: 1)),
                    try await client.details([2, 5, 1]),
                    try await client.changedMovies(from: CalendarDay(SyncWorld.dayOne), to: CalendarDay(clock.date))
                )
            }
        }
        #expect(nowPlaying.movies.map(\.id) == [3, 1, 2, 4])
        #expect(nowPlaying.movies.allSatisfy { $0.popularityRank == nil })
        #expect(trending.movies.map(\.id) == [6])
        #expect(lookups.count == 3)
        guard case .found(let two) = lookups[0] else { throw TestFailure("movie 2 not found") }
        #expect(two.genreIDs == [18, 27] && two.voteCount == 6)
        #expect(lookups[1] == .notFound(5))
        #expect(changes.map(\.id) == [2, 4, 6, 5])
        // The 429's Retry-After was waited (on the client's clock).
        #expect(clientClock.sleeps.contains { $0 >= .seconds(1) })
        #expect(fake.requests(prefix: "/3/movie/changes").count == 3)

        // A window longer than TMDB allows is refused before any request.
        await #expect(throws: TMDBError.self) {
            try await withFakeTMDB(fake) {
                try await TMDBClient.withClient(settings: settings()) {
                    try await $0.changedMovies(from: CalendarDay(year: 2026, month: 1, day: 1), to: CalendarDay(year: 2026, month: 1, day: 16))
                }
            }
        }
    }

    @Test func sourceSpecsRoundTrip() throws {
        var f = DiscoverFilters(yearFrom: 1990, yearTo: 1999, withGenres: "18|35", originalLanguage: "fr", minVotes: 10)
        f.sortBy = "vote_count.desc"
        let sources: [CatalogueSource] = [
            .list(.topRated, pages: 7), .trending(.week, pages: 2), .discover(f), .ids([550, 603]),
        ]
        for s in sources { #expect(CatalogueSource(spec: s.spec) == s) }
        #expect(sources.map(\.key) == [
            "list:top_rated", "trending:week",
            "discover:year_from=1990 year_to=1999 with_genres=18|35 original_language=fr min_votes=10 sort_by=vote_count.desc",
            "ids",
        ])
        for bad in ["", "list", "list best pages=3", "list popular", "trending hour pages=1", "discover year_from=2000",
                    "ids 1,x", "unknown"] {
            #expect(CatalogueSource(spec: bad) == nil, "\(bad)")
        }
        #expect(CatalogueSource.parseIDs("550, 603\n550 27205") == [550, 603, 27205])
        #expect(CalendarDay(year: 2024, month: 2, day: 29).description == "2024-02-29")
        #expect(CalendarDay(Date(timeIntervalSince1970: 0)).description == "1970-01-01")
    }
}
