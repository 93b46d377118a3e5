// A local stand-in for TMDB: the v3 `/movie/popular` endpoint under /3 and an image host under /t/p, on 127.0.0.1
// with an ephemeral port, able to misbehave on demand (statuses with Retry-After, slow answers, bad JSON, dropped
// connections).
import Foundation
import HTTPSupport
import HTTPTypes
import Hummingbird
import Ingest
import Logging
import NIOCore
import Synchronization

/// What to do with the next request to a path, instead of (or before) answering normally.
enum Fault: Sendable {
    /// Answer with this status (and a Retry-After header if given).
    case status(Int, retryAfter: String?)
    /// Wait, then answer normally.
    case delay(Double)
    /// Answer 200 with this body.
    case body(String)
    /// Announce the full length, send half, drop the connection.
    case cut
}

struct LoggedRequest: Sendable {
    let path: String
    let query: String
    let authorization: String?
    /// When it arrived, on the fake's clock (the client's `VirtualClock` in timing tests).
    let time: Duration
}

struct CutConnection: Error {}

final class FakeTMDB: Sendable {
    struct State {
        /// Page number → JSON result objects, as serialized JSON.
        var pages: [Int: [String]] = [:]
        var totalPages = 1
        /// Poster file name → bytes.
        var posters: [String: [UInt8]] = [:]
        /// Request key (`page:N` or `poster:NAME`) → faults consumed front to back.
        var faults: [String: [Fault]] = [:]
        var log: [LoggedRequest] = []
        var inFlight = 0
        var maxInFlight = 0
        var bearerToken: String? = "test-token"
        var apiKey: String? = "test-key"
        /// The movie database behind the other endpoints (lists, trending, discover, details, changes).
        var catalogue = FakeCatalogue()
    }

    let state = Mutex(State())
    let port = Mutex(0)
    let clock: any HTTPClock

    init(clock: any HTTPClock = SystemHTTPClock()) { self.clock = clock }

    var baseURL: String { "http://127.0.0.1:\(port.withLock { $0 })/3" }
    var imageBaseURL: String { "http://127.0.0.1:\(port.withLock { $0 })/t/p" }

    func setPage(_ page: Int, movies: [[String: Any]]) throws {
        let serialized = try movies.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        state.withLock { $0.pages[page] = serialized }
    }
    func setTotalPages(_ n: Int) { state.withLock { $0.totalPages = n } }
    func setPoster(_ name: String, _ bytes: [UInt8]) { state.withLock { $0.posters[name] = bytes } }
    func inject(_ faults: [Fault], for key: String) { state.withLock { $0.faults[key, default: []] += faults } }
    var requests: [LoggedRequest] { state.withLock { $0.log } }
    func requests(prefix: String) -> [LoggedRequest] { requests.filter { $0.path.hasPrefix(prefix) } }

    /// Most requests being answered at the same time so far.
    var maxConcurrentRequests: Int { state.withLock { $0.maxInFlight } }

    func respond(_ request: Request) async throws -> Response {
        state.withLock {
            $0.inFlight += 1
            $0.maxInFlight = max($0.maxInFlight, $0.inFlight)
        }
        defer { state.withLock { $0.inFlight -= 1 } }
        return try await answer(request)
    }

    private func answer(_ request: Request) async throws -> Response {
        let path = request.uri.path
        let query = request.uri.query ?? ""
        state.withLock {
            $0.log.append(
                LoggedRequest(
                    path: path, query: query, authorization: request.headers[.authorization], time: clock.now))
        }
        if path.hasPrefix("/3/"), path != "/3/movie/popular" || state.withLock({ $0.catalogue.lists["popular"] != nil }) {
            return try await catalogueAnswer(path: path, request: request)
        }
        if path == "/3/movie/popular" {
            let params = request.uri.queryParameters
            let page = params["page"].flatMap { Int($0) } ?? 1
            return try await answer(key: "page:\(page)") { try self.popular(page: page, request: request) }
        }
        let prefix = "/t/p/"
        if path.hasPrefix(prefix) {
            let rest = path.dropFirst(prefix.count).split(separator: "/")
            guard rest.count == 2 else { return Self.plain(404) }
            let name = String(rest[1])
            return try await answer(key: "poster:\(name)") {
                guard let bytes = self.state.withLock({ $0.posters[name] }) else { return Self.plain(404) }
                return Response(
                    status: .ok, headers: [.contentType: "image/png", .contentLength: String(bytes.count)],
                    body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            }
        }
        return Self.plain(404)
    }

    func answer(key: String, _ normal: @Sendable () throws -> Response) async throws -> Response {
        let fault: Fault? = state.withLock { s in
            guard var queue = s.faults[key], !queue.isEmpty else { return nil }
            let f = queue.removeFirst()
            s.faults[key] = queue
            return f
        }
        switch fault {
        case nil:
            return try normal()
        case .status(let code, let retryAfter)?:
            var headers: HTTPFields = [.contentType: "application/json"]
            if let retryAfter { headers[.retryAfter] = retryAfter }
            let body = #"{"status_code":25,"status_message":"injected","success":false}"#
            headers[.contentLength] = String(body.utf8.count)
            return Response(status: .init(code: code), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
        case .delay(let seconds)?:
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return try normal()
        case .body(let text)?:
            return Response(
                status: .ok, headers: [.contentType: "application/json", .contentLength: String(text.utf8.count)],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        case .cut?:
            // Posters only: announce the whole length, send half, then drop the connection.
            let name = key.hasPrefix("poster:") ? String(key.dropFirst("poster:".count)) : ""
            guard let bytes = state.withLock({ $0.posters[name] }), bytes.count > 1 else { return try normal() }
            let part = ByteBuffer(bytes: bytes[0..<(bytes.count / 2)])
            return Response(
                status: .ok, headers: [.contentType: "image/png", .contentLength: String(bytes.count)],
                body: ResponseBody(contentLength: bytes.count) { writer in
                    try await writer.write(part)
                    try await Task.sleep(for: .milliseconds(50))
                    throw CutConnection()
                })
        }
    }

    private func popular(page: Int, request: Request) throws -> Response {
        let (token, key, results, total) = state.withLock { s in
            (s.bearerToken, s.apiKey, s.pages[page] ?? [], s.totalPages)
        }
        guard Self.authorized(request, token: token, key: key) else {
            let body = #"{"status_code":7,"status_message":"Invalid API key: You must be granted a valid key.","success":false}"#
            return Response(
                status: .unauthorized, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        let body = #"{"page":\#(page),"results":[\#(results.joined(separator: ","))],"total_pages":\#(total),"total_results":\#(total * 20)}"#
        return Response(
            status: .ok, headers: [.contentType: "application/json", .contentLength: String(body.utf8.count)],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func authorized(_ request: Request, token: String?, key: String?) -> Bool {
        let auth = request.headers[.authorization]
        let givenKey = request.uri.queryParameters["api_key"].map(String.init)
        return (token != nil && auth == "Bearer \(token!)") || (key != nil && givenKey == key)
    }

    static func json(_ status: Int, _ body: String) -> Response {
        Response(
            status: .init(code: status), headers: [.contentType: "application/json", .contentLength: String(body.utf8.count)],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func plain(_ code: Int) -> Response {
        Response(status: .init(code: code), headers: [.contentLength: "0"], body: .init())
    }
}

/// Runs `fake` on 127.0.0.1 with an ephemeral port for the duration of `body`.
func withFakeTMDB<T: Sendable>(_ fake: FakeTMDB, _ body: () async throws -> T) async throws -> T {
    let router = Router()
    router.on("**", method: .get) { request, _ in try await fake.respond(request) }
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    var logger = Logger(label: "fake-tmdb")
    logger.logLevel = .critical
    let app = Application(
        router: router,
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        },
        logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            group.cancelAll()
            throw TestFailure("fake TMDB did not start")
        }
        fake.port.withLock { $0 = port }
        do {
            let result = try await body()
            group.cancelAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

/// Client settings for tests: the fake's endpoints, fast retries, short timeouts, a high rate limit.
func testSettings(_ fake: FakeTMDB, credentials: TMDBCredentials? = .bearerToken("test-token")) -> TMDBSettings {
    var s = TMDBSettings(baseURL: fake.baseURL, imageBaseURL: fake.imageBaseURL, credentials: credentials)
    s.requestsPerSecond = 2000
    s.burst = 50
    // Generous: the suites run in parallel on two cores, and a fake answer that misses a tight timeout turns into a
    // retry the test did not ask for. Tests of timeouts set their own.
    s.connectTimeout = 10
    s.readTimeout = 10
    s.requestTimeout = 20
    s.maxAttempts = 4
    s.retryBaseDelay = 0.01
    s.maxRetryDelay = 0.05
    s.maxRetryAfter = 2
    return s
}
