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
    let cache: ResponseCache
    let metrics: ServerMetrics
    let decoder: PosterDecoder
    let posterCache: PosterCache?

    static let movieAndModelRequired = "Movie ID and valid model type are required"

    init(configuration: ServerConfiguration, store: any VectorStore, models: [any EmbeddingModel], metrics: ServerMetrics) {
        self.configuration = configuration
        self.store = store
        self.models = Dictionary(models.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        pool = EmbeddingPool(maxConcurrent: configuration.embedConcurrency, maxQueued: configuration.embedQueueLimit)
        cache = ResponseCache(
            ttl: configuration.cacheTTL, maxEntries: configuration.cacheMaxEntries, maxBytes: configuration.cacheMaxBytes)
        self.metrics = metrics
        decoder = PosterDecoder(maxPixels: configuration.maxImagePixels)
        posterCache = configuration.posterCacheDirectory.map { PosterCache(directory: URL(fileURLWithPath: $0)) }
    }

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

    // MARK: Similar movies

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
                matches = try await store.query(space: model.rawValue, movieID: id, k: k, filter: filter, excludeSelf: false)
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
            if let alias { cache.insert(alias, body: hit, revision: revision) }
            return JSONBody.response(hit)
        }
        let body = try await compute()
        cache.insert(key, body: body, revision: revision)
        if let alias { cache.insert(alias, body: body, revision: revision) }
        return JSONBody.response(body)
    }

    // MARK: Titles

    struct TitleEntry: Encodable {
        let id: String
        let label: String
        let title: String
        let release_date: String?
        let poster_path: String?
        let vote_average: Double?
        let popularity: Double?
    }

    func movies(_ request: Request) async throws -> Response {
        let q = QueryParameters(request.uri.query)
        let text = q["q"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard text.count <= 200 else { throw APIError(.badRequest, "q must be at most 200 characters") }
        let limit = try q.int("limit", default: 20, range: 1...configuration.maxTitleLimit)!
        return try await cached("titles|\(limit)|\(text)") {
            let found = try await store.searchTitles(text, limit: limit)
            return try JSONBody.encode(
                found.map {
                    TitleEntry(
                        id: String($0.id), label: $0.label, title: $0.title, release_date: $0.releaseDate,
                        poster_path: $0.posterPath, vote_average: $0.voteAverage, popularity: $0.popularity)
                })
        }
    }

    // MARK: Search by image and by text

    func servedModel(_ q: QueryParameters, default fallback: ModelName) throws -> any EmbeddingModel {
        var name = fallback
        if let text = q.text("model") {
            guard let parsed = ModelName(apiName: text) else {
                throw APIError(.badRequest, "unknown model '\(text.prefix(40))': use CLIP, ResNet-50 or VGG16")
            }
            name = parsed
        }
        guard let served = models[name] else {
            throw APIError(.serviceUnavailable, "\(name.apiName) is not loaded on this server")
        }
        return served
    }

    func searchImage(_ request: Request) async throws -> Response {
        let q = QueryParameters(request.uri.query)
        let served = try servedModel(q, default: .clip)
        let k = try q.int("topK", default: 10, range: 1...configuration.maxTopK)!
        let filter = try q.filter()
        let limit = configuration.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw APIError(.contentTooLarge, "request body is larger than \(limit) bytes")
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "request body is larger than \(limit) bytes")
        }
        let bytes: [UInt8]
        switch MultipartImage.boundary(contentType: request.headers[.contentType]) {
        case .some(.some(let boundary)):
            do {
                guard let part = try MultipartImage.field("image", in: body, boundary: boundary) else {
                    throw APIError(.badRequest, "the multipart body has no 'image' field")
                }
                bytes = part
            } catch let error as APIError {
                throw error
            } catch {
                throw APIError(.badRequest, "malformed multipart body")
            }
        case .some(.none):
            throw APIError(.badRequest, "multipart/form-data without a boundary")
        case .none:
            bytes = body.getBytes(at: body.readerIndex, length: body.readableBytes) ?? []
        }
        guard !bytes.isEmpty else {
            throw APIError(.badRequest, "empty body: send the image bytes, or a multipart form with a field 'image'")
        }
        guard PosterDecoder.sniff(bytes) != nil else {
            throw APIError(.unsupportedMediaType, ImageDecodingError.unknownFormat.description)
        }
        let decoder = self.decoder
        let model = served
        let start = ContinuousClock.now
        let vector: [Float]
        do {
            vector = try await pool.run {
                let image = try decoder.decode(bytes)
                return try model.embed(images: [image])[0]
            }
        } catch is EmbeddingPoolBusy {
            metrics.recordPoolRejection()
            throw APIError(.serviceUnavailable, "too many searches in progress; retry shortly", headers: [.retryAfter: "1"])
        } catch let error as ImageDecodingError {
            throw APIError(.badRequest, error.description)
        } catch PreprocessingError.emptyImage(let width, let height) {
            throw APIError(.badRequest, "the image is \(width)x\(height) pixels: too small to embed")
        } catch PreprocessingError.imageTooLarge(let width, let height) {
            throw APIError(.contentTooLarge, "the image is \(width)x\(height) pixels: too large to embed")
        }
        metrics.recordEmbedding(model: served.name.apiName, kind: "image", duration: ContinuousClock.now - start)
        return JSONBody.response(try await vectorSearch(vector, served: served, k: k, filter: filter))
    }

    func searchText(_ request: Request) async throws -> Response {
        let q = QueryParameters(request.uri.query)
        guard let text = q.text("q") else { throw APIError(.badRequest, "q (the text to search for) is required") }
        guard text.count <= 500 else { throw APIError(.badRequest, "q must be at most 500 characters") }
        let k = try q.int("topK", default: 10, range: 1...configuration.maxTopK)!
        let filter = try q.filter()
        guard let served = models[.clip], served.supportsText else {
            throw APIError(.serviceUnavailable, "text search needs CLIP with its tokenizer, which is not loaded")
        }
        return try await cached("text|\(k)|\(filter.cacheKey)|\(text)") {
            let model = served
            let start = ContinuousClock.now
            let vector: [Float]
            do {
                vector = try await pool.run { try model.embed(texts: [text])[0] }
            } catch is EmbeddingPoolBusy {
                metrics.recordPoolRejection()
                throw APIError(.serviceUnavailable, "too many searches in progress; retry shortly", headers: [.retryAfter: "1"])
            }
            metrics.recordEmbedding(model: served.name.apiName, kind: "text", duration: ContinuousClock.now - start)
            return try await vectorSearch(vector, served: served, k: k, filter: filter)
        }
    }

    func vectorSearch(_ vector: [Float], served: any EmbeddingModel, k: Int, filter: SearchFilter) async throws -> ByteBuffer {
        let space = served.space.name
        let matches: [SearchMatch]
        do {
            matches = try await store.query(space: space, vector: vector, k: k, filter: filter)
        } catch StoreError.unknownSpace {
            throw APIError(.notFound, "The store has no \(served.name.apiName) vectors yet")
        } catch StoreError.dimensionMismatch(_, let expected, let actual) {
            throw APIError(
                .conflict, "the loaded \(served.name.apiName) makes \(actual)-d vectors but the store holds \(expected)-d ones")
        } catch StoreError.invalidVector(_, let reason) {
            throw APIError(.unprocessableContent, "the image gave an unusable vector: \(reason)")
        }
        return try await matchesBody(matches, space: space, includeValues: false)
    }

    // MARK: Models, health, metrics

    struct ModelEntry: Encodable {
        let name: String
        let id: String
        let repo: String
        let dimension: Int
        let metric: String
        let vectors: Int
        let staleVectors: Int
        let loaded: Bool
        let text: Bool
        let checkpointMatchesStore: Bool?
    }

    func modelList() async throws -> Response {
        let stats = try await store.stats()
        let entries = ModelName.allCases.map { name -> ModelEntry in
            let space = stats.spaces.first { $0.space.name == name.rawValue }
            let served = models[name]
            return ModelEntry(
                name: name.apiName, id: name.rawValue, repo: served?.identity.repo ?? space?.identity.repo ?? name.repoID,
                dimension: space?.space.dimension ?? served?.space.dimension ?? name.embeddingDimension,
                metric: (space?.space.metric ?? served?.space.metric ?? name.metric).rawValue,
                vectors: space?.vectors ?? 0, staleVectors: space?.staleVectors ?? 0, loaded: served != nil,
                text: served?.supportsText ?? false,
                checkpointMatchesStore: served.flatMap { s in space.map { $0.identity == s.identity } })
        }
        return JSONBody.response(try JSONBody.encode(entries))
    }

    struct Readiness: Encodable {
        let status: String
        let movies: Int
        let models: [String]
    }

    func ready() async throws -> Response {
        do {
            let movies = try await store.movieCount()
            let names = ModelName.allCases.filter { models[$0] != nil }.map(\.apiName)
            return JSONBody.response(try JSONBody.encode(Readiness(status: "ready", movies: movies, models: names)))
        } catch {
            throw APIError(.serviceUnavailable, "the store is not available")
        }
    }

    func metricsText() async -> Response {
        let stats = try? await store.stats()
        metrics.updateGauges(stats: stats, pool: pool, cache: cache)
        var buffer: [UInt8] = []
        metrics.registry.emit(into: &buffer)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
    }

    // MARK: Posters

    /// A poster from the local cache (any size the ingest stored, the configured one first), else a redirect to the
    /// image CDN at the configured size.
    func poster(file: String) throws -> Response {
        let posterPath = "/" + file
        guard (try? PosterCache(directory: URL(fileURLWithPath: "/")).fileURL(posterPath: posterPath, size: "w500")) != nil else {
            throw APIError(.badRequest, "invalid poster path")
        }
        if let posterCache {
            var sizes = [configuration.posterSize, "original", "w780", "w500", "w342", "w185"]
            var seen = Set<String>()
            sizes = sizes.filter { seen.insert($0).inserted }
            for size in sizes {
                if let bytes = posterCache.read(posterPath: posterPath, size: size), let format = PosterDecoder.sniff(bytes) {
                    let type: String
                    switch format {
                    case .jpeg: type = "image/jpeg"
                    case .png: type = "image/png"
                    case .webp: type = "image/webp"
                    }
                    return Response(
                        status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=86400"],
                        body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
                }
            }
        }
        return Response(
            status: .found,
            headers: [.location: "\(configuration.imageBaseURL)/\(configuration.posterSize)\(posterPath)",
                      .cacheControl: "public, max-age=3600"])
    }
}
