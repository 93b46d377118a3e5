// The TMDB source flags `ingest tmdb` and `sync` share: a list, trending, discover with its filters, explicit ids,
// and the catalogue's language.
import ArgumentParser
import Foundation
import Ingest
import PosterSimCore

struct SourceOptions: ParsableArguments {
    @Option(help: "A TMDB list: popular, top_rated, now_playing or upcoming (with --pages).")
    var list: String?
    @Option(help: "TMDB's trending movies of the day or the week: day or week (with --pages).")
    var trending: String?
    @Option(help: "List and trending pages to read (20 movies each; TMDB serves at most 500). Default 5.")
    var pages: Int?
    @Flag(help: """
        TMDB's discover with the filters below, walked year by year (a year with more than 500 pages of results is \
        split into smaller date ranges), so a range of any size is read completely.
        """)
    var discover = false
    @Option(help: "Discover: first release year (default 1900).") var yearFrom: Int?
    @Option(help: "Discover: last release year (default this year).") var yearTo: Int?
    @Option(help: "Discover: TMDB genre ids, comma-separated (all of) or pipe-separated (any of).") var withGenres: String?
    @Option(help: "Discover: original language (ISO 639-1, e.g. fr).") var originalLanguage: String?
    @Option(help: "Discover: at least this many votes.") var minVotes: Int?
    @Option(help: "Discover: TMDB sort order within each date range (default popularity.desc).") var sortBy: String?
    @Option(help: "Explicit TMDB ids (/movie/{id}): a file of ids, or a comma-separated list.") var ids: String?
    @Option(help: """
        TMDB language of titles and overviews, e.g. fr-FR (default: the store's, else en-US). A store holds one \
        language; another one is refused.
        """)
    var language: String?

    func validate() throws {
        if let list, TMDBList(rawValue: list) == nil {
            throw ValidationError("--list must be one of " + TMDBList.allCases.map(\.rawValue).joined(separator: ", "))
        }
        if let trending, TrendingWindow(rawValue: trending) == nil {
            throw ValidationError("--trending must be day or week")
        }
        if let pages, !(1...500).contains(pages) { throw ValidationError("--pages must be between 1 and 500") }
        let discoverFlags: [Any?] = [yearFrom, yearTo, withGenres, originalLanguage, minVotes, sortBy]
        if !discover, discoverFlags.contains(where: { $0 != nil }) {
            throw ValidationError("--year-from, --year-to, --with-genres, --original-language, --min-votes and --sort-by go with --discover")
        }
        if let language, language.isEmpty { throw ValidationError("--language must not be empty") }
    }

    /// The sources the flags name, in the order list, trending, discover, ids (possibly none).
    func sources(now: Date = Date()) throws -> [CatalogueSource] {
        var out: [CatalogueSource] = []
        let pages = self.pages ?? 5
        if let list, let l = TMDBList(rawValue: list) { out.append(.list(l, pages: pages)) }
        if let trending, let w = TrendingWindow(rawValue: trending) { out.append(.trending(w, pages: pages)) }
        if discover {
            let thisYear = CalendarDay(now).components.year
            var f = DiscoverFilters(yearFrom: yearFrom ?? 1900, yearTo: yearTo ?? thisYear)
            guard f.yearFrom <= f.yearTo else { throw ValidationError("--year-from is after --year-to") }
            f.withGenres = withGenres
            f.originalLanguage = originalLanguage
            f.minVotes = minVotes
            if let sortBy { f.sortBy = sortBy }
            out.append(.discover(f))
        }
        if let ids {
            var text = ids
            if FileManager.default.fileExists(atPath: ids) {
                guard let data = FileManager.default.contents(atPath: ids) else {
                    throw ValidationError("cannot read --ids file \(ids)")
                }
                text = String(decoding: data, as: UTF8.self)
            }
            guard let parsed = CatalogueSource.parseIDs(text), !parsed.isEmpty else {
                throw ValidationError("--ids: expected TMDB ids (non-negative integers) separated by commas or spaces")
            }
            out.append(.ids(parsed))
        }
        return out
    }
}
