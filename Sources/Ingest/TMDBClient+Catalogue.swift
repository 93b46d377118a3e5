// The endpoints beyond the popular list: one movie's details, the change feed, and discover walked by date ranges.
// All go through `apiGet`, so they share the client's rate limiter, retry policy and typed errors.
import Foundation
import PosterSimCore

/// One entry of `/movie/changes`: a movie whose data changed in the window.
public struct ChangedMovie: Sendable, Hashable {
    public var id: MovieID
    public var adult: Bool?
}

/// TMDB's filters for `/discover/movie` (the `--discover` flags). Years bound `primary_release_date`.
public struct DiscoverFilters: Sendable, Hashable {
    public var yearFrom: Int
    public var yearTo: Int
    /// `with_genres`: comma (and) or pipe (or) separated genre ids, as TMDB reads it.
    public var withGenres: String?
    public var originalLanguage: String?
    /// `vote_count.gte`.
    public var minVotes: Int?
    /// `sort_by`, e.g. `popularity.desc`; the order within each date range walked.
    public var sortBy: String

    public init(
        yearFrom: Int, yearTo: Int, withGenres: String? = nil, originalLanguage: String? = nil, minVotes: Int? = nil,
        sortBy: String = "popularity.desc"
    ) {
        self.yearFrom = yearFrom
        self.yearTo = yearTo
        self.withGenres = withGenres
        self.originalLanguage = originalLanguage
        self.minVotes = minVotes
        self.sortBy = sortBy
    }

    /// The query parameters besides the date range and page.
    var query: [(String, String)] {
        var q: [(String, String)] = [("sort_by", sortBy), ("include_adult", "false"), ("include_video", "false")]
        if let withGenres { q.append(("with_genres", withGenres)) }
        if let originalLanguage { q.append(("with_original_language", originalLanguage)) }
        if let minVotes { q.append(("vote_count.gte", String(minVotes))) }
        return q
    }
}

/// What a discover walk read: the movies, the date ranges queried, and the ranges that still held more than the
/// page cap at a single day (their tail is out of reach; TMDB would need narrower filters).
public struct DiscoverResult: Sendable, Equatable {
    public var movies: [Movie]
    public var pagesRead: Int
    public var malformedResults: Int
    /// Every `[from, to]` range queried, in order (`YYYY-MM-DD`).
    public var ranges: [ClosedRange<CalendarDay>]
    /// Single days whose results exceeded the cap.
    public var truncatedDays: [CalendarDay]
}

/// A day of the proleptic Gregorian calendar in UTC, as a day number (0 = 1970-01-01), printed `YYYY-MM-DD`.
public struct CalendarDay: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var number: Int

    public init(number: Int) { self.number = number }

    public init(year: Int, month: Int, day: Int) {
        // Days from civil (H. Hinnant's algorithm, public domain).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        number = era * 146_097 + doe - 719_468
    }

    public init(_ date: Date) {
        number = Int((date.timeIntervalSince1970 / 86_400).rounded(.down))
    }

    public var components: (year: Int, month: Int, day: Int) {
        let z = number + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    public var description: String {
        let c = components
        return String(format: "%04d-%02d-%02d", c.year, c.month, c.day)
    }

    public static func < (a: CalendarDay, b: CalendarDay) -> Bool { a.number < b.number }
}

extension TMDBClient {
    /// `GET /movie/{id}`: the movie as a list entry (its `genres` become `genre_ids`). 404 is `notFound`.
    public func movieDetails(_ id: MovieID) async throws -> Movie {
        let (body, url) = try await apiGet("/movie/\(id)", query: [])
        struct Genre: Decodable { let id: Int }
        struct Extra: Decodable { let genres: [Genre]? }
        do {
            var movie = try JSONDecoder().decode(Movie.self, from: Data(body))
            if movie.genreIDs.isEmpty, let genres = try JSONDecoder().decode(Extra.self, from: Data(body)).genres {
                movie.genreIDs = genres.map(\.id)
            }
            guard movie.id == id else {
                throw TMDBError.badJSON(url: redacted(url), detail: "asked for movie \(id), got \(movie.id)")
            }
            return movie
        } catch let error as TMDBError {
            throw error
        } catch {
            throw TMDBError.badJSON(url: redacted(url), detail: "\(error)")
        }
    }

    /// `GET /movie/changes` for `[from, to]` (at most `changeWindowDays` apart), every page: the ids TMDB reports
    /// changed, each once.
    public func changedMovies(from: CalendarDay, to: CalendarDay) async throws -> [ChangedMovie] {
        guard to.number - from.number <= settings.changeWindowDays else {
            throw TMDBError.invalidSettings(
                "a change window of \(to.number - from.number) days (TMDB serves at most \(settings.changeWindowDays))")
        }
        struct Entry: Decodable {
            let id: Int?
            let adult: Bool?
        }
        struct Raw: Decodable {
            let page: Int
            let results: [Entry]
            let total_pages: Int
        }
        let query = [("start_date", from.description), ("end_date", to.description)]
        var seen = Set<MovieID>()
        var out: [ChangedMovie] = []
        var page = 1
        var lastPage = 1
        // Sequential: the feed is short (100 ids a page) next to the details it leads to.
        repeat {
            let (body, url) = try await apiGet("/movie/changes", query: query + [("page", String(page))])
            let raw: Raw
            do {
                raw = try JSONDecoder().decode(Raw.self, from: Data(body))
            } catch {
                throw TMDBError.badJSON(url: redacted(url), detail: "\(error)")
            }
            for e in raw.results {
                guard let id = e.id, id >= 0, seen.insert(id).inserted else { continue }
                out.append(ChangedMovie(id: id, adult: e.adult))
            }
            lastPage = min(max(raw.total_pages, 1), settings.pageCap)
            page += 1
        } while page <= lastPage
        return out
    }

    /// `/discover/movie` over `filters`' years, complete despite the page cap: each year is one query unless its
    /// results exceed `pageCap` pages, in which case its date range is halved (and halved again) until every part
    /// fits. Movies are merged by id in walk order, unranked.
    public func discover(
        _ filters: DiscoverFilters, concurrency: Int = 4, onPage: (@Sendable (Int, Int) -> Void)? = nil
    ) async throws -> DiscoverResult {
        var merged = MovieMerger()
        var walk = PageWalk()
        var ranges: [ClosedRange<CalendarDay>] = []
        var truncated: [CalendarDay] = []
        guard filters.yearFrom <= filters.yearTo else {
            throw TMDBError.invalidSettings("discover years \(filters.yearFrom)...\(filters.yearTo) are reversed")
        }
        var pending: [ClosedRange<CalendarDay>] = (filters.yearFrom...filters.yearTo).reversed().map {
            CalendarDay(year: $0, month: 1, day: 1)...CalendarDay(year: $0, month: 12, day: 31)
        }
        // Depth first, earliest range first, so the walk's order is the calendar's.
        while let range = pending.popLast() {
            let query = filters.query + [
                ("primary_release_date.gte", range.lowerBound.description),
                ("primary_release_date.lte", range.upperBound.description),
            ]
            let first = try await listPage("/discover/movie", query: query, page: 1)
            if first.totalPages > settings.pageCap, range.lowerBound < range.upperBound {
                let mid = CalendarDay(number: (range.lowerBound.number + range.upperBound.number) / 2)
                pending.append(CalendarDay(number: mid.number + 1)...range.upperBound)
                pending.append(range.lowerBound...mid)
                walk.count(first)
                continue
            }
            if first.totalPages > settings.pageCap { truncated.append(range.lowerBound) }
            ranges.append(range)
            merged.add(first.results)
            walk.count(first)
            onPage?(walk.pagesRead, 0)
            try await walkPages(
                "/discover/movie", query: query, pages: settings.pageCap, concurrency: concurrency, firstPage: first
            ) { page, _ in
                merged.add(page.results)
                walk.count(page)
                onPage?(walk.pagesRead, 0)
            }
        }
        return DiscoverResult(
            movies: merged.unranked(limit: nil), pagesRead: walk.pagesRead, malformedResults: walk.malformed,
            ranges: ranges, truncatedDays: truncated)
    }
}
