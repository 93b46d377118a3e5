import Foundation
import PosterSimCore

/// How requests to TMDB are authenticated. The v4 "API read access token" goes in an `Authorization: Bearer` header;
/// the v3 "API key" goes in the `api_key` query parameter. Only the API host gets them, never the image host.
public enum TMDBCredentials: Sendable, Equatable, CustomStringConvertible {
    case bearerToken(String)
    case apiKey(String)

    /// Never prints the secret itself.
    public var description: String {
        switch self {
        case .bearerToken: "bearer token (TMDB_API_TOKEN)"
        case .apiKey: "API key (TMDB_API_KEY)"
        }
    }
}

/// Everything the TMDB client needs: endpoints, credentials, rate limit, retry and timeout policy, size limits.
/// A plain value the CLI fills from flags and environment (`TMDBSettings.resolve`); tests point it at a local server
/// with tiny delays.
public struct TMDBSettings: Sendable {
    public static let defaultBaseURL = "https://api.themoviedb.org/3"
    public static let defaultImageBaseURL = PosterCache.tmdbImageBaseURL
    /// TMDB serves at most this many pages of a list.
    public static let maxPages = 500

    /// API base, without a trailing slash (e.g. `https://api.themoviedb.org/3`).
    public var baseURL: String
    /// Image CDN base, without a trailing slash; a poster is `{imageBaseURL}/{size}{poster_path}`.
    public var imageBaseURL: String
    /// Needed to list movies; poster downloads do not use them.
    public var credentials: TMDBCredentials?
    public var language: String = "en-US"
    /// The most pages TMDB serves of one list or query (500); a stand-in with a smaller cap lowers it.
    public var pageCap: Int = TMDBSettings.maxPages
    /// Largest window `/movie/changes` accepts, in days (14).
    public var changeWindowDays: Int = 14

    /// Sustained request rate shared by every request of one client (API and images, retries included).
    public var requestsPerSecond: Double = 40
    /// How many requests may go out back to back after an idle period. 1 spaces every request by
    /// `1 / requestsPerSecond`, so no one-second window ever holds more than `requestsPerSecond` (+1) requests.
    public var burst: Int = 1

    /// Seconds to establish a connection.
    public var connectTimeout: Double = 10
    /// Seconds without receiving bytes before a response is abandoned (and retried).
    public var readTimeout: Double = 30
    /// Seconds one whole request (headers and body) may take.
    public var requestTimeout: Double = 120

    /// Attempts per request, the first included. 429, 5xx and transport errors (timeouts, dropped connections) are
    /// retried; other statuses are not.
    public var maxAttempts: Int = 5
    /// Backoff before retry n (1-based) is drawn from `[d/2, d]` with `d = min(maxRetryDelay, retryBaseDelay * 2^(n-1))`.
    public var retryBaseDelay: Double = 0.5
    public var maxRetryDelay: Double = 30
    /// A server's `Retry-After` is honoured (waited at least) up to this many seconds.
    public var maxRetryAfter: Double = 120

    /// Largest JSON page accepted, in bytes.
    public var maxPageBytes: Int = 8 << 20
    /// Largest poster accepted, in bytes.
    public var maxPosterBytes: Int = 64 << 20

    public init(
        baseURL: String = TMDBSettings.defaultBaseURL, imageBaseURL: String = TMDBSettings.defaultImageBaseURL,
        credentials: TMDBCredentials? = nil
    ) {
        self.baseURL = Self.trimmingSlashes(baseURL)
        self.imageBaseURL = Self.trimmingSlashes(imageBaseURL)
        self.credentials = credentials
    }

    /// Settings from flags (which win) and the environment: `TMDB_BASE_URL`, `TMDB_IMAGE_BASE_URL`, and credentials
    /// from `TMDB_API_TOKEN` (preferred) or `TMDB_API_KEY`. Empty values count as unset.
    public static func resolve(
        environment: [String: String] = ProcessInfo.processInfo.environment, baseURL: String? = nil,
        imageBaseURL: String? = nil
    ) -> TMDBSettings {
        func value(_ flag: String?, _ name: String) -> String? {
            if let flag, !flag.isEmpty { return flag }
            if let env = environment[name], !env.isEmpty { return env }
            return nil
        }
        var credentials: TMDBCredentials? = nil
        if let token = value(nil, "TMDB_API_TOKEN") {
            credentials = .bearerToken(token)
        } else if let key = value(nil, "TMDB_API_KEY") {
            credentials = .apiKey(key)
        }
        return TMDBSettings(
            baseURL: value(baseURL, "TMDB_BASE_URL") ?? defaultBaseURL,
            imageBaseURL: value(imageBaseURL, "TMDB_IMAGE_BASE_URL") ?? defaultImageBaseURL,
            credentials: credentials)
    }

    static func trimmingSlashes(_ url: String) -> String {
        var s = url
        while s.hasSuffix("/") { s.removeLast() }
        return s
    }

    /// Checks values that would otherwise make the client misbehave (zero rate, no attempts...).
    func validated() throws(TMDBError) -> TMDBSettings {
        for (name, url) in [("base URL", baseURL), ("image base URL", imageBaseURL)] {
            guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(),
                scheme == "http" || scheme == "https", parsed.host?.isEmpty == false
            else { throw .invalidSettings("\(name) '\(url)' is not an http(s) URL") }
        }
        guard requestsPerSecond > 0, requestsPerSecond.isFinite else {
            throw .invalidSettings("requests per second must be positive")
        }
        guard pageCap >= 1 else { throw .invalidSettings("page cap must be at least 1") }
        guard burst >= 1 else { throw .invalidSettings("burst must be at least 1") }
        guard maxAttempts >= 1 else { throw .invalidSettings("max attempts must be at least 1") }
        for (name, v) in [
            ("connect timeout", connectTimeout), ("read timeout", readTimeout), ("request timeout", requestTimeout),
        ] where !(v > 0 && v.isFinite) {
            throw .invalidSettings("\(name) must be positive")
        }
        for (name, v) in [
            ("retry base delay", retryBaseDelay), ("max retry delay", maxRetryDelay), ("max Retry-After", maxRetryAfter),
        ] where !(v >= 0 && v.isFinite) {
            throw .invalidSettings("\(name) must be non-negative")
        }
        guard maxPageBytes > 0, maxPosterBytes > 0 else { throw .invalidSettings("size limits must be positive") }
        return self
    }
}
