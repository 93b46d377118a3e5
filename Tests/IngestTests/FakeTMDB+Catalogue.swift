// The stand-in's movie database and the endpoints over it: /movie/{list}, /trending/movie/{window}, /discover/movie
// (with TMDB's page cap), /movie/{id} (404 once removed) and /movie/changes (pages, dates, the 14-day limit). Changes
// are stamped with the day of the fake's clock, which the test controls.
import Foundation
import HTTPSupport
import Hummingbird
import Ingest
import PosterSimCore

/// One movie as the stand-in serves it.
struct FakeMovie: Sendable, Codable, Equatable {
    var id: Int
    var title: String
    var posterPath: String?
    var releaseDate: String
    var popularity: Double
    var voteCount: Int
    var originalLanguage: String
    var adult: Bool
    var genres: [Int]

    /// A list or discover entry (`genre_ids`).
    var listJSON: [String: Any] {
        [
            "id": id, "title": title, "original_title": title, "overview": "Overview of \(title)",
            "release_date": releaseDate, "poster_path": posterPath as Any? ?? NSNull(), "backdrop_path": NSNull(),
            "genre_ids": genres, "original_language": originalLanguage, "popularity": popularity,
            "vote_average": 7.0, "vote_count": voteCount, "adult": adult, "video": false,
        ]
    }

    /// A `/movie/{id}` answer (`genres` objects, as TMDB gives them there).
    var detailsJSON: [String: Any] {
        var d = listJSON
        d["genre_ids"] = nil
        d["genres"] = genres.map { ["id": $0, "name": "Genre \($0)"] }
        d["runtime"] = 100
        return d
    }
}

struct FakeCatalogue: Sendable {
    var movies: [Int: FakeMovie] = [:]
    /// List name (`popular`, `top_rated`, `trending:week`...) → ids in list order.
    var lists: [String: [Int]] = [:]
    /// (day, id, adult) per change, in order.
    var changes: [(day: CalendarDay, id: Int, adult: Bool)] = []
    var pageSize = 20
    /// TMDB answers pages 1...pageCap only.
    var pageCap = 500
    var changesPageSize = 100
    var maxChangeWindowDays = 14
}

extension FakeTMDB {
    // MARK: - Test controls

    func addMovies(_ movies: [FakeMovie]) {
        state.withLock { s in for m in movies { s.catalogue.movies[m.id] = m } }
    }

    func setList(_ name: String, ids: [Int]) { state.withLock { $0.catalogue.lists[name] = ids } }

    func configureCatalogue(pageSize: Int? = nil, pageCap: Int? = nil, changesPageSize: Int? = nil) {
        state.withLock { s in
            if let pageSize { s.catalogue.pageSize = pageSize }
            if let pageCap { s.catalogue.pageCap = pageCap }
            if let changesPageSize { s.catalogue.changesPageSize = changesPageSize }
        }
    }

    var today: CalendarDay { CalendarDay(clock.date) }

    /// Edits a movie and records the change on today's date (as TMDB's feed would list it).
    func change(_ id: Int, _ edit: (inout FakeMovie) -> Void) {
        let day = today
        state.withLock { s in
            guard var m = s.catalogue.movies[id] else { return }
            edit(&m)
            s.catalogue.movies[id] = m
            s.catalogue.changes.append((day, id, m.adult))
        }
    }

    /// Removes a movie (404 from now on, gone from every list) and records the change.
    func remove(_ id: Int) {
        let day = today
        state.withLock { s in
            s.catalogue.movies[id] = nil
            for (name, ids) in s.catalogue.lists { s.catalogue.lists[name] = ids.filter { $0 != id } }
            s.catalogue.changes.append((day, id, false))
        }
    }

    func movie(_ id: Int) -> FakeMovie? { state.withLock { $0.catalogue.movies[id] } }

    // MARK: - Endpoints

    func catalogueAnswer(path: String, request: Request) async throws -> Response {
        let (token, key) = state.withLock { ($0.bearerToken, $0.apiKey) }
        guard Self.authorized(request, token: token, key: key) else {
            return Self.json(401, #"{"status_code":7,"status_message":"Invalid API key","success":false}"#)
        }
        let params = request.uri.queryParameters
        let page = params["page"].flatMap { Int($0) } ?? 1
        let parts = path.split(separator: "/").map(String.init)  // ["3", "movie", "popular"]
        guard parts.count >= 3 else { return Self.plain(404) }
        let faultKey = page > 1 || params["page"] != nil ? "\(path):\(page)" : path
        return try await answer(key: faultKey) {
            let c = self.state.withLock { $0.catalogue }
            switch (parts[1], parts.count) {
            case ("movie", 3) where parts[2] == "changes":
                return try Self.changesPage(c, start: params["start_date"].map(String.init),
                                            end: params["end_date"].map(String.init), page: page)
            case ("movie", 3) where Int(parts[2]) != nil:
                guard let m = c.movies[Int(parts[2])!] else {
                    return Self.json(404, #"{"status_code":34,"status_message":"The resource you requested could not be found.","success":false}"#)
                }
                return Self.json(200, String(decoding: try JSONSerialization.data(withJSONObject: m.detailsJSON), as: UTF8.self))
            case ("movie", 3):
                return try Self.listPage(c, ids: c.lists[parts[2]] ?? [], page: page)
            case ("trending", 4) where parts[2] == "movie":
                return try Self.listPage(c, ids: c.lists["trending:\(parts[3])"] ?? [], page: page)
            case ("discover", 3) where parts[2] == "movie":
                let lo = params["primary_release_date.gte"].map(String.init) ?? "0000-00-00"
                let hi = params["primary_release_date.lte"].map(String.init) ?? "9999-99-99"
                let lang = params["with_original_language"].map(String.init)
                let minVotes = params["vote_count.gte"].flatMap { Int($0) } ?? 0
                let ids = c.movies.values
                    .filter { !$0.adult && $0.releaseDate >= lo && $0.releaseDate <= hi && $0.voteCount >= minVotes }
                    .filter { lang == nil || $0.originalLanguage == lang }
                    .sorted { ($0.popularity, -$0.id) > ($1.popularity, -$1.id) }
                    .map(\.id)
                return try Self.listPage(c, ids: ids, page: page)
            default:
                return Self.plain(404)
            }
        }
    }

    static func listPage(_ c: FakeCatalogue, ids: [Int], page: Int) throws -> Response {
        guard page >= 1, page <= c.pageCap else {
            return json(400, #"{"status_code":22,"status_message":"Invalid page: Pages start at 1 and max at 500.","success":false}"#)
        }
        let total = (ids.count + c.pageSize - 1) / c.pageSize
        let slice = ids.dropFirst((page - 1) * c.pageSize).prefix(c.pageSize).compactMap { c.movies[$0]?.listJSON }
        let results = try slice.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        return json(
            200,
            #"{"page":\#(page),"results":[\#(results.joined(separator: ","))],"total_pages":\#(total),"total_results":\#(ids.count)}"#)
    }

    static func changesPage(_ c: FakeCatalogue, start: String?, end: String?, page: Int) throws -> Response {
        func day(_ s: String?) -> CalendarDay? {
            guard let parts = s?.split(separator: "-").compactMap({ Int($0) }), parts.count == 3 else { return nil }
            return CalendarDay(year: parts[0], month: parts[1], day: parts[2])
        }
        guard let from = day(start), let to = day(end), from <= to else {
            return json(400, #"{"status_code":5,"status_message":"Invalid parameters","success":false}"#)
        }
        guard to.number - from.number <= c.maxChangeWindowDays else {
            return json(400, #"{"status_code":5,"status_message":"Invalid date range: Should be a range no longer than 14 days.","success":false}"#)
        }
        var seen = Set<Int>()
        var entries: [String] = []
        for change in c.changes where change.day >= from && change.day <= to && seen.insert(change.id).inserted {
            entries.append(#"{"id":\#(change.id),"adult":\#(change.adult)}"#)
        }
        let total = max(1, (entries.count + c.changesPageSize - 1) / c.changesPageSize)
        let slice = entries.dropFirst((page - 1) * c.changesPageSize).prefix(c.changesPageSize)
        return json(
            200,
            #"{"results":[\#(slice.joined(separator: ","))],"page":\#(page),"total_pages":\#(total),"total_results":\#(entries.count)}"#)
    }
}
