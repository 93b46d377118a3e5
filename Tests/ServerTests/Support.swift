// The server under test: a real `buildApplication` on 127.0.0.1, port 0, driven over real sockets by AsyncHTTPClient;
// a store filled with the fixture images embedded by the tiny fixture checkpoints of the three models.
import Embedding
import PosterSimCore
import AsyncHTTPClient
import Dispatch
import Foundation
import PostgresStore
import TestSupport
import Imaging
import Ingest
import Logging
import ModelHub
import Models
import NIOCore
import NIOHTTP1
import Server
import ServiceLifecycle
import Store
import Testing

/// Every server test, one at a time: they start servers and run models, and the other targets' suites that run in
/// parallel include timing-sensitive ones (the TMDB client's timeouts and rate limit).
@Suite(.serialized) struct AllServerTests {}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum Fixtures {
    /// Tests/Fixtures, found from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// The three fixture models, loaded once per test process.
    static let models: [any EmbeddingModel] = {
        ModelName.allCases.map { name in
            let directory = root.appendingPathComponent("checkpoints/\(name.rawValue)")
            return try! PosterEmbeddingModel(
                name, directory: directory,
                identity: ModelIdentity(repo: name.repoID, weightsSHA256: String(repeating: "f", count: 64)))
        }
    }()

    /// Decodable fixture images (the manifest's `ok` entries), by file name.
    static let imageFiles: [String] = {
        struct Entry: Decodable {
            let file: String
            let expect: String
        }
        let data = try! Data(contentsOf: root.appendingPathComponent("images/manifest.json"))
        return try! JSONDecoder().decode([Entry].self, from: data).filter { $0.expect == "ok" }.map(\.file).sorted()
    }()

    static func image(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: root.appendingPathComponent("images/\(file)")))
    }

    static let titles = [
        "Amélie", "Alien", "Aliens", "Heat", "Ran", "Léon", "Up", "Her", "Jaws", "Rocky", "Seven", "Fargo", "Brazil",
        "Psycho", "Vertigo", "Metropolis", "Nosferatu", "Tampopo", "Ikiru", "Stalker",
    ]

    /// Movie `i` (1-based) of the fixture catalogue.
    static func movie(_ i: Int) -> Movie {
        let file = imageFiles[(i - 1) % imageFiles.count]
        return Movie(
            id: i, title: titles[(i - 1) % titles.count], originalTitle: "Original \(i)", overview: "Overview of movie \(i).",
            releaseDate: String(format: "%04d-%02d-15", 1960 + 3 * i, 1 + i % 12), posterPath: "/\(file)",
            backdropPath: "/backdrop\(i).jpg", genreIDs: i % 2 == 0 ? [18, 35] : [27], originalLanguage: i % 3 == 0 ? "fr" : "en",
            popularity: Double(100 - i), voteAverage: 5 + Double(i % 5), voteCount: 50 * i, adult: false, video: false,
            popularityRank: i)
    }

    static func temporaryFolder() throws -> URL { try TestSupport.temporaryFolder("server") }

    /// The posters of the first `storedImages` movies embedded by each fixture model, computed once per test process.
    static let storedImages = 12
    private static let imageVectors: [ModelName: [[Float]]] = {
        let images = imageFiles.prefix(storedImages).map { try! Imaging.PosterDecoder().decode(try! image($0)) }
        return Dictionary(uniqueKeysWithValues: models.map { ($0.name, try! $0.embed(images: images)) })
    }()

    /// Runs `body` on a Dispatch thread: model loading and forward passes must not block Swift's cooperative pool,
    /// which the other tests running in parallel need (some of them measure timeouts).
    static func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// The fixture models, loaded (once) off the cooperative pool.
    static func loadedModels() async throws -> [any EmbeddingModel] { try await offThePool { models } }

    /// The vector of fixture image `file` under `model` (computed once, off the cooperative pool).
    static func vector(of file: String, model: ModelName) async throws -> [Float] {
        let all = try await offThePool { imageVectors }
        return all[model]![imageFiles.firstIndex(of: file)!]
    }

    /// A new store with `count` movies, each embedded (its fixture image) by the three fixture models.
    static func populatedStore(count: Int = 12) async throws -> SQLiteVectorStore {
        let store = try SQLiteVectorStore(path: try temporaryFolder().appendingPathComponent("store.sqlite").path)
        try await populate(store, count: count)
        return store
    }

    /// The same on `backend`: the API tests that take a backend run once per store (PostgreSQL in its own schema of
    /// the server `scripts/pgserver` started; see `TestPostgres`).
    static func populatedStore(count: Int = 12, on backend: StoreBackend) async throws -> any VectorStore {
        switch backend {
        case .sqlite:
            return try await populatedStore(count: count)
        case .postgres:
            var configuration = try PostgresStoreConfiguration(url: try TestPostgres.requireURL())
            configuration.schema = TestPostgres.freshSchema("api")
            let store = try await PostgresVectorStore.open(configuration: configuration)
            try await populate(store, count: count)
            return store
        }
    }

    private static func populate(_ store: any VectorStore, count: Int) async throws {
        precondition(count <= storedImages, "populatedStore embeds at most \(storedImages) movies")
        let movies = (1...count).map(movie)
        try await store.upsertMovies(movies)
        for served in try await loadedModels() {
            try await store.registerSpace(served.space, identity: served.identity)
            var inputs: [EmbeddingInput] = []
            for movie in movies {
                inputs.append(
                    EmbeddingInput(
                        movieID: movie.id,
                        vector: try await vector(of: String(movie.posterPath!.dropFirst()), model: served.name)))
            }
            try await store.upsertEmbeddings(inputs, space: served.space.name, identity: served.identity)
        }
    }

    static var testConfiguration: ServerConfiguration {
        var c = ServerConfiguration()
        c.port = 0
        c.posterCacheDirectory = nil
        c.imageBaseURL = "https://images.example.test/t/p"
        return c
    }
}



/// One HTTP answer.
struct Reply: Sendable {
    let status: Int
    let headers: HTTPHeaders
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    func json() throws -> Any { try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) }

    func object() throws -> [String: Any] {
        guard let object = try json() as? [String: Any] else { throw TestFailure("not a JSON object: \(text.prefix(200))") }
        return object
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONDecoder().decode(type, from: Data(body)) }

    /// The `error` of a JSON error body.
    var errorMessage: String? { (try? object())?["error"] as? String }
}

/// A running server and a client for it.
struct TestServer: Sendable {
    let port: Int
    let client: HTTPClient

    func request(
        _ path: String, method: HTTPMethod = .GET, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(request, timeout: .seconds(60))
        let collected = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return Reply(
            status: Int(response.status.code), headers: response.headers,
            body: collected.getBytes(at: collected.readerIndex, length: collected.readableBytes) ?? [])
    }

    func get(_ path: String, headers: [(String, String)] = []) async throws -> Reply {
        try await request(path, headers: headers)
    }
}

/// Runs the server for `body`, then shuts it down gracefully.
func withServer<T: Sendable>(
    _ configuration: ServerConfiguration = Fixtures.testConfiguration, store: any VectorStore,
    models: [(any EmbeddingModel)]? = nil, embeddingPool: EmbeddingPool? = nil, syncSchedule: SyncSchedule? = nil,
    _ body: @Sendable (TestServer) async throws -> T
) async throws -> T {
    // Tests that bring their own (fake) models never load the fixture checkpoints.
    let served: [any EmbeddingModel]
    if let models { served = models } else { served = try await Fixtures.loadedModels() }
    var logger = Logger(label: "server-test")
    logger.logLevel = .warning
    var configuration = configuration
    configuration.port = 0
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let app = buildApplication(
        configuration: configuration, store: store, models: served, logger: logger, embeddingPool: embeddingPool,
        syncSchedule: syncSchedule, onServerRunning: { continuation.yield($0) })
    let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
    var clientConfiguration = HTTPClient.Configuration()
    clientConfiguration.redirectConfiguration = .disallow
    clientConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestFailure("the server did not start") }
        let result: Result<T, any Error>
        do {
            result = .success(try await body(TestServer(port: port, client: client)))
        } catch {
            result = .failure(error)
        }
        try await client.shutdown()
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return try result.get()
    }
}

/// Percent-encodes a query value.
func q(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}

/// The stores the API tests run on: the embedded one always, PostgreSQL when a test server is given (and under CI,
/// where its absence fails the test).
enum StoreBackend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres

    static let available: [StoreBackend] = TestPostgres.shouldRun ? [.sqlite, .postgres] : [.sqlite]

    var testDescription: String { rawValue }
}
