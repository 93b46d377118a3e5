import Foundation
import PosterSimCore
import Store

/// TMDB's curated movie lists (`/movie/{list}`).
public enum TMDBList: String, Sendable, Hashable, CaseIterable {
    case popular
    case topRated = "top_rated"
    case nowPlaying = "now_playing"
    case upcoming
}

/// `/trending/movie/{window}`.
public enum TrendingWindow: String, Sendable, Hashable, CaseIterable {
    case day, week
}

/// Where an ingest or a sync takes its movies from. The store records each source an ingest used
/// (`CatalogueSourceRecord`: `key` and `spec`), so `postersim sync` without source flags asks the same again.
public enum CatalogueSource: Sendable, Hashable, CustomStringConvertible {
    /// A curated list, pages 1...`pages` (TMDB serves at most 500).
    case list(TMDBList, pages: Int)
    /// Trending movies of the day or the week, pages 1...`pages`.
    case trending(TrendingWindow, pages: Int)
    /// `/discover/movie` with filters, walked by date ranges so the page cap never cuts it.
    case discover(DiscoverFilters)
    /// Explicit ids, each read with `/movie/{id}`.
    case ids([MovieID])

    /// The name the store keys the source by: one entry per list or trending window (a later ingest with another
    /// page count replaces it), one per distinct discover query, one for explicit ids.
    public var key: String {
        switch self {
        case .list(let list, _): "list:\(list.rawValue)"
        case .trending(let window, _): "trending:\(window.rawValue)"
        case .discover: "discover:" + spec.dropFirst("discover ".count)
        case .ids: "ids"
        }
    }

    /// The whole request as text, what `init(spec:)` reads back: `list popular pages=5`, `trending week pages=1`,
    /// `discover year_from=1990 year_to=1999 with_genres=18 original_language=fr min_votes=10
    /// sort_by=popularity.desc`, `ids 550,603`.
    public var spec: String {
        switch self {
        case .list(let list, let pages): return "list \(list.rawValue) pages=\(pages)"
        case .trending(let window, let pages): return "trending \(window.rawValue) pages=\(pages)"
        case .discover(let f):
            var parts = ["discover", "year_from=\(f.yearFrom)", "year_to=\(f.yearTo)"]
            if let g = f.withGenres { parts.append("with_genres=\(g)") }
            if let l = f.originalLanguage { parts.append("original_language=\(l)") }
            if let v = f.minVotes { parts.append("min_votes=\(v)") }
            parts.append("sort_by=\(f.sortBy)")
            return parts.joined(separator: " ")
        case .ids(let ids): return "ids " + ids.map(String.init).joined(separator: ",")
        }
    }

    public var description: String { spec }

    public var record: CatalogueSourceRecord { CatalogueSourceRecord(key: key, spec: spec) }

    /// Parses `spec` (see `spec`); nil for anything else.
    public init?(spec: String) {
        let words = spec.split(separator: " ").map(String.init)
        guard let kind = words.first else { return nil }
        var params: [String: String] = [:]
        for word in words.dropFirst(2) {
            let kv = word.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { return nil }
            params[kv[0]] = kv[1]
        }
        func pages() -> Int? { params["pages"].flatMap(Int.init).flatMap { $0 >= 1 ? $0 : nil } }
        switch kind {
        case "list":
            guard words.count >= 2, let list = TMDBList(rawValue: words[1]), let p = pages() else { return nil }
            self = .list(list, pages: p)
        case "trending":
            guard words.count >= 2, let window = TrendingWindow(rawValue: words[1]), let p = pages() else { return nil }
            self = .trending(window, pages: p)
        case "discover":
            params = [:]
            for word in words.dropFirst() {
                let kv = word.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { return nil }
                params[kv[0]] = kv[1]
            }
            guard let from = params["year_from"].flatMap(Int.init), let to = params["year_to"].flatMap(Int.init),
                from <= to
            else { return nil }
            var f = DiscoverFilters(yearFrom: from, yearTo: to)
            f.withGenres = params["with_genres"]
            f.originalLanguage = params["original_language"]
            if let v = params["min_votes"] {
                guard let n = Int(v) else { return nil }
                f.minVotes = n
            }
            if let s = params["sort_by"] { f.sortBy = s }
            self = .discover(f)
        case "ids":
            guard words.count == 2, let ids = Self.parseIDs(words[1]) else { return nil }
            self = .ids(ids)
        default:
            return nil
        }
    }

    /// `550,603 27205` (commas, spaces or newlines) as distinct non-negative ids in order; nil if any is not one.
    public static func parseIDs(_ text: String) -> [MovieID]? {
        var seen = Set<MovieID>()
        var ids: [MovieID] = []
        for token in text.split(whereSeparator: { $0 == "," || $0.isWhitespace }) {
            guard let id = MovieID(token), id >= 0 else { return nil }
            if seen.insert(id).inserted { ids.append(id) }
        }
        return ids
    }

    /// Combines two sources with the same key into one: explicit ids are united (a later `--ids` adds to the
    /// earlier ones); any other source is replaced by the later one.
    public func adding(_ later: CatalogueSource) -> CatalogueSource {
        if case .ids(let a) = self, case .ids(let b) = later {
            return .ids(a + b.filter { !Set(a).contains($0) })
        }
        return later
    }
}
