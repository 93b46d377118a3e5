import AsyncHTTPClient
import Foundation
import HTTPSupport
import Logging
import NIOCore
import NIOHTTP1
import PosterSimCore
import Store

/// Errors of `pinecone copy`. The API key never appears in them.
public enum PineconeCopyError: Error, Sendable, CustomStringConvertible {
    case http(status: Int, url: String, message: String)
    case unreachable(url: String, reason: String)
    case badResponse(url: String, reason: String)
    case incompatible(String)

    public var description: String {
        switch self {
        case .http(let status, let url, let message): return "\(url) answered \(status): \(message)"
        case .unreachable(let url, let reason): return "cannot reach \(url): \(reason)"
        case .badResponse(let url, let reason): return "unreadable answer from \(url): \(reason)"
        case .incompatible(let why): return why
        }
    }
}

/// A client of any server that speaks Pinecone's REST API (Pinecone's cloud, Pinecone Local, another PosterSim):
/// describe one index, then `list` and `fetch` its records. Retries HTTPSupport's retryable statuses and connection
/// failures with its `RetryPolicy`; call `shutdown()` (or use `withClient`) before dropping it.
public final class PineconeSourceClient: Sendable {
    /// The control plane's base URL (`https://api.pinecone.io`, `http://host:port/pinecone`).
    public let controlURL: String
    private let apiKey: String
    private let http: HTTPClient
    private let retry: RetryPolicy
    private let clock: any HTTPClock
    private let logger: Logger

    public static let apiVersion = "2024-07"

    public init(
        controlURL: String, apiKey: String, retry: RetryPolicy = RetryPolicy(maxAttempts: 6, baseDelay: 0.5, maxDelay: 20, maxRetryAfter: 60),
        clock: any HTTPClock = SystemHTTPClock(), logger: Logger = Logger(label: "postersim.pinecone-copy")
    ) {
        self.controlURL = controlURL.hasSuffix("/") ? String(controlURL.dropLast()) : controlURL
        self.apiKey = apiKey
        self.retry = retry
        self.clock = clock
        self.logger = logger
        http = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(timeout: .init(connect: .seconds(10), read: .seconds(120))))
    }

    public func shutdown() async throws { try await http.shutdown() }

    public static func withClient<Result: Sendable>(
        controlURL: String, apiKey: String, _ body: (PineconeSourceClient) async throws -> Result
    ) async throws -> Result {
        try await withShutdown(
            PineconeSourceClient(controlURL: controlURL, apiKey: apiKey), shutdown: { try await $0.shutdown() }, body)
    }

    /// The index's data-plane base URL, dimension and metric, from `describe_index` (either API generation's shape).
    public func describe(index: String) async throws -> (host: String, description: RecordIndexDescription) {
        let json = try await get(controlURL + "/indexes/" + Self.escape(index))
        guard var host = json[member: "host"]?.stringValue else {
            throw PineconeCopyError.badResponse(url: controlURL, reason: "describe_index has no host")
        }
        if !host.hasPrefix("http://") && !host.hasPrefix("https://") {
            // Pinecone answers a bare host name; use the control plane's scheme (Pinecone Local serves plain http).
            host = (controlURL.hasPrefix("http://") ? "http://" : "https://") + host
        }
        let vectorField = json[member: "schema"]?[member: "fields"]?[member: "_values"]
        let dimension = json[member: "dimension"]?.intValue ?? vectorField?[member: "dimension"]?.intValue
        let metricText: String? = {
            if case .string(let m)? = json[member: "metric"] { return m }
            if case .string(let m)? = vectorField?[member: "metric"] { return m }
            return nil
        }()
        guard let dimension, let metric = RecordMetric(rawValue: (metricText ?? "cosine").lowercased()) else {
            throw PineconeCopyError.incompatible("index \(index) is not a dense index with a dimension and a known metric")
        }
        return (host, RecordIndexDescription(name: index, dimension: dimension, metric: metric))
    }

    /// One page of ids after `token`.
    public func list(host: String, namespace: String, limit: Int, token: String?) async throws -> (ids: [String], next: String?) {
        var url = host + "/vectors/list?limit=\(limit)&namespace=" + Self.escape(namespace)
        if let token { url += "&paginationToken=" + Self.escape(token) }
        let json = try await get(url)
        guard case .array(let items)? = json[member: "vectors"] else { return ([], nil) }
        let ids = items.compactMap { item -> String? in
            if case .string(let id)? = item[member: "id"] { return id }
            return nil
        }
        var next: String?
        if case .string(let t)? = json[member: "pagination"]?[member: "next"], !t.isEmpty { next = t }
        return (ids, next)
    }

    /// The records with these ids (values and metadata).
    public func fetch(host: String, namespace: String, ids: [String]) async throws -> [Record] {
        guard !ids.isEmpty else { return [] }
        let url = host + "/vectors/fetch?namespace=" + Self.escape(namespace)
            + ids.map { "&ids=" + Self.escape($0) }.joined()
        let json = try await get(url)
        guard case .object(let vectors)? = json[member: "vectors"] else { return [] }
        return try vectors.values.map { v in
            guard case .string(let id)? = v[member: "id"], case .array(let values)? = v[member: "values"] else {
                throw PineconeCopyError.badResponse(url: host, reason: "a fetched vector has no id or values")
            }
            let floats = try values.map { x -> Float in
                guard case .number(let d) = x else { throw PineconeCopyError.badResponse(url: host, reason: "non-numeric value") }
                return Float(d)
            }
            let metadata: RecordMetadata?
            do {
                metadata = try RecordMetadataCoding.parse(v[member: "metadata"])
            } catch {
                throw PineconeCopyError.incompatible("record '\(id.prefix(64))' has metadata this store cannot hold: \(error)")
            }
            return Record(id: id, values: floats, metadata: metadata)
        }
    }

    // MARK: HTTP

    enum Failure: Sendable {
        case status(Int, String)
        case connection(String)
    }

    func get(_ url: String) async throws -> JSONValue {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Api-Key", value: apiKey)
        request.headers.add(name: "X-Pinecone-API-Version", value: Self.apiVersion)
        request.headers.add(name: "Accept", value: "application/json")
        let shown = Self.redacted(url)
        let http = http
        let logger = logger
        let body: ByteBuffer = try await retry.run(clock: clock) { _ -> RetryPolicy.Outcome<ByteBuffer, Failure> in
            do {
                let response = try await http.execute(request, timeout: .seconds(120), logger: logger)
                let body = try await response.body.collect(upTo: 64 << 20)
                let status = Int(response.status.code)
                if (200..<300).contains(status) { return .success(body) }
                let message = String(buffer: body).prefix(300)
                guard RetryPolicy.isRetryable(status: status) else {
                    throw PineconeCopyError.http(status: status, url: shown, message: String(message))
                }
                let retryAfter = response.headers.first(name: "Retry-After").flatMap { RetryPolicy.retryAfter($0, now: clock.date) }
                return .retry(.status(status, String(message)), retryAfter: retryAfter)
            } catch let error as PineconeCopyError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                return .retry(.connection("\(error)"), retryAfter: nil)
            }
        } willRetry: { r in
            logger.info("retrying \(shown) in \(r.delay)s")
        } giveUp: { _, last in
            switch last {
            case .status(let s, let m): return PineconeCopyError.http(status: s, url: shown, message: m)
            case .connection(let why): return PineconeCopyError.unreachable(url: shown, reason: why)
            }
        }
        do {
            return try JSONValue.parse(Data(body.readableBytesView))
        } catch {
            throw PineconeCopyError.badResponse(url: shown, reason: "not JSON")
        }
    }

    /// The URL without its query (ids and tokens are not worth repeating in errors).
    static func redacted(_ url: String) -> String { String(url.split(separator: "?", maxSplits: 1).first ?? "") }

    static func escape(_ s: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?/#")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

}
