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

    /// `+` to space and `%XX` to bytes; a malformed escape or a result that is not UTF-8 leaves the text as sent.
    /// (Hand-written: Foundation's `replacingOccurrences` and `removingPercentEncoding` dominated a cached request.)
    static func decode(_ raw: Substring) -> String {
        let utf8 = raw.utf8
        guard utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(raw) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var i = utf8.startIndex
        while i != utf8.endIndex {
            let b = utf8[i]
            if b == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if b == UInt8(ascii: "%") {
                let h1 = utf8.index(after: i)
                guard h1 != utf8.endIndex, utf8.index(after: h1) != utf8.endIndex, let hi = hexValue(utf8[h1]),
                    let lo = hexValue(utf8[utf8.index(after: h1)])
                else { return String(raw) }
                bytes.append(hi << 4 | lo)
                i = utf8.index(after: utf8.index(after: h1))
                continue
            } else {
                bytes.append(b)
            }
            i = utf8.index(after: i)
        }
        return String(validating: bytes, as: UTF8.self) ?? String(raw)
    }

    /// Why `query` is not text once decoded, or nil when it is: every `%` starts a two-digit hex escape, the decoded
    /// bytes are UTF-8, and there is no control character except tab, CR and LF (a pasted description may hold them).
    static func invalidText(in query: String) -> String? {
        let utf8 = query.utf8
        // Without escapes the text is the String's own, valid UTF-8: only control characters can be wrong.
        guard utf8.contains(UInt8(ascii: "%")) else { return controlCharacter(in: utf8) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return "malformed percent-encoding"
            }
            bytes.append(high << 4 | low)
        }
        guard String(validating: bytes, as: UTF8.self) != nil else { return "not UTF-8 text" }
        return controlCharacter(in: bytes)
    }

    private static func controlCharacter(in bytes: some Sequence<UInt8>) -> String? {
        guard let control = bytes.first(where: { ($0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D) || $0 == 0x7F })
        else { return nil }
        return control == 0 ? "NUL character" : "control character"
    }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    subscript(_ key: String) -> String? { values[key] }

    /// Without leading and trailing whitespace (Unicode's, as `Character.isWhitespace` says); cheap when there is none.
    static func trimmed(_ text: String) -> String {
        guard let first = text.first, let last = text.last, first.isWhitespace || last.isWhitespace else { return text }
        guard let start = text.firstIndex(where: { !$0.isWhitespace }),
            let end = text.lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return String(text[start...end])
    }

    /// The first of `keys` present, trimmed; nil when absent or empty.
    func text(_ keys: String...) -> String? {
        for key in keys {
            if let value = values[key].map(Self.trimmed), !value.isEmpty { return value }
        }
        return nil
    }

    func int(_ keys: String..., default fallback: Int? = nil, range: ClosedRange<Int>) throws -> Int? {
        for key in keys {
            guard let text = values[key].map(Self.trimmed), !text.isEmpty else { continue }
            guard let value = Int(text), range.contains(value) else {
                throw APIError(.badRequest, "\(key) must be an integer between \(range.lowerBound) and \(range.upperBound)")
            }
            return value
        }
        return fallback
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let text = values[key].map({ Self.trimmed($0).lowercased() }), !text.isEmpty else {
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
