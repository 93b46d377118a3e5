import PosterSimCore
// Typed errors of the ModelHub module, each with a message that says what to do next.

/// Everything that can go wrong while locating or fetching model files.
///
/// Each case's `description` names the path or URL involved and, where it helps, the setting
/// (`HF_ENDPOINT`, `HF_HUB_CACHE`, `--model-dir`, ...) that changes the outcome.
public enum ModelHubError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The model has no snapshot for `revision` in the cache.
    case notInCache(model: ModelName, repoFolder: String, revision: String)
    /// `--model-dir` (or a cache snapshot) lacks files the model needs.
    case missingFiles(model: ModelName, directory: String, files: [String])
    /// A `--model-dir` path that is not a readable folder.
    case modelDirectoryNotFound(model: ModelName, path: String)
    /// A `--model-dir` argument not of the form NAME=PATH, or naming no known model.
    case invalidModelDirectoryArgument(String)
    /// A model name none of the models answers to.
    case unknownModelName(String)
    /// A file name that would escape the repository folder.
    case unsafeFileName(String)
    /// Offline mode is on (`HF_HUB_OFFLINE`) and a file is not in the cache.
    case offlineAndNotCached(repoID: String, file: String, revision: String, cacheDirectory: String)
    /// HTTP 401: the Hub wants a token (or the one given is wrong).
    case unauthorized(url: String)
    /// HTTP 403: the token has no access (gated or private repository).
    case forbidden(url: String)
    /// HTTP 404 (repository, revision or file not found). `errorCode` is the Hub's `X-Error-Code` if sent.
    case notFound(url: String, errorCode: String?)
    /// Another HTTP status that is not retried, or a retried one that kept failing.
    case httpStatus(status: Int, url: String, attempts: Int)
    /// The endpoint could not be reached at all (DNS, refused connection, timeout).
    case unreachable(endpoint: String, url: String, reason: String)
    /// A response without `X-Repo-Commit`: whatever answered is not a Hugging Face Hub.
    case notAHubEndpoint(url: String)
    /// A response without an ETag: the file cannot be stored content-addressed.
    case missingETag(url: String)
    /// An ETag that cannot serve as a blob file name (characters other than letters, digits, '-', '_', '.').
    case unusableETag(url: String, etag: String)
    /// A redirect with an unusable Location, or too many redirects.
    case badRedirect(url: String, reason: String)
    /// The downloaded bytes do not hash to what the Hub announced; nothing was installed.
    case checksumMismatch(file: String, algorithm: String, expected: String, actual: String)
    /// The downloaded file has a different size than announced.
    case sizeMismatch(file: String, expected: Int64, actual: Int64)
    /// The download kept breaking off.
    case downloadFailed(url: String, attempts: Int, reason: String)
    /// A file system operation on the cache failed.
    case fileSystem(path: String, operation: String, reason: String)

    public var description: String {
        switch self {
        case let .notInCache(model, repoFolder, revision):
            return """
                Model '\(model)' (\(model.repoID)) is not in the Hugging Face cache: no usable snapshot for \
                revision '\(revision)' under \(repoFolder). Fetch it with `postersim models fetch --model \(model)` \
                (set HF_HUB_CACHE or HF_HOME to use another cache), or point to a folder holding its files with \
                `--model-dir \(model)=PATH`.
                """
        case let .missingFiles(model, directory, files):
            return """
                Model '\(model)' at \(directory) is missing \(files.joined(separator: ", ")). \
                Run `postersim models fetch --model \(model)` or fix the folder given to --model-dir.
                """
        case let .modelDirectoryNotFound(model, path):
            return "--model-dir \(model)=\(path): no such folder."
        case let .invalidModelDirectoryArgument(text):
            let names = ModelName.allCases.map(\.rawValue).joined(separator: ", ")
            return "--model-dir '\(text)': expected NAME=PATH with NAME one of \(names)."
        case let .unknownModelName(text):
            let names = ModelName.allCases.map(\.rawValue).joined(separator: ", ")
            return "Unknown model '\(text)'; expected one of \(names)."
        case let .unsafeFileName(name):
            return "Refusing file name '\(name)': it is absolute or contains '..'."
        case let .offlineAndNotCached(repoID, file, revision, cacheDirectory):
            return """
                HF_HUB_OFFLINE is set, and \(repoID)/\(file) (revision '\(revision)') is not in the cache at \
                \(cacheDirectory). Unset HF_HUB_OFFLINE to download it, or use --model-dir.
                """
        case let .unauthorized(url):
            return "401 Unauthorized for \(url): the Hub needs a valid token (set HF_TOKEN), or HF_ENDPOINT points to the wrong server."
        case let .forbidden(url):
            return "403 Forbidden for \(url): the token in HF_TOKEN has no access to this repository (gated or private?), or HF_ENDPOINT points to the wrong server."
        case let .notFound(url, errorCode):
            let what: String
            switch errorCode {
            case "RepoNotFound": what = "repository not found"
            case "RevisionNotFound": what = "revision not found"
            case "EntryNotFound": what = "file not found in the repository"
            default: what = "not found"
            }
            return "404 (\(what)) for \(url). Check the revision, and that HF_ENDPOINT points to a Hugging Face Hub or mirror."
        case let .httpStatus(status, url, attempts):
            let tries = attempts > 1 ? " after \(attempts) attempts" : ""
            return "HTTP \(status) for \(url)\(tries). Check HF_ENDPOINT, or try again later."
        case let .unreachable(endpoint, url, reason):
            return """
                Cannot reach the Hugging Face Hub at \(endpoint) (requesting \(url): \(reason)). Check the network, \
                set HF_ENDPOINT to a reachable mirror, or use model files already on disk with --model-dir NAME=PATH \
                (HF_HUB_OFFLINE=1 uses the cache only).
                """
        case let .notAHubEndpoint(url):
            return "The response from \(url) has no X-Repo-Commit header, so it is not a Hugging Face Hub. If HF_ENDPOINT is set, check that it points to a Hub-compatible server."
        case let .missingETag(url):
            return "The response from \(url) has no ETag; the file cannot be cached reliably."
        case let .unusableETag(url, etag):
            return "The response from \(url) has ETag '\(etag)', which cannot be used as a cache file name."
        case let .badRedirect(url, reason):
            return "Bad redirect from \(url): \(reason)."
        case let .checksumMismatch(file, algorithm, expected, actual):
            return "Downloaded \(file) is corrupt: \(algorithm) is \(actual), the Hub announced \(expected). It was discarded; run the fetch again."
        case let .sizeMismatch(file, expected, actual):
            return "Downloaded \(file) has \(actual) bytes, the Hub announced \(expected). It was discarded; run the fetch again."
        case let .downloadFailed(url, attempts, reason):
            return "Download of \(url) failed after \(attempts) attempts: \(reason). Run the fetch again to resume."
        case let .fileSystem(path, operation, reason):
            return "Cannot \(operation) \(path): \(reason)."
        }
    }
}
