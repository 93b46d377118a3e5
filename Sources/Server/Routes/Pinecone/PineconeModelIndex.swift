// The model spaces (`clip`, `resnet50`, `vgg16`) seen as read-only Pinecone indexes: ids are TMDB ids as strings,
// metadata the movie as `/api/get-similar-movies` returns it, and every vector lives in the default namespace "".
// `query(id=…)` is the same store call as `/api/get-similar-movies`, so it returns the same matches.
import Foundation
import PosterSimCore
import Store

extension PineconeAPI {
    /// Movies a model index's `list` walks through (the movie catalogue this store is for is far smaller).
    static let maxListedMovies = 1_000_000

    func modelQuery(_ model: ModelName, namespace: String, vector: [Float], query: RecordQuery) async throws
        -> [PineconeWire.ScoredVector]
    {
        guard namespace.isEmpty else { return [] }
        let matches: [SearchMatch]
        do {
            if let filter = query.filter {
                matches = try await filtered(model, filter: filter, k: query.topK) { k in
                    try await store.query(space: model.rawValue, vector: vector, k: k)
                }
            } else {
                matches = try await store.query(space: model.rawValue, vector: vector, k: query.topK)
            }
        } catch StoreError.unknownSpace {
            return []
        }
        return try await scored(matches, model: model, query: query)
    }

    func modelQuery(_ model: ModelName, namespace: String, id: String, query: RecordQuery) async throws
        -> [PineconeWire.ScoredVector]
    {
        guard namespace.isEmpty, let movieID = MovieID(id), movieID >= 0 else { return [] }
        let matches: [SearchMatch]
        do {
            if let filter = query.filter {
                matches = try await filtered(model, filter: filter, k: query.topK) { k in
                    try await store.query(space: model.rawValue, movieID: movieID, k: k, excludeSelf: false)
                }
            } else {
                matches = try await store.query(
                    space: model.rawValue, movieID: movieID, k: query.topK, filter: .none, excludeSelf: false)
            }
        } catch StoreError.unknownMovie, StoreError.noEmbedding, StoreError.unknownSpace {
            return []
        }
        return try await scored(matches, model: model, query: query)
    }

    /// A filtered query, exact: every vector of the space ranked, then the filter applied in order. Refused when the
    /// space holds more vectors than one query may return.
    func filtered(
        _ model: ModelName, filter: MetadataFilter, k: Int, ranked: (Int) async throws -> [SearchMatch]
    ) async throws -> [SearchMatch] {
        let count = try await store.stats().spaces.first { $0.space.name == model.rawValue }?.vectors ?? 0
        guard count > 0 else { return [] }
        guard count <= StoreError.maxK else {
            throw PineconeError.badRequest(
                "filters on model indexes need at most \(StoreError.maxK) vectors in the space; it holds \(count)")
        }
        let all = try await ranked(count)
        let movies = try await store.fetchMovies(ids: all.map(\.movieID))
        let passing = Set(movies.filter { filter.matches(Self.filterable(MatchMetadata($0))) }.map(\.id))
        return Array(all.filter { passing.contains($0.movieID) }.prefix(k))
    }

    /// The matches with the movies' metadata and, when asked, their vectors.
    func scored(_ matches: [SearchMatch], model: ModelName, query: RecordQuery) async throws -> [PineconeWire.ScoredVector] {
        let ids = matches.map(\.movieID)
        let movies = query.includeMetadata ? try await store.fetchMovies(ids: ids) : []
        let byID = Dictionary(movies.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let vectors = query.includeValues ? try await store.fetchVectors(ids: ids, space: model.rawValue) : [:]
        return try matches.map { m in
            PineconeWire.ScoredVector(
                id: String(m.movieID), score: m.score, values: vectors[m.movieID] ?? [],
                metadata: try byID[m.movieID].map { try Self.metadataJSON(MatchMetadata($0)) })
        }
    }

    func modelFetch(_ model: ModelName, namespace: String, ids: [String]) async throws -> [PineconeWire.VectorOut] {
        guard namespace.isEmpty else { return [] }
        let movieIDs = ids.compactMap { MovieID($0) }.filter { $0 >= 0 }
        let vectors: [MovieID: [Float]]
        do {
            vectors = try await store.fetchVectors(ids: movieIDs, space: model.rawValue)
        } catch StoreError.unknownSpace {
            return []
        }
        let movies = try await store.fetchMovies(ids: movieIDs.filter { vectors[$0] != nil })
        return try movies.map { movie in
            PineconeWire.VectorOut(
                id: String(movie.id), values: vectors[movie.id] ?? [], metadata: try Self.metadataJSON(MatchMetadata(movie)))
        }
    }

    /// The ids with a current vector in the space, as strings in byte order.
    func modelList(_ model: ModelName, namespace: String, prefix: String, after: String?, limit: Int) async throws
        -> RecordIDPage
    {
        guard namespace.isEmpty else { return RecordIDPage(ids: [], continueAfter: nil) }
        let movies = try await store.searchTitles("", limit: Self.maxListedMovies)
        let done = try await store.completedPairs(movieIDs: movies.map(\.id), spaces: [model.rawValue])
        let ids = done.map { String($0.movieID) }
            .filter { id in id.utf8.starts(with: prefix.utf8) && (after.map { a in recordIDPrecedes(a, id) } ?? true) }
            .sorted(by: recordIDPrecedes)
        let page = Array(ids.prefix(limit))
        return RecordIDPage(ids: page, continueAfter: ids.count > limit ? page.last : nil)
    }

    /// The metadata `/api/get-similar-movies` returns, as JSON.
    static func metadataJSON(_ metadata: MatchMetadata) throws -> JSONValue {
        try JSONValue.parse(JSONEncoder().encode(metadata))
    }

    /// The fields of a movie's metadata a filter can test: those Pinecone metadata can hold (strings, numbers,
    /// booleans; absent when null). `genre_ids`, a list of numbers, is not filterable.
    static func filterable(_ metadata: MatchMetadata) -> RecordMetadata {
        guard case .object(let fields) = (try? metadataJSON(metadata)) ?? .null else { return [:] }
        var out: RecordMetadata = [:]
        for (key, value) in fields {
            if let v = try? MetadataValue(json: value, field: key) { out[key] = v }
        }
        return out
    }
}
