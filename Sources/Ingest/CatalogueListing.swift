import Foundation
import PosterSimCore

/// What reading one source gave: its movies (merged by id), and what could not be read.
public struct SourceListing: Sendable, Equatable {
    public var movies: [Movie]
    /// Result entries that were not movies.
    public var malformed: Int
    public var pagesRead: Int
    /// Ids TMDB answered 404 for (explicit ids only).
    public var notFound: [MovieID] = []
    /// Single days a discover walk could not read completely (more results than the page cap on one day).
    public var truncatedDays: [String] = []
}

/// One movie's details, or the fact that TMDB no longer has it.
public enum MovieLookup: Sendable, Equatable {
    case found(Movie)
    case notFound(MovieID)
}

extension TMDBClient {
    /// Reads `source`: list and trending pages (ranked only for the popular list), a discover walk, or each id's
    /// details. `limit` keeps the first that many movies.
    public func list(
        _ source: CatalogueSource, limit: Int? = nil, concurrency: Int = 4,
        onPage: (@Sendable (Int, Int) -> Void)? = nil
    ) async throws -> SourceListing {
        switch source {
        case .list(let list, let pages):
            let l = try await pagedList(
                "/movie/\(list.rawValue)", pages: pages, limit: limit, concurrency: concurrency,
                ranked: list == .popular, onPage: onPage)
            return SourceListing(movies: l.movies, malformed: l.malformedResults, pagesRead: l.pagesRead)
        case .trending(let window, let pages):
            let l = try await pagedList(
                "/trending/movie/\(window.rawValue)", pages: pages, limit: limit, concurrency: concurrency,
                ranked: false, onPage: onPage)
            return SourceListing(movies: l.movies, malformed: l.malformedResults, pagesRead: l.pagesRead)
        case .discover(let filters):
            let d = try await discover(filters, concurrency: concurrency, onPage: onPage)
            return SourceListing(
                movies: limit.map { Array(d.movies.prefix(max(0, $0))) } ?? d.movies, malformed: d.malformedResults,
                pagesRead: d.pagesRead, truncatedDays: d.truncatedDays.map(\.description))
        case .ids(let ids):
            let wanted = limit.map { Array(ids.prefix(max(0, $0))) } ?? ids
            var movies: [Movie] = []
            var notFound: [MovieID] = []
            for lookup in try await details(wanted, concurrency: concurrency) {
                switch lookup {
                case .found(let m): movies.append(m)
                case .notFound(let id): notFound.append(id)
                }
            }
            return SourceListing(movies: movies, malformed: 0, pagesRead: 0, notFound: notFound)
        }
    }

    /// `/movie/{id}` for each id, `concurrency` at a time, in the order of `ids`; a 404 is `notFound`, any other
    /// failure (after the client's retries) throws.
    public func details(_ ids: [MovieID], concurrency: Int = 4) async throws -> [MovieLookup] {
        var out: [MovieID: MovieLookup] = [:]
        try await withThrowingTaskGroup(of: MovieLookup.self) { group in
            var next = ids.makeIterator()
            var running = 0
            func launch() {
                guard let id = next.next() else { return }
                running += 1
                group.addTask {
                    do {
                        return .found(try await self.movieDetails(id))
                    } catch TMDBError.notFound {
                        return .notFound(id)
                    }
                }
            }
            for _ in 0..<max(1, concurrency) { launch() }
            while running > 0, let lookup = try await group.next() {
                running -= 1
                switch lookup {
                case .found(let m): out[m.id] = lookup
                case .notFound(let id): out[id] = lookup
                }
                launch()
            }
        }
        return ids.compactMap { out[$0] }
    }
}
