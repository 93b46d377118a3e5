import Foundation
import PosterSimCore

/// Everything `buildApplication` needs besides the store and the models. The `serve` command fills it from flags and
/// the environment; tests fill it directly.
public struct ServerConfiguration: Sendable {
    /// Address to bind; `127.0.0.1` keeps the server on this machine.
    public var host = "127.0.0.1"
    /// Port to bind; 0 picks a free one (tests).
    public var port = 8080
    /// Origins allowed to call the API from a browser (CORS). Empty: no CORS headers; `*`: any origin.
    public var corsOrigins: [String] = []
    /// Static files served at `/` (the web page). nil: the page shipped in the package (`Sources/Server/Public`).
    public var publicDirectory: String?
    /// TMDB image CDN base (no trailing slash) for posters not in the local cache.
    public var imageBaseURL = PosterCache.tmdbImageBaseURL
    /// TMDB size segment of the redirect for posters not in the local cache.
    public var posterSize = "w500"
    /// The ingest's poster cache (`{dir}/{size}/{file}`); nil: never serve locally.
    public var posterCacheDirectory: String? = PosterCache.defaultDirectory
    /// Largest request body accepted (image uploads), bytes.
    public var maxBodyBytes = 10 * 1024 * 1024
    /// Longest query string accepted, bytes.
    public var maxQueryBytes = 4096
    /// Largest decoded image accepted, pixels.
    public var maxImagePixels = 40_000_000
    /// Embedding jobs that run at once (default: the number of cores).
    public var embedConcurrency = ProcessInfo.processInfo.activeProcessorCount
    /// Embedding jobs that may wait for a slot; beyond this, 503 with Retry-After.
    public var embedQueueLimit = 2 * ProcessInfo.processInfo.activeProcessorCount
    /// How long a cached response stays valid (the original service cached 10 minutes).
    public var cacheTTL: Duration = .seconds(600)
    /// Most cached responses kept, and their total size bound.
    public var cacheMaxEntries = 20_000
    public var cacheMaxBytes = 128 * 1024 * 1024
    /// Largest `topK` a request may ask for.
    public var maxTopK = 100
    /// Largest `limit` of the title autocomplete.
    public var maxTitleLimit = 100
    /// A connection with no request for this long is closed (also one whose request's parts stop coming); nil: never.
    public var idleTimeout: Duration? = .seconds(60)
    /// Once a request's first byte is in, its head (request line and headers) must follow within this (else 408).
    public var headTimeout: Duration = .seconds(10)
    /// Once a request's head is in, its whole body must follow within this (else 408 and the connection is closed).
    public var bodyTimeout: Duration = .seconds(60)
    /// Connections open at once; those beyond get 503 with Retry-After and are closed.
    public var maxConnections = 1024
    /// Names the `Host` header may give (any port; `name:port` for one port, `*.domain` for its subdomains, `*` for
    /// any), so a web page whose name was rebound to this server's address (DNS rebinding) cannot talk to it.
    public var allowedHosts = ServerConfiguration.loopbackHosts
    public static let loopbackHosts = ["localhost", "127.0.0.1", "[::1]"]
    /// Adds `GET /bench/bare`, a fixed small JSON answer, for `make bench-server`'s baseline.
    public var benchRoutes = false
    /// Keys a `/pinecone` request must give in `Api-Key` (any one of them). Empty: `/pinecone` answers loopback
    /// clients only. Never logged or shown.
    public var pineconeAPIKeys: [String] = []
    /// The origin (`https://vectors.example.org`) clients reach this server at, for `describe_index().host` behind a
    /// proxy; nil: the request's own `Host`.
    public var publicURL: String?
    /// Largest request body of a `/pinecone` route (Pinecone's 2 MB per request).
    public var pineconeMaxBodyBytes = 2 * 1024 * 1024
    /// Data-plane requests of `/pinecone` handled at once, and those that may wait; beyond, 429 with Retry-After.
    public var pineconeConcurrency = 2 * ProcessInfo.processInfo.activeProcessorCount
    public var pineconeQueueLimit = 256
    /// Server name in the `Server` header.
    public var serverName = "PosterSim"

    public init() {}
}
