// The JSON shape of query results that both the command line (`--json`) and the HTTP API answer with: a Pinecone query
// response, which is what the original front end parses.

/// A match's `metadata`: the movie as the original service stored it in Pinecone (`id` as a string). Every key is
/// always present (null when TMDB had no value), so a client sees one fixed shape.
public struct MatchMetadata: Codable, Sendable, Equatable {
    public var id: String
    public var title: String
    public var original_title: String?
    public var overview: String?
    public var poster_path: String?
    public var backdrop_path: String?
    public var release_date: String?
    public var vote_average: Double?
    public var vote_count: Int?
    public var popularity: Double?
    public var genre_ids: [Int]
    public var original_language: String?
    public var adult: Bool?
    public var video: Bool?

    public init(_ movie: Movie) {
        id = String(movie.id)
        title = movie.title
        original_title = movie.originalTitle
        overview = movie.overview
        poster_path = movie.posterPath
        backdrop_path = movie.backdropPath
        release_date = movie.releaseDate
        vote_average = movie.voteAverage
        vote_count = movie.voteCount
        popularity = movie.popularity
        genre_ids = movie.genreIDs
        original_language = movie.originalLanguage
        adult = movie.adult
        video = movie.video
    }

    enum CodingKeys: String, CodingKey {
        case id, title, original_title, overview, poster_path, backdrop_path, release_date, vote_average, vote_count,
            popularity, genre_ids, original_language, adult, video
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(title, forKey: .title)
        try c.encode(original_title, forKey: .original_title)
        try c.encode(overview, forKey: .overview)
        try c.encode(poster_path, forKey: .poster_path)
        try c.encode(backdrop_path, forKey: .backdrop_path)
        try c.encode(release_date, forKey: .release_date)
        try c.encode(vote_average, forKey: .vote_average)
        try c.encode(vote_count, forKey: .vote_count)
        try c.encode(popularity, forKey: .popularity)
        try c.encode(genre_ids, forKey: .genre_ids)
        try c.encode(original_language, forKey: .original_language)
        try c.encode(adult, forKey: .adult)
        try c.encode(video, forKey: .video)
    }
}

/// One match: the movie id (a string, as Pinecone ids are), its score in the space's metric (cosine similarity, or
/// squared euclidean distance), the metadata, and the stored vector only when asked for (`values`).
public struct MatchOutput: Codable, Sendable, Equatable {
    public var id: String
    public var score: Float
    public var values: [Float]?
    public var metadata: MatchMetadata

    public init(id: String, score: Float, values: [Float]? = nil, metadata: MatchMetadata) {
        self.id = id
        self.score = score
        self.values = values
        self.metadata = metadata
    }
}

/// `{"matches": [...], "namespace": "..."}`.
public struct MatchesOutput: Codable, Sendable, Equatable {
    public var matches: [MatchOutput]
    public var namespace: String

    public init(matches: [MatchOutput], namespace: String) {
        self.matches = matches
        self.namespace = namespace
    }

    /// The matches of a query joined with their movies (matches whose movie is gone are left out, in order).
    public init(matches: [SearchMatch], movies: [Movie], namespace: String, values: [MovieID: [Float]]? = nil) {
        let byID = Dictionary(movies.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.matches = matches.compactMap { match in
            byID[match.movieID].map {
                MatchOutput(
                    id: String(match.movieID), score: match.score, values: values?[match.movieID],
                    metadata: MatchMetadata($0))
            }
        }
        self.namespace = namespace
    }
}

/// One query result: the movie id and its score in the space's metric (see `DistanceMetric`).
public struct SearchMatch: Sendable, Hashable, Codable {
    public var movieID: MovieID
    public var score: Float

    public init(movieID: MovieID, score: Float) {
        self.movieID = movieID
        self.score = score
    }
}
