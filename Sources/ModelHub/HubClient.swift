// Downloads model files from a Hugging Face Hub into the hub cache, reproducing huggingface_hub's
// hf_hub_download (file_download.py: get_hf_file_metadata, _hf_hub_download_to_cache_dir, http_get;
// utils/_http.py: _httpx2_follow_hub_redirects_with_backoff, _http_backoff_base):
//
// 1. HEAD {endpoint}/{repo}/resolve/{revision}/{file} with Accept-Encoding: identity, following redirects
//    only while they stay on a Hub origin (a renamed repo answers with a relative redirect). A redirect to
//    another host (the LFS CDN) is not followed: that response already carries X-Repo-Commit,
//    X-Linked-Etag and X-Linked-Size, and its Location is where the bytes are.
// 2. The etag is X-Linked-Etag or ETag without W/ and quotes; blobs/<etag> is the content address.
// 3. GET the bytes into blobs/<etag>.incomplete, resuming with Range when a partial file exists; the
//    token is only sent to Hub origins, never to the CDN.
// 4. Verify (sha256 for LFS etags, git blob sha1 for 40-hex etags), rename into blobs/<etag>, link
//    snapshots/<commit>/<file> to it, and write refs/<revision>.
//
// Unlike huggingface_hub, files after the first are requested by commit hash rather than by branch, so
// one fetch cannot mix files of two commits when the branch moves mid-fetch.
import PosterSimCore
import AsyncHTTPClient
import Crypto
import Foundation
import HTTPSupport
import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Progress of a fetch, reported through the callback given to `HubClient.fetch`.
public enum FetchEvent: Sendable {
    /// Asking the Hub about `file`.
    case checking(repoID: String, file: String)
    /// Bytes of `file` on disk so far (including a resumed prefix) and the announced total.
    case downloading(repoID: String, file: String, bytesDone: Int64, totalBytes: Int64?)
    /// A request failed transiently; it is retried after `delaySeconds`.
    case retrying(repoID: String, file: String, attempt: Int, delaySeconds: Double, reason: String)
    /// `file` is done (downloaded, already cached, or absent from the repository).
    case finished(FileFetchResult)
}

/// What happened to one file of a fetch.
public struct FileFetchResult: Sendable, Codable, Equatable {
    public enum Status: String, Sendable, Codable {
        /// Bytes were transferred and installed.
        case downloaded
        /// The snapshot already had the file (or its blob was present); nothing was transferred.
        case cached
        /// An optional file the repository does not have.
        case absent
    }

    public let repoID: String
    public let file: String
    public let status: Status
    /// The commit the file belongs to (nil for an absent file the Hub gave no commit for).
    public let commit: String?
    public let size: Int64?
    public let etag: String?
    /// sha256 of the contents (nil when absent).
    public let sha256: String?
    /// The snapshot entry (nil when absent).
    public let path: String?
    /// Bytes transferred for this file in this fetch.
    public let bytesTransferred: Int64
}

/// The result of fetching one model.
public struct FetchReport: Sendable, Codable, Equatable {
    public let model: ModelName
    public let repoID: String
    public let revision: String
    public let commit: String
    public let snapshotDirectory: String
    public let files: [FileFetchResult]
    /// sha256 of the weights file.
    public let weightsSHA256: String?

    /// Bytes transferred over the network in this fetch.
    public var bytesTransferred: Int64 { files.reduce(0) { $0 + $1.bytesTransferred } }
}

/// The metadata the Hub announces for one file (huggingface_hub `HfFileMetadata`).
struct RemoteFileMetadata: Sendable {
    let commit: String
    let etag: String
    let size: Int64?
    /// Where to GET the bytes: the resolve URL, or the CDN URL it redirects to.
    let downloadURL: String
}

/// A client for a Hugging Face Hub (or mirror) that fills the hub cache.
///
/// Guarantees: in offline mode (`settings.offline`) it never opens a connection; a file is only ever
/// visible under `blobs/` and `snapshots/` once completely downloaded and verified; an interrupted
/// download leaves `blobs/<etag>.incomplete`, which the next attempt resumes. Call `shutdown()` when done
/// (or use `withClient`).
public final class HubClient: Sendable {
    public let settings: HubSettings
    public let cache: HubCache
    private let http: HTTPClient?
    private let logger: Logger
    /// Which answers are retried and how long to wait (HTTPSupport's policy, shared with the TMDB client).
    private let retry: RetryPolicy
    private let clock: any HTTPClock

    /// Redirect hops followed at most (httpx's default, as huggingface_hub).
    static let maxRedirects = 20

    /// `clock` times the waits between retries (tests pass a `VirtualClock`).
    public init(
        settings: HubSettings, logger: Logger = Logger(label: "postersim.modelhub"),
        clock: any HTTPClock = SystemHTTPClock()
    ) {
        self.settings = settings
        self.cache = HubCache(root: settings.cacheDirectory)
        self.logger = logger
        self.clock = clock
        // huggingface_hub honours a Retry-After of up to a minute; a longer back-off setting raises that.
        self.retry = RetryPolicy(
            maxAttempts: settings.maxRetries + 1, baseDelay: settings.retryBaseDelay, maxDelay: settings.maxRetryDelay,
            maxRetryAfter: max(60, settings.maxRetryDelay))
        if settings.offline {
            self.http = nil
        } else {
            let configuration = HTTPClient.Configuration(
                redirectConfiguration: .disallow,
                timeout: .init(
                    connect: HubClient.timeAmount(settings.metadataTimeout),
                    read: HubClient.timeAmount(settings.downloadTimeout)),
                proxy: settings.proxy.map { .server(host: $0.host, port: $0.port) },
                decompression: .disabled)
            self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        }
    }

    /// Releases the connection pool. Must be called before the client is dropped.
    public func shutdown() async throws {
        try await http?.shutdown()
    }

    /// Runs `body` with a client and shuts it down afterwards, also when `body` throws.
    public static func withClient<Result: Sendable>(
        settings: HubSettings, _ body: (HubClient) async throws -> Result
    ) async throws -> Result {
        try await withShutdown(HubClient(settings: settings), shutdown: { try await $0.shutdown() }, body)
    }

    static func timeAmount(_ seconds: Double) -> TimeAmount {
        .milliseconds(Int64((seconds * 1000).rounded()))
    }

    // MARK: - Fetching a model

    /// Makes sure every file of `model` at `revision` is in the cache, downloading what is missing.
    /// Files already complete in the snapshot are not transferred again.
    public func fetch(
        _ model: ModelName, revision: String = "main",
        progress: @escaping @Sendable (FetchEvent) -> Void = { _ in }
    ) async throws -> FetchReport {
        let files = model.files
        let (commit, results) = try await fetchFiles(
            repoID: model.repoID, required: files.required, optional: files.optional, revision: revision,
            progress: progress)
        let present = Set(results.filter { $0.status != .absent }.map(\.file))
        let missing = files.missing(present: present)
        let snapshot = cache.snapshotFolder(model.repoID, commit: commit)
        guard missing.isEmpty else {
            throw ModelHubError.missingFiles(model: model, directory: snapshot.path, files: missing)
        }
        return FetchReport(
            model: model, repoID: model.repoID, revision: revision, commit: commit, snapshotDirectory: snapshot.path,
            files: results, weightsSHA256: results.first { $0.file == model.weightsFile }?.sha256)
    }

    /// Fetches `required` then `optional` files of `repoID` at `revision` and points `refs/<revision>` at
    /// the commit they came from. A missing required file throws; a missing optional one is reported absent.
    public func fetchFiles(
        repoID: String, required: [String], optional: [String], revision: String = "main",
        progress: @escaping @Sendable (FetchEvent) -> Void = { _ in }
    ) async throws -> (commit: String, files: [FileFetchResult]) {
        var pinnedCommit: String? = nil
        if settings.offline {
            guard let commit = cache.commit(repoID, revision: revision) else {
                throw ModelHubError.offlineAndNotCached(
                    repoID: repoID, file: required.first ?? optional.first ?? "", revision: revision,
                    cacheDirectory: cache.root.path)
            }
            pinnedCommit = commit
        }
        var results: [FileFetchResult] = []
        for (file, isOptional) in required.map({ ($0, false) }) + optional.map({ ($0, true) }) {
            try Task.checkCancellation()
            let result = try await fetchFile(
                repoID: repoID, file: file, revision: pinnedCommit ?? revision, optional: isOptional,
                progress: progress)
            if pinnedCommit == nil, let commit = result.commit { pinnedCommit = commit }
            results.append(result)
            progress(.finished(result))
        }
        guard let commit = pinnedCommit else {
            // Only reachable when every file was optional and absent without a commit header.
            throw ModelHubError.notAHubEndpoint(url: resolveURL(repoID: repoID, revision: revision, file: ""))
        }
        try cache.writeRef(repoID, revision: revision, commit: commit)
        return (commit, results)
    }

    /// Fetches one file into the cache. `revision` may be a branch, tag or commit hash.
    public func fetchFile(
        repoID: String, file: String, revision: String, optional: Bool = false,
        progress: @escaping @Sendable (FetchEvent) -> Void = { _ in }
    ) async throws -> FileFetchResult {
        try HubCache.validate(fileName: file)
        // A commit's files never change: with the file on disk there is nothing to ask the Hub.
        if let commit = HubCache.isCommitHash(revision) ? revision : (settings.offline ? cache.commit(repoID, revision: revision) : nil) {
            if let pointer = cache.snapshotFile(repoID, commit: commit, file: file) {
                return try cachedResult(repoID: repoID, file: file, commit: commit, pointer: pointer)
            }
            if optional, cache.isMarkedAbsent(repoID, commit: commit, file: file) {
                return absentResult(repoID: repoID, file: file, commit: commit)
            }
        }
        guard let http else {
            // Offline, an optional file that is not on disk is simply not there; required ones are an error.
            if optional { return absentResult(repoID: repoID, file: file, commit: cache.commit(repoID, revision: revision)) }
            throw ModelHubError.offlineAndNotCached(
                repoID: repoID, file: file, revision: revision, cacheDirectory: cache.root.path)
        }

        progress(.checking(repoID: repoID, file: file))
        let url = resolveURL(repoID: repoID, revision: revision, file: file)
        let metadata: RemoteFileMetadata
        switch try await headMetadata(http, url: url, repoID: repoID, file: file, progress: progress) {
        case let .found(found):
            metadata = found
        case let .entryNotFound(commit, errorCode):
            guard optional else { throw ModelHubError.notFound(url: url, errorCode: errorCode) }
            if let commit { cache.markAbsent(repoID, commit: commit, file: file) }
            return absentResult(repoID: repoID, file: file, commit: commit)
        }

        if let pointer = cache.snapshotFile(repoID, commit: metadata.commit, file: file),
            cache.linkedEtag(pointer) == metadata.etag || cache.linkedEtag(pointer) == nil
        {
            return try cachedResult(repoID: repoID, file: file, commit: metadata.commit, pointer: pointer)
        }
        guard HubClient.isSafeEtag(metadata.etag) else {
            throw ModelHubError.unusableETag(url: url, etag: metadata.etag)
        }
        let blob = cache.blobURL(repoID, etag: metadata.etag)
        var transferred: Int64 = 0
        var sha256: String? = nil
        var installedHere = false
        if !FileManager.default.fileExists(atPath: blob.path) {
            (transferred, sha256, installedHere) = try await download(
                http, repoID: repoID, file: file, metadata: metadata, progress: progress)
        }
        try cache.link(repoID, commit: metadata.commit, file: file, etag: metadata.etag)
        let pointer = cache.snapshotFolder(repoID, commit: metadata.commit).appendingPathComponent(file)
        return FileFetchResult(
            repoID: repoID, file: file, status: installedHere ? .downloaded : .cached,
            commit: metadata.commit, size: HubCache.fileSize(pointer), etag: metadata.etag,
            sha256: try sha256 ?? contentSHA256(pointer: pointer, etag: metadata.etag), path: pointer.path,
            bytesTransferred: transferred)
    }

    private func cachedResult(repoID: String, file: String, commit: String, pointer: URL) throws -> FileFetchResult {
        let etag = cache.linkedEtag(pointer)
        return FileFetchResult(
            repoID: repoID, file: file, status: .cached, commit: commit, size: HubCache.fileSize(pointer), etag: etag,
            sha256: try contentSHA256(pointer: pointer, etag: etag), path: pointer.path, bytesTransferred: 0)
    }

    private func absentResult(repoID: String, file: String, commit: String?) -> FileFetchResult {
        FileFetchResult(
            repoID: repoID, file: file, status: .absent, commit: commit, size: nil, etag: nil, sha256: nil, path: nil,
            bytesTransferred: 0)
    }

    /// An LFS blob is named by its verified sha256; other (small) files are hashed.
    private func contentSHA256(pointer: URL, etag: String?) throws -> String {
        if let etag, HubCache.isSHA256(etag) { return etag }
        return try FileDigest.sha256(of: pointer)
    }

    /// `{endpoint}/{repo}/resolve/{revision}/{file}` with the revision fully percent-encoded (so
    /// `refs/pr/1` stays one path segment) and the file name encoded except for its slashes
    /// (huggingface_hub hf_hub_url).
    public func resolveURL(repoID: String, revision: String, file: String) -> String {
        var segment = CharacterSet.urlPathAllowed
        segment.remove(charactersIn: "/;")
        var path = CharacterSet.urlPathAllowed
        path.remove(charactersIn: ";")
        let encodedRevision = revision.addingPercentEncoding(withAllowedCharacters: segment) ?? revision
        let encodedFile = file.addingPercentEncoding(withAllowedCharacters: path) ?? file
        return "\(settings.endpoint)/\(repoID)/resolve/\(encodedRevision)/\(encodedFile)"
    }

    // MARK: - Metadata

    enum MetadataResult: Sendable {
        case found(RemoteFileMetadata)
        /// 404 for the file itself (not the repository or revision); `commit` from X-Repo-Commit if sent.
        case entryNotFound(commit: String?, errorCode: String?)
    }

    private func headMetadata(
        _ http: HTTPClient, url: String, repoID: String, file: String,
        progress: @escaping @Sendable (FetchEvent) -> Void
    ) async throws -> MetadataResult {
        var current = url
        for _ in 0..<HubClient.maxRedirects {
            let response = try await send(
                http, method: .HEAD, url: current, extraHeaders: [:], repoID: repoID, file: file, progress: progress)
            // HEAD has no body, but drain it so the connection goes back to the pool.
            _ = try? await response.body.collect(upTo: 1 << 20)
            let status = response.status.code
            if (300..<400).contains(status), let location = response.headers.first(name: "Location") {
                guard let target = HubClient.resolveRedirect(location, from: current) else {
                    throw ModelHubError.badRedirect(url: current, reason: "unusable Location '\(location)'")
                }
                if isHubOrigin(target) || HubClient.origin(target) == HubClient.origin(current) {
                    current = target
                    continue
                }
                return .found(try metadata(from: response, url: current, downloadURL: target, redirected: true))
            }
            if (200..<300).contains(status) {
                return .found(try metadata(from: response, url: current, downloadURL: current, redirected: false))
            }
            if status == 404 {
                let code = response.headers.first(name: "X-Error-Code")
                if code == "RepoNotFound" || code == "RevisionNotFound" {
                    throw ModelHubError.notFound(url: current, errorCode: code)
                }
                return .entryNotFound(
                    commit: response.headers.first(name: "X-Repo-Commit").flatMap {
                        HubCache.isCommitHash($0) ? $0 : nil
                    }, errorCode: code)
            }
            throw HubClient.statusError(status: status, url: current, attempts: 1)
        }
        throw ModelHubError.badRedirect(url: url, reason: "more than \(HubClient.maxRedirects) redirects")
    }

    private func metadata(
        from response: HTTPClientResponse, url: String, downloadURL: String, redirected: Bool
    ) throws -> RemoteFileMetadata {
        guard let commit = response.headers.first(name: "X-Repo-Commit"), HubCache.isCommitHash(commit) else {
            throw ModelHubError.notAHubEndpoint(url: url)
        }
        let rawEtag = response.headers.first(name: "X-Linked-Etag") ?? response.headers.first(name: "ETag")
        guard let etag = rawEtag.map(HubClient.normalizeEtag), !etag.isEmpty else {
            throw ModelHubError.missingETag(url: url)
        }
        let sizeText =
            response.headers.first(name: "X-Linked-Size")
            ?? (redirected ? nil : response.headers.first(name: "Content-Length"))
        let size = sizeText.flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }.flatMap { $0 >= 0 ? $0 : nil }
        return RemoteFileMetadata(commit: commit, etag: etag, size: size, downloadURL: downloadURL)
    }

    /// Etags name blob files: only letters, digits, '-', '_' and '.' (not leading) are accepted.
    static func isSafeEtag(_ etag: String) -> Bool {
        !etag.isEmpty && etag.count <= 200 && !etag.hasPrefix(".")
            && etag.unicodeScalars.allSatisfy { ($0.isASCII && CharacterSet.alphanumerics.contains($0)) || "-_.".unicodeScalars.contains($0) }
    }

    /// `W/"abc"` and `"abc"` become `abc` (huggingface_hub _normalize_etag).
    static func normalizeEtag(_ etag: String) -> String {
        var text = Substring(etag.trimmingCharacters(in: .whitespaces))
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        return String(text).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }

    // MARK: - Download

    /// Downloads the bytes of `metadata` into `blobs/<etag>`; returns bytes transferred, the sha256, and
    /// whether this call installed the blob (false when another process finished it while we waited).
    private func download(
        _ http: HTTPClient, repoID: String, file: String, metadata: RemoteFileMetadata,
        progress: @escaping @Sendable (FetchEvent) -> Void
    ) async throws -> (Int64, String, Bool) {
        let blob = cache.blobURL(repoID, etag: metadata.etag)
        let incomplete = cache.incompleteURL(repoID, etag: metadata.etag)
        try HubCache.createDirectory(blob.deletingLastPathComponent())
        let lock = try await FileLock.acquire(cache.lockURL(repoID, etag: metadata.etag))
        defer { lock.release() }
        // Another process may have finished it while we waited for the lock.
        if FileManager.default.fileExists(atPath: blob.path) {
            return (0, try contentSHA256(pointer: blob, etag: metadata.etag), false)
        }

        var transferred: Int64 = 0
        var failures = 0
        var lastFailure = ""
        while true {
            try Task.checkCancellation()
            var resumeFrom = HubClient.fileSizeOrZero(incomplete)
            if let expected = metadata.size, resumeFrom > expected {
                try HubClient.truncate(incomplete)
                resumeFrom = 0
            }
            if let expected = metadata.size, resumeFrom == expected, expected > 0 {
                break  // a previous run got every byte but stopped before installing
            }
            do {
                let outcome = try await transfer(
                    http, url: metadata.downloadURL, into: incomplete, resumeFrom: resumeFrom,
                    expectedSize: metadata.size, repoID: repoID, file: file, progress: progress)
                transferred += outcome.bytes
                if outcome.complete { break }
                lastFailure = "the server sent \(outcome.bytes) bytes and closed the connection early"
            } catch let error as TransferInterrupted {
                transferred += error.bytes
                lastFailure = error.reason
                if error.bytes > 0 { failures = 0 }  // progress was made: huggingface_hub resets its retries too
            }
            failures += 1
            if failures > settings.maxRetries {
                throw ModelHubError.downloadFailed(url: metadata.downloadURL, attempts: failures, reason: lastFailure)
            }
            let delay = retry.backoff(beforeRetry: failures)
            progress(.retrying(repoID: repoID, file: file, attempt: failures, delaySeconds: delay, reason: lastFailure))
            logger.debug("download of \(file) interrupted (\(lastFailure)); resuming in \(delay)s")
            try await clock.sleep(for: .nanoseconds(Int64(delay * 1e9)))
        }

        let actualSize = HubClient.fileSizeOrZero(incomplete)
        if let expected = metadata.size, actualSize != expected {
            try? FileManager.default.removeItem(at: incomplete)
            throw ModelHubError.sizeMismatch(file: file, expected: expected, actual: actualSize)
        }
        let sha256 = try FileDigest.sha256(of: incomplete)
        if HubCache.isSHA256(metadata.etag), sha256 != metadata.etag {
            try? FileManager.default.removeItem(at: incomplete)
            throw ModelHubError.checksumMismatch(
                file: file, algorithm: "sha256", expected: metadata.etag, actual: sha256)
        }
        if HubCache.isCommitHash(metadata.etag) {
            let gitSHA1 = try FileDigest.gitBlobSHA1(of: incomplete)
            if gitSHA1 != metadata.etag {
                try? FileManager.default.removeItem(at: incomplete)
                throw ModelHubError.checksumMismatch(
                    file: file, algorithm: "git blob sha1", expected: metadata.etag, actual: gitSHA1)
            }
        }
        try HubCache.rename(incomplete, to: blob)
        return (transferred, sha256, true)
    }

    /// A download that broke off after `bytes` new bytes; retried by resuming.
    struct TransferInterrupted: Error {
        let bytes: Int64
        let reason: String
    }

    /// One GET of the remaining bytes, appended to `incomplete`. Returns whether the announced size was
    /// reached (or, with no size announced, the body ended cleanly).
    private func transfer(
        _ http: HTTPClient, url: String, into incomplete: URL, resumeFrom: Int64, expectedSize: Int64?,
        repoID: String, file: String, progress: @escaping @Sendable (FetchEvent) -> Void
    ) async throws -> (bytes: Int64, complete: Bool) {
        var offset = resumeFrom
        var extraHeaders: [String: String] = [:]
        if offset > 0 { extraHeaders["Range"] = "bytes=\(offset)-" }

        // Follow redirects of the GET ourselves, so the token never leaves the Hub's origins.
        var current = url
        var response: HTTPClientResponse? = nil
        for _ in 0..<HubClient.maxRedirects {
            let candidate = try await send(
                http, method: .GET, url: current, extraHeaders: extraHeaders, repoID: repoID, file: file,
                progress: progress)
            let status = candidate.status.code
            if (300..<400).contains(status), let location = candidate.headers.first(name: "Location") {
                _ = try? await candidate.body.collect(upTo: 1 << 20)
                guard let target = HubClient.resolveRedirect(location, from: current) else {
                    throw ModelHubError.badRedirect(url: current, reason: "unusable Location '\(location)'")
                }
                current = target
                continue
            }
            response = candidate
            break
        }
        guard let response else {
            throw ModelHubError.badRedirect(url: url, reason: "more than \(HubClient.maxRedirects) redirects")
        }

        let status = response.status.code
        switch status {
        case 200:
            if offset > 0 {
                // The server ignored Range: start over rather than append a second copy.
                try HubClient.truncate(incomplete)
                offset = 0
            }
        case 206:
            let start = response.headers.first(name: "Content-Range").flatMap(HubClient.contentRangeStart)
            if start != offset {
                _ = try? await response.body.collect(upTo: 1 << 20)
                try HubClient.truncate(incomplete)
                throw TransferInterrupted(bytes: 0, reason: "the server answered a different byte range")
            }
        case 416:
            _ = try? await response.body.collect(upTo: 1 << 20)
            // Nothing left to send: complete if the size matches, otherwise start over.
            if let expectedSize, offset == expectedSize { return (0, true) }
            try HubClient.truncate(incomplete)
            throw TransferInterrupted(bytes: 0, reason: "the server rejected the resume range")
        default:
            _ = try? await response.body.collect(upTo: 1 << 20)
            throw HubClient.statusError(status: status, url: current, attempts: 1)
        }

        let writer = try BlobWriter(url: incomplete)
        defer { writer.close() }
        var received: Int64 = 0
        progress(.downloading(repoID: repoID, file: file, bytesDone: offset, totalBytes: expectedSize))
        do {
            for try await chunk in response.body {
                try writer.write(chunk)
                received += Int64(chunk.readableBytes)
                progress(
                    .downloading(repoID: repoID, file: file, bytesDone: offset + received, totalBytes: expectedSize))
                if let expectedSize, offset + received > expectedSize {
                    try? FileManager.default.removeItem(at: incomplete)
                    throw ModelHubError.sizeMismatch(file: file, expected: expectedSize, actual: offset + received)
                }
            }
        } catch let error as ModelHubError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw TransferInterrupted(bytes: received, reason: HubClient.describe(error))
        }
        guard let expectedSize else { return (received, true) }
        return (received, offset + received == expectedSize)
    }

    // MARK: - Requests with retries

    /// What made an attempt worth repeating.
    private enum SendFailure: Sendable {
        case status(UInt)
        case connection(String)
    }

    /// Sends one request, retrying the statuses HTTPSupport's `RetryPolicy` calls retryable (honouring Retry-After
    /// in both forms) and connection failures with its back-off. Returns the first other response; its body is still
    /// to be read.
    private func send(
        _ http: HTTPClient, method: HTTPMethod, url: String, extraHeaders: [String: String], repoID: String,
        file: String, progress: @escaping @Sendable (FetchEvent) -> Void
    ) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "User-Agent", value: "postersim/0.1 (huggingface_hub-compatible)")
        // The real size is wanted, and bytes are stored as served: no compression.
        request.headers.add(name: "Accept-Encoding", value: "identity")
        if let token = settings.token, isHubOrigin(url) {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        for (name, value) in extraHeaders { request.headers.add(name: name, value: value) }

        // Connection failures are retried once only: AsyncHTTPClient itself keeps trying to connect until the
        // connect timeout, and an unreachable endpoint should be reported without minutes of waiting.
        let maxConnectionRetries = min(settings.maxRetries, 1)
        var connectionFailures = 0
        let endpoint = settings.endpoint
        return try await retry.run(clock: clock) { _ -> RetryPolicy.Outcome<HTTPClientResponse, SendFailure> in
            do {
                let response = try await http.execute(
                    request, timeout: HubClient.timeAmount(settings.metadataTimeout), logger: logger)
                guard RetryPolicy.isRetryable(status: Int(response.status.code)) else { return .success(response) }
                _ = try? await response.body.collect(upTo: 1 << 20)
                let retryAfter = response.headers.first(name: "Retry-After").flatMap {
                    RetryPolicy.retryAfter($0, now: clock.date)
                }
                return .retry(.status(response.status.code), retryAfter: retryAfter)
            } catch let error as ModelHubError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                connectionFailures += 1
                guard connectionFailures <= maxConnectionRetries else {
                    throw ModelHubError.unreachable(endpoint: endpoint, url: url, reason: HubClient.describe(error))
                }
                return .retry(.connection(HubClient.describe(error)), retryAfter: nil)
            }
        } willRetry: { retry in
            let reason: String
            switch retry.failure {
            case .status(let status): reason = "HTTP \(status)"
            case .connection(let why): reason = why
            }
            progress(
                .retrying(repoID: repoID, file: file, attempt: retry.attempt, delaySeconds: retry.delay, reason: reason))
            logger.debug("\(method) \(url) failed (\(reason)); retrying in \(retry.delay)s")
        } giveUp: { attempts, last in
            switch last {
            case .status(let status): HubClient.statusError(status: status, url: url, attempts: attempts)
            case .connection(let why): ModelHubError.unreachable(endpoint: endpoint, url: url, reason: why)
            }
        }
    }

    static func statusError(status: UInt, url: String, attempts: Int) -> ModelHubError {
        switch status {
        case 401: .unauthorized(url: url)
        case 403: .forbidden(url: url)
        case 404: .notFound(url: url, errorCode: nil)
        default: .httpStatus(status: Int(status), url: url, attempts: attempts)
        }
    }

    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        return text.isEmpty ? String(reflecting: error) : text
    }

    // MARK: - URLs

    /// Resolves a Location header (absolute or relative) against the URL that answered with it.
    static func resolveRedirect(_ location: String, from base: String) -> String? {
        guard let baseURL = URL(string: base), let target = URL(string: location, relativeTo: baseURL)?.absoluteURL,
            let scheme = target.scheme?.lowercased(), scheme == "http" || scheme == "https", target.host != nil
        else { return nil }
        return target.absoluteString
    }

    /// (scheme, host, port) with the scheme's default port filled in.
    static func origin(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            let host = components.host?.lowercased()
        else { return nil }
        let port = components.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : 0)
        return "\(scheme)://\(host):\(port)"
    }

    /// Whether `url` is served by the configured endpoint or the public Hub (huggingface_hub _HUB_ORIGINS):
    /// the only places the token is sent to and redirects are followed within during metadata lookups.
    func isHubOrigin(_ url: String) -> Bool {
        guard let target = HubClient.origin(url) else { return false }
        let hubs = [settings.endpoint, HubSettings.defaultEndpoint, "https://hf.co"].compactMap(HubClient.origin)
        return hubs.contains(target)
    }

    /// Start offset of `bytes START-END/TOTAL`.
    static func contentRangeStart(_ header: String) -> Int64? {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes ") else { return nil }
        let range = text.dropFirst(6)
        guard let dash = range.firstIndex(of: "-") else { return nil }
        return Int64(range[..<dash].trimmingCharacters(in: .whitespaces))
    }

    // MARK: - Files

    static func fileSizeOrZero(_ url: URL) -> Int64 { HubCache.fileSize(url) ?? 0 }

    static func truncate(_ url: URL) throws {
        if FileManager.default.fileExists(atPath: url.path), posixTruncate(url.path) != 0 {
            throw ModelHubError.fileSystem(path: url.path, operation: "truncate", reason: String(cString: strerror(errno)))
        }
    }
}

// File-scope wrappers: inside the types below, `write`, `close` and `truncate` name their own methods.
private func posixWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}

private func posixClose(_ descriptor: Int32) {
    _ = close(descriptor)
}

private func posixTruncate(_ path: String) -> Int32 {
    truncate(path, 0)
}

/// Appends bytes to a file with POSIX write(2), without copying buffers.
final class BlobWriter {
    private var descriptor: Int32
    private let path: String

    init(url: URL) throws {
        path = url.path
        descriptor = open(url.path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard descriptor >= 0 else {
            throw ModelHubError.fileSystem(path: url.path, operation: "open", reason: String(cString: strerror(errno)))
        }
    }

    func write(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                guard let base = bytes.baseAddress else { return }
                let written = posixWrite(descriptor, base + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw ModelHubError.fileSystem(path: path, operation: "write", reason: String(cString: strerror(errno)))
                }
                offset += written
            }
        }
    }

    func close() {
        if descriptor >= 0 {
            posixClose(descriptor)
            descriptor = -1
        }
    }
}

/// An exclusive advisory lock (flock) on a file, so two processes never write the same `.incomplete`.
final class FileLock: Sendable {
    private let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    static func acquire(_ url: URL) async throws -> FileLock {
        try HubCache.createDirectory(url.deletingLastPathComponent())
        let descriptor = open(url.path, O_RDWR | O_CREAT, 0o644)
        guard descriptor >= 0 else {
            throw ModelHubError.fileSystem(path: url.path, operation: "open lock", reason: String(cString: strerror(errno)))
        }
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = String(cString: strerror(errno))
                posixClose(descriptor)
                throw ModelHubError.fileSystem(path: url.path, operation: "lock", reason: reason)
            }
            do {
                try await Task.sleep(nanoseconds: 100_000_000)
            } catch {
                posixClose(descriptor)
                throw error
            }
        }
        return FileLock(descriptor: descriptor)
    }

    func release() {
        flock(descriptor, LOCK_UN)
        posixClose(descriptor)
    }
}
