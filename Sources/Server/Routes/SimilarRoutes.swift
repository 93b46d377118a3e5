// `GET /api/get-similar-movies`: the original front end's one question, answered as Pinecone did.
import Foundation
import HTTPTypes
import Hummingbird
import Imaging
import Logging
import Embedding
import PosterSimCore
import NIOCore
import Store

extension API {
    func similarMovies(_ request: Request) async throws -> Response {
        // Fast path: the same query string as a cached answer needs no parsing (the canonical key below also catches
        // equivalent spellings).
        let rawKey = "similar-raw|" + (request.uri.query ?? "")
        let revision = try await store.revision()
        if let hit = cache.lookup(rawKey, revision: revision) {
            return JSONBody.response(hit)
        }
        let q = QueryParameters(request.uri.query)
        guard let idText = q.text("movieId"), let id = MovieID(idText), id >= 0, let modelText = q.text("model"),
            let model = ModelName(apiName: modelText)
        else { throw APIError(.badRequest, Self.movieAndModelRequired) }
        let k = try q.int("topK", default: 10, range: 1...configuration.maxTopK)!
        let includeValues = try q.bool("includeValues", default: false)
        let filter = try q.filter()
        let key = "similar|\(id)|\(model.rawValue)|\(k)|\(includeValues)|\(filter.cacheKey)"
        return try await cached(key, alias: rawKey) {
            let matches: [SearchMatch]
            do {
                // Only a miss scans (and may block its thread), so only a miss moves to the blocking executor: a
                // cached answer stays on the cooperative pool, where it costs no thread hop.
                matches = try await withTaskExecutorPreference(blockingExecutor) {
                    try await store.query(space: model.rawValue, movieID: id, k: k, filter: filter, excludeSelf: false)
                }
            } catch StoreError.unknownMovie {
                throw APIError(.notFound, "Movie \(id) not found")
            } catch StoreError.noEmbedding {
                throw APIError(.notFound, "Movie \(id) has no \(model.apiName) embedding yet")
            } catch StoreError.unknownSpace {
                throw APIError(.notFound, "The store has no \(model.apiName) vectors yet")
            }
            return try await matchesBody(matches, space: model.rawValue, includeValues: includeValues)
        }
    }
}
