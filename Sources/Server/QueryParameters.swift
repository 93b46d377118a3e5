import Foundation
import Store

/// A query string as browsers send it (`+` is a space, percent-escapes decoded); the first occurrence of a key wins.
struct QueryParameters {
    private var values: [String: String] = [:]

    init(_ query: String?) {
        guard let query, !query.isEmpty else { return }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.decode(parts[0])
            guard !key.isEmpty, values[key] == nil else { continue }
            values[key] = parts.count > 1 ? Self.decode(parts[1]) : ""
        }
    }

    static func decode(_ raw: Substring) -> String {
        let spaced = raw.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }

    subscript(_ key: String) -> String? { values[key] }

    /// The first of `keys` present, trimmed; nil when absent or empty.
    func text(_ keys: String...) -> String? {
        for key in keys {
            if let value = values[key]?.trimmingCharacters(in: .whitespaces), !value.isEmpty { return value }
        }
        return nil
    }

    func int(_ keys: String..., default fallback: Int? = nil, range: ClosedRange<Int>) throws -> Int? {
        for key in keys {
            guard let text = values[key]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { continue }
            guard let value = Int(text), range.contains(value) else {
                throw APIError(.badRequest, "\(key) must be an integer between \(range.lowerBound) and \(range.upperBound)")
            }
            return value
        }
        return fallback
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let text = values[key]?.trimmingCharacters(in: .whitespaces).lowercased(), !text.isEmpty else {
            return fallback
        }
        switch text {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw APIError(.badRequest, "\(key) must be true or false")
        }
    }

    /// The search filters: `yearFrom`/`yearTo` (also `minYear`/`maxYear`), `genre` (TMDB genre id), `language`
    /// (original language code), `minVotes`, `adult`.
    func filter() throws -> SearchFilter {
        var filter = SearchFilter()
        filter.minYear = try int("yearFrom", "minYear", range: 0...9999)
        filter.maxYear = try int("yearTo", "maxYear", range: 0...9999)
        filter.genreID = try int("genre", "genreId", range: 0...Int(Int32.max))
        filter.minVoteCount = try int("minVotes", range: 0...Int(Int32.max))
        if let language = text("language", "originalLanguage") {
            guard language.count <= 16, language.allSatisfy({ $0.isLetter || $0 == "-" }) else {
                throw APIError(.badRequest, "language must be a language code such as en, fr or ja")
            }
            filter.originalLanguage = language
        }
        if values["adult"] != nil { filter.adult = try bool("adult", default: false) }
        return filter
    }
}

extension SearchFilter {
    /// A stable text form for cache keys.
    var cacheKey: String {
        func s(_ v: (some CustomStringConvertible)?) -> String { v.map { "\($0)" } ?? "" }
        return "\(s(minYear)),\(s(maxYear)),\(s(genreID)),\(s(originalLanguage)),\(s(adult)),\(s(minVoteCount))"
    }
}
