import Store

/// Errors from the TMDB client. URLs in messages never contain the API key.
public enum TMDBError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Listing movies needs credentials and none were given.
    case missingCredentials
    /// TMDB answered 401: the token or key is missing, wrong or revoked.
    case unauthorized(url: String)
    /// 404: no such page or poster.
    case notFound(url: String)
    /// Any other status that is not retried (400, 403, ...), or a retried one when retrying is over.
    case httpStatus(Int, url: String)
    /// The body was not the JSON expected.
    case badJSON(url: String, detail: String)
    /// The body exceeded the configured limit.
    case responseTooLarge(url: String, limit: Int)
    /// Every attempt failed with a retryable status or a transport error; `last` says how the last one failed.
    case tooManyRetries(url: String, attempts: Int, last: RequestFailure)
    /// A poster path that is not a plain TMDB file name (`/abc.jpg`), refused to keep requests and cache paths sane.
    case invalidPosterPath(String)
    case invalidSettings(String)

    /// The hint given with a 401.
    public static let credentialsHint =
        "set TMDB_API_TOKEN to a TMDB API read access token (sent as 'Authorization: Bearer') or TMDB_API_KEY to a "
        + "v3 API key (sent as the api_key query parameter)"

    public var description: String {
        switch self {
        case .missingCredentials:
            return "no TMDB credentials: \(Self.credentialsHint)"
        case .unauthorized(let url):
            return "TMDB refused the credentials (401 Unauthorized) for \(url): \(Self.credentialsHint)"
        case .notFound(let url):
            return "not found (404): \(url)"
        case .httpStatus(let code, let url):
            return "HTTP \(code) from \(url)"
        case .badJSON(let url, let detail):
            return "unexpected JSON from \(url): \(detail)"
        case .responseTooLarge(let url, let limit):
            return "response from \(url) is larger than \(limit) bytes"
        case .tooManyRetries(let url, let attempts, let last):
            return "giving up on \(url) after \(attempts) attempts (last: \(last))"
        case .invalidPosterPath(let path):
            return "invalid poster path '\(path)' (expected '/name.ext')"
        case .invalidSettings(let why):
            return "invalid TMDB settings: \(why)"
        }
    }
}

/// How one retryable attempt of a request failed.
public enum RequestFailure: Sendable, Equatable, CustomStringConvertible {
    /// A retryable status (429, 5xx).
    case status(Int)
    /// No answer in time: connect, read or whole-request timeout.
    case timeout(String)
    /// Any other transport failure: refused, reset, closed before the body was complete.
    case transport(String)

    public var description: String {
        switch self {
        case .status(let code): return "HTTP \(code)"
        case .timeout(let detail), .transport(let detail): return detail
        }
    }
}

/// Errors that stop an ingest run. Per-poster problems are not errors: they are recorded as `SkippedPoster`s.
public enum IngestError: Error, Sendable, CustomStringConvertible {
    /// Listing the movies failed (TMDB error).
    case listing(TMDBError)
    /// The JSON source file could not be read or parsed.
    case sourceFile(path: String, detail: String)
    case invalidConfiguration(String)
    /// `--models` named a model no embedder provides.
    case unknownModels([String], available: [String])
    /// Two embedders for the same space.
    case duplicateSpace(String)
    /// An embedder broke its contract (wrong number of vectors or wrong dimension).
    case embedderOutput(space: String, detail: String)
    /// An embedder threw; the batches stored before stay stored and a rerun resumes.
    case embedder(space: String, detail: String)
    /// The store failed; everything committed before stays committed.
    case store(StoreError)

    public var description: String {
        switch self {
        case .listing(let e): return "listing movies failed: \(e)"
        case .sourceFile(let path, let detail): return "cannot read movies from \(path): \(detail)"
        case .invalidConfiguration(let why): return "invalid ingest configuration: \(why)"
        case .unknownModels(let names, let available):
            return "unknown model(s) \(names.joined(separator: ", ")); available: \(available.joined(separator: ", "))"
        case .duplicateSpace(let name): return "two embedders for the vector space '\(name)'"
        case .embedderOutput(let space, let detail): return "model '\(space)' returned bad output: \(detail)"
        case .embedder(let space, let detail): return "model '\(space)' failed: \(detail)"
        case .store(let e): return "store: \(e)"
        }
    }
}
