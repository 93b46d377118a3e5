import Foundation
import HTTPTypes
import Hummingbird
import Imaging
import Logging
import Embedding
import PosterSimCore
import NIOCore
import Store

/// The HTTP API's handlers. Shared state: the store, the loaded models, the embedding pool, the response cache and
/// the metrics; all of it is `Sendable` and lock-protected where mutable.
struct API: Sendable {
    let configuration: ServerConfiguration
    let store: any VectorStore
    let models: [ModelName: any EmbeddingModel]
    let pool: EmbeddingPool
    /// Where work that may block a thread runs (exact scans, poster file reads): see `BlockingExecutor`.
    let blockingExecutor = BlockingExecutor()
    let cache: ResponseCache
    let metrics: ServerMetrics
    let decoder: PosterDecoder
    let posterCache: PosterCache?

    static let movieAndModelRequired = "Movie ID and valid model type are required"

    init(
        configuration: ServerConfiguration, store: any VectorStore, models: [any EmbeddingModel], metrics: ServerMetrics,
        pool: EmbeddingPool? = nil
    ) {
        self.configuration = configuration
        self.store = store
        self.models = Dictionary(models.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.pool = pool ?? EmbeddingPool(maxConcurrent: configuration.embedConcurrency, maxQueued: configuration.embedQueueLimit)
        cache = ResponseCache(
            ttl: configuration.cacheTTL, maxEntries: configuration.cacheMaxEntries, maxBytes: configuration.cacheMaxBytes)
        self.metrics = metrics
        decoder = PosterDecoder(maxPixels: configuration.maxImagePixels)
        posterCache = configuration.posterCacheDirectory.map { PosterCache(directory: URL(fileURLWithPath: $0)) }
    }

    /// Every route, grouped by concern: each handler lives in `Routes/` beside its siblings.
    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/api/get-similar-movies") { request, _ in try await similarMovies(request) }
        router.get("/api/movies") { request, _ in try await movies(request) }
        router.post("/api/search/image") { request, _ in try await searchImage(request) }
        router.get("/api/search/text") { request, _ in try await searchText(request) }
        router.get("/api/models") { _, _ in try await modelList() }
        router.get("/healthz") { _, _ in JSONBody.response(ByteBuffer(string: #"{"status":"ok"}"#)) }
        router.get("/readyz") { _, _ in try await ready() }
        router.get("/metrics") { _, _ in await metricsText() }
        router.get("/posters/:file") { request, context in
            try poster(file: context.parameters.get("file") ?? "")
        }
        if configuration.benchRoutes {
            let fixed = ByteBuffer(string: #"{"matches":[],"namespace":"bench"}"#)
            router.get("/bench/bare") { _, _ in JSONBody.response(fixed) }
        }
    }

    // MARK: Shared by the routes

    func matchesBody(_ matches: [SearchMatch], space: String, includeValues: Bool) async throws -> ByteBuffer {
        let movies = try await store.fetchMovies(ids: matches.map(\.movieID))
        var values: [MovieID: [Float]]?
        if includeValues {
            do {
                values = try await store.fetchVectors(ids: matches.map(\.movieID), space: space)
            } catch let error as StoreError {
                throw APIError(.notImplemented, "includeValues: \(error)")
            }
        }
        return try JSONBody.encode(MatchesOutput(matches: matches, movies: movies, namespace: space, values: values))
    }

    /// The cached body for `key` at the store's current revision, else `compute()`'s, cached.
    /// Also kept under `alias` (a second key for the same answer), when given.
    func cached(_ key: String, alias: String? = nil, _ compute: () async throws -> ByteBuffer) async throws -> Response {
        let revision = try await store.revision()
        if let hit = cache.lookup(key, revision: revision) {
            if let alias { cache.insertAlias(alias, for: key, revision: revision) }
            return JSONBody.response(hit)
        }
        let body = try await compute()
        cache.insert(key, body: body, revision: revision)
        if let alias { cache.insertAlias(alias, for: key, revision: revision) }
        return JSONBody.response(body)
    }
}
