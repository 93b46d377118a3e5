// A local stand-in for the Hugging Face Hub: serves repositories over HTTP on 127.0.0.1 with the headers
// the real Hub sends (X-Repo-Commit, ETag, X-Linked-Etag, X-Linked-Size, X-Error-Code), redirects LFS
// files to a "CDN" on another host name (localhost), supports Range, and can misbehave on demand.
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ModelHub
import NIOCore

/// One file of a fake repository. `lfs` files are announced by sha256 and served from the CDN path.
struct FakeFile: Sendable {
    let bytes: [UInt8]
    let lfs: Bool
}

/// Random bytes, so no test depends on a real model.
func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

func randomCommit() -> String {
    (0..<40).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
}

/// Hashes through a temporary file with ModelHub's FileDigest (checked against git and sha256sum
/// vectors in DigestTests).
func digests(of bytes: [UInt8]) throws -> (sha256: String, gitSHA1: String) {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("digest-\(UUID().uuidString)")
    try Data(bytes).write(to: url)
    defer { try? FileManager.default.removeItem(at: url) }
    return (try FileDigest.sha256(of: url), try FileDigest.gitBlobSHA1(of: url))
}

struct LoggedRequest: Sendable {
    let method: String
    let host: String
    let path: String
    let range: String?
    let authorization: String?
}

struct CutConnection: Error {}

final class FakeHub: @unchecked Sendable {
    struct Repo {
        let commit: String
        var files: [String: FakeFile]
    }

    private let lock = NSLock()
    // All guarded by `lock`.
    private var repos: [String: Repo] = [:]
    private var renamed: [String: String] = [:]
    private var log: [LoggedRequest] = []
    /// Statuses to answer the next requests to a path with, consumed front to back.
    private var injectedStatuses: [String: [Int]] = [:]
    /// The Retry-After value sent with injected statuses.
    private var injectedRetryAfter = "0"
    /// For a file name: close the connection after this many body bytes, for the next `times` GETs.
    private var cuts: [String: (bytes: Int, times: Int)] = [:]
    /// Files served with one byte changed (their announced etag stays the true one).
    private var corrupted: Set<String> = []
    /// Repositories answering 401 / 403.
    private var denied: [String: Int] = [:]
    /// Answer ranged requests with the whole file (200), as some CDNs do.
    private var ignoresRange = false
    var port = 0

    func addRepo(_ repoID: String, files: [String: FakeFile], commit: String = randomCommit()) {
        lock.withLock { repos[repoID] = Repo(commit: commit, files: files) }
    }

    func commit(of repoID: String) -> String? { lock.withLock { repos[repoID]?.commit } }

    func rename(_ oldID: String, to newID: String) { lock.withLock { renamed[oldID] = newID } }
    func inject(statuses: [Int], forPath path: String, retryAfter: String = "0") {
        lock.withLock {
            injectedStatuses[path] = statuses
            injectedRetryAfter = retryAfter
        }
    }
    func cut(file: String, afterBytes bytes: Int, times: Int = 1) { lock.withLock { cuts[file] = (bytes, times) } }
    func corrupt(file: String) { lock.withLock { _ = corrupted.insert(file) } }
    func deny(_ repoID: String, status: Int) { lock.withLock { denied[repoID] = status } }
    func ignoreRange() { lock.withLock { ignoresRange = true } }

    var requests: [LoggedRequest] { lock.withLock { log } }
    func clearLog() { lock.withLock { log.removeAll() } }

    // MARK: - Serving

    func respond(_ request: Request) async throws -> Response {
        let path = request.uri.path
        let method = request.method == .head ? "HEAD" : request.method.rawValue
        let host = request.head.authority ?? ""
        lock.withLock {
            log.append(
                LoggedRequest(
                    method: method, host: host, path: path, range: request.headers[.range],
                    authorization: request.headers[.authorization]))
        }
        if let (status, retryAfter) = lock.withLock({ () -> (Int, String)? in
            guard var queue = injectedStatuses[path], !queue.isEmpty else { return nil }
            let status = queue.removeFirst()
            injectedStatuses[path] = queue
            return (status, injectedRetryAfter)
        }) {
            return Response(
                status: .init(code: status), headers: [.retryAfter: retryAfter, .contentLength: "0"], body: .init())
        }
        if path.hasPrefix("/cdn/") {
            return try cdnResponse(request, name: String(path.dropFirst(5)), isHead: method == "HEAD")
        }
        return try resolveResponse(path: path, isHead: method == "HEAD")
    }

    private func resolveResponse(path: String, isHead: Bool) throws -> Response {
        // /{org}/{name}/resolve/{revision}/{file...}
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard parts.count >= 5, parts[2] == "resolve" else { return Self.error(404, code: nil) }
        let repoID = parts[0] + "/" + parts[1]
        let revision = parts[3].removingPercentEncoding ?? parts[3]
        let file = parts[4...].joined(separator: "/")
        let (repo, newName, deniedStatus) = lock.withLock { (repos[repoID], renamed[repoID], denied[repoID]) }
        if let newName {
            // A renamed repository answers with a relative redirect, like the Hub does.
            return Response(
                status: .temporaryRedirect,
                headers: [.location: "/\(newName)/resolve/\(parts[3])/\(file)", .contentLength: "0"], body: .init())
        }
        if let deniedStatus { return Self.error(deniedStatus, code: deniedStatus == 401 ? "RepoNotFound" : "GatedRepo") }
        guard let repo else { return Self.error(404, code: "RepoNotFound") }
        guard revision == "main" || revision == repo.commit else { return Self.error(404, code: "RevisionNotFound") }
        guard let entry = repo.files[file] else {
            var response = Self.error(404, code: "EntryNotFound")
            response.headers[Self.repoCommit] = repo.commit
            return response
        }
        let hashes = try digests(of: entry.bytes)
        var headers: HTTPFields = [Self.repoCommit: repo.commit]
        if entry.lfs {
            // The Hub answers LFS files with a redirect to the CDN carrying the file's metadata.
            headers[.location] = "http://localhost:\(port)/cdn/\(file)"
            headers[Self.linkedEtag] = "\"\(hashes.sha256)\""
            headers[Self.linkedSize] = String(entry.bytes.count)
            headers[.eTag] = "\"\(hashes.gitSHA1)\""  // the pointer file's id, which must not be used
            headers[.contentLength] = "0"
            return Response(status: .found, headers: headers, body: .init())
        }
        headers[.eTag] = "\"\(hashes.gitSHA1)\""
        headers[.contentLength] = String(entry.bytes.count)
        return Response(
            status: .ok, headers: headers, body: isHead ? .init() : .init(byteBuffer: ByteBuffer(bytes: entry.bytes)))
    }

    private func cdnResponse(_ request: Request, name: String, isHead: Bool) throws -> Response {
        let found = lock.withLock { repos.values.lazy.compactMap { $0.files[name] }.first(where: { $0.lfs }) }
        guard let entry = found else { return Self.error(404, code: nil) }
        var bytes = entry.bytes
        if lock.withLock({ corrupted.contains(name) }), !bytes.isEmpty { bytes[bytes.count / 2] ^= 0xFF }
        var start = 0
        var status = HTTPResponse.Status.ok
        var headers: HTTPFields = [.acceptRanges: "bytes"]
        if let range = request.headers[.range], !lock.withLock({ ignoresRange }) {
            guard range.hasPrefix("bytes="), range.hasSuffix("-"), let from = Int(range.dropFirst(6).dropLast()) else {
                return Self.error(400, code: nil)
            }
            guard from < bytes.count else {
                headers[.contentRange] = "bytes */\(bytes.count)"
                headers[.contentLength] = "0"
                return Response(status: .rangeNotSatisfiable, headers: headers, body: .init())
            }
            start = from
            status = .partialContent
            headers[.contentRange] = "bytes \(from)-\(bytes.count - 1)/\(bytes.count)"
        }
        let body = Array(bytes[start...])
        headers[.contentLength] = String(body.count)
        if isHead { return Response(status: status, headers: headers, body: .init()) }
        let cutAfter = lock.withLock { () -> Int? in
            guard let cut = cuts[name], cut.times > 0 else { return nil }
            cuts[name] = (cut.bytes, cut.times - 1)
            return cut.bytes
        }
        if let cutAfter, cutAfter < body.count {
            // Announce the full length, send part of it, then drop the connection.
            let part = ByteBuffer(bytes: body[0..<cutAfter])
            return Response(
                status: status, headers: headers,
                body: ResponseBody(contentLength: body.count) { writer in
                    try await writer.write(part)
                    // Give the bytes time to leave before the connection drops.
                    try await Task.sleep(nanoseconds: 200_000_000)
                    throw CutConnection()
                })
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static let repoCommit = HTTPField.Name("X-Repo-Commit")!
    static let linkedEtag = HTTPField.Name("X-Linked-Etag")!
    static let linkedSize = HTTPField.Name("X-Linked-Size")!
    static let errorCode = HTTPField.Name("X-Error-Code")!

    static func error(_ status: Int, code: String?) -> Response {
        var headers: HTTPFields = [.contentLength: "0"]
        if let code { headers[errorCode] = code }
        return Response(status: .init(code: status), headers: headers, body: .init())
    }
}

/// Runs a FakeHub on 127.0.0.1 with an ephemeral port for the duration of `body`, which gets the endpoint URL.
func withFakeHub<T: Sendable>(_ hub: FakeHub, _ body: (String) async throws -> T) async throws -> T {
    let router = Router()
    router.on("**", method: .get) { request, _ in try await hub.respond(request) }
    router.on("**", method: .head) { request, _ in try await hub.respond(request) }
    let (ports, portContinuation) = AsyncStream<Int>.makeStream()
    var logger = Logger(label: "fake-hub")
    logger.logLevel = .critical
    let app = Application(
        router: router,
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        },
        logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            group.cancelAll()
            throw CutConnection()
        }
        hub.port = port
        do {
            let result = try await body("http://127.0.0.1:\(port)")
            group.cancelAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

/// Settings for tests: a private cache, the fake endpoint, fast retries.
func testSettings(
    cache: URL, endpoint: String, offline: Bool = false, token: String? = nil, maxRetries: Int = 3,
    metadataTimeout: Double = 5
) -> HubSettings {
    HubSettings(
        cacheDirectory: cache, endpoint: endpoint, offline: offline, token: token, metadataTimeout: metadataTimeout,
        downloadTimeout: 5, maxRetries: maxRetries, retryBaseDelay: 0.01, maxRetryDelay: 0.05)
}
