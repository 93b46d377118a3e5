import Foundation

/// TMDB's numeric movie id. Integers in storage; APIs that speak JSON to a front end use `String(id)`.
public typealias MovieID = Int

/// A movie's metadata as TMDB's `/movie/popular` returns it (the fields the original pipeline stored), plus the rank in
/// the popular list. Codable with TMDB's snake_case keys; fields TMDB may omit or send as null are optional
/// (`genre_ids` decodes a missing value as empty).
public struct Movie: Sendable, Hashable, Codable {
    public var id: MovieID
    public var title: String
    public var originalTitle: String?
    public var overview: String?
    /// `YYYY-MM-DD`, or empty/nil when TMDB has no date.
    public var releaseDate: String?
    public var posterPath: String?
    public var backdropPath: String?
    public var genreIDs: [Int]
    public var originalLanguage: String?
    public var popularity: Double?
    public var voteAverage: Double?
    public var voteCount: Int?
    public var adult: Bool?
    public var video: Bool?
    /// 1-based position in the popular list (first occurrence), if the movie came from it. Not a TMDB field.
    public var popularityRank: Int?

    public init(
        id: MovieID, title: String, originalTitle: String? = nil, overview: String? = nil, releaseDate: String? = nil,
        posterPath: String? = nil, backdropPath: String? = nil, genreIDs: [Int] = [], originalLanguage: String? = nil,
        popularity: Double? = nil, voteAverage: Double? = nil, voteCount: Int? = nil, adult: Bool? = nil,
        video: Bool? = nil, popularityRank: Int? = nil
    ) {
        self.id = id
        self.title = title
        self.originalTitle = originalTitle
        self.overview = overview
        self.releaseDate = releaseDate
        self.posterPath = posterPath
        self.backdropPath = backdropPath
        self.genreIDs = genreIDs
        self.originalLanguage = originalLanguage
        self.popularity = popularity
        self.voteAverage = voteAverage
        self.voteCount = voteCount
        self.adult = adult
        self.video = video
        self.popularityRank = popularityRank
    }

    enum CodingKeys: String, CodingKey {
        case id, title, overview, popularity, adult, video
        case originalTitle = "original_title"
        case releaseDate = "release_date"
        case posterPath = "poster_path"
        case backdropPath = "backdrop_path"
        case genreIDs = "genre_ids"
        case originalLanguage = "original_language"
        case voteAverage = "vote_average"
        case voteCount = "vote_count"
        case popularityRank = "popularity_rank"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(MovieID.self, forKey: .id)
        title = try c.decode(String.self, forKey: .title)
        originalTitle = try c.decodeIfPresent(String.self, forKey: .originalTitle)
        overview = try c.decodeIfPresent(String.self, forKey: .overview)
        releaseDate = try c.decodeIfPresent(String.self, forKey: .releaseDate)
        posterPath = try c.decodeIfPresent(String.self, forKey: .posterPath)
        backdropPath = try c.decodeIfPresent(String.self, forKey: .backdropPath)
        genreIDs = try c.decodeIfPresent([Int].self, forKey: .genreIDs) ?? []
        originalLanguage = try c.decodeIfPresent(String.self, forKey: .originalLanguage)
        popularity = try c.decodeIfPresent(Double.self, forKey: .popularity)
        voteAverage = try c.decodeIfPresent(Double.self, forKey: .voteAverage)
        voteCount = try c.decodeIfPresent(Int.self, forKey: .voteCount)
        adult = try c.decodeIfPresent(Bool.self, forKey: .adult)
        video = try c.decodeIfPresent(Bool.self, forKey: .video)
        popularityRank = try c.decodeIfPresent(Int.self, forKey: .popularityRank)
    }

    /// The release year from `release_date` (`YYYY-…`), or nil when absent or unparsable.
    /// "Title - YYYY-MM-DD", as the original front end's title list shows a movie ("Title" alone without a date).
    public var label: String {
        guard let releaseDate, !releaseDate.isEmpty else { return title }
        return "\(title) - \(releaseDate)"
    }

    /// Whether `label` contains `text`, ignoring case and accents (an empty text matches everything).
    public func labelMatches(_ text: String) -> Bool {
        let needle = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !needle.isEmpty else { return true }
        return label.range(of: needle, options: [.caseInsensitive, .diacriticInsensitive]) != nil
    }

    public var releaseYear: Int? {
        guard let date = releaseDate, date.utf8.count >= 4 else { return nil }
        let digits = date.utf8.prefix(4)
        guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }
}
