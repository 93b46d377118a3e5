// Finds a model's files on disk, without touching the network: an explicit --model-dir first, then the
// hub cache snapshot that refs/<revision> points to (as huggingface_hub's try_to_load_from_cache does).
import PosterSimCore
import Foundation

/// Where a model's files were found.
///
/// Guarantees: `directory` existed when resolved and held every file `model.files` requires.
public struct ModelLocation: Sendable, Equatable {
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        /// A folder given with `--model-dir NAME=PATH`.
        case modelDirectory
        /// A hub cache snapshot; `revision` is what was asked for, `commit` what it pointed to.
        case cache(revision: String, commit: String)

        public var description: String {
            switch self {
            case .modelDirectory: "--model-dir"
            case let .cache(revision, commit): "cache (\(revision) = \(commit))"
            }
        }
    }

    public let model: ModelName
    public let directory: URL
    public let source: Source
    /// The model's files (required and optional) present in `directory`.
    public let presentFiles: [String]

    /// The path of one of the model's files; throws `missingFiles` when it is not there.
    public func url(for file: String) throws -> URL {
        try HubCache.validate(fileName: file)
        let url = directory.appendingPathComponent(file)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ModelHubError.missingFiles(model: model, directory: directory.path, files: [file])
        }
        return url
    }

    /// The weights file (`model.safetensors`).
    public var weightsURL: URL { directory.appendingPathComponent(model.weightsFile) }
}

/// What `models list` shows for one model: never throws, problems are reported in `problem`.
public struct ModelInventory: Sendable, Codable, Equatable {
    public struct File: Sendable, Codable, Equatable {
        public let name: String
        public let required: Bool
        public let present: Bool
        /// Size in bytes when present.
        public let size: Int64?
        /// Content sha256 when present.
        public let sha256: String?
    }

    public let model: ModelName
    public let repoID: String
    public let revision: String
    /// Where the model resolves ("--model-dir" or "cache"), nil when it does not.
    public let source: String?
    /// The folder the files were read from (or were looked for).
    public let directory: String
    /// The commit of the cache snapshot, when resolved from the cache.
    public let commit: String?
    public let files: [File]
    /// Sum of the sizes of present files.
    public let totalSize: Int64
    /// sha256 of the weights file when present.
    public let weightsSHA256: String?
    /// Why the model does not resolve, nil when it does.
    public let problem: String?

    /// The same report with another weights hash (e.g. one recomputed with `verify`).
    public func replacingWeightsSHA256(_ hash: String) -> ModelInventory {
        ModelInventory(
            model: model, repoID: repoID, revision: revision, source: source, directory: directory, commit: commit,
            files: files, totalSize: totalSize, weightsSHA256: hash, problem: problem)
    }
}

/// Locates models on disk. Never uses the network.
///
/// Resolution order: a `--model-dir` folder for the model, then the hub cache snapshot for `revision`.
public struct ModelResolver: Sendable {
    public let settings: HubSettings
    /// Folders given with `--model-dir NAME=PATH`, in the repository's layout (files at the top level).
    public let modelDirectories: [ModelName: URL]

    public var cache: HubCache { HubCache(root: settings.cacheDirectory) }

    public init(settings: HubSettings, modelDirectories: [ModelName: URL] = [:]) {
        self.settings = settings
        self.modelDirectories = modelDirectories
    }

    /// Builds a resolver from `--model-dir NAME=PATH` arguments (later ones win for the same model).
    public init(settings: HubSettings, modelDirectoryArguments: [String]) throws {
        var directories: [ModelName: URL] = [:]
        for argument in modelDirectoryArguments {
            let (model, url) = try ModelResolver.parseModelDirectory(argument)
            directories[model] = url
        }
        self.init(settings: settings, modelDirectories: directories)
    }

    /// Parses `NAME=PATH` (NAME as accepted by `ModelName(parsing:)`; `~` expands to the home folder).
    public static func parseModelDirectory(_ argument: String) throws -> (ModelName, URL) {
        guard let equals = argument.firstIndex(of: "=") else {
            throw ModelHubError.invalidModelDirectoryArgument(argument)
        }
        let name = String(argument[..<equals]).trimmingCharacters(in: .whitespaces)
        let path = String(argument[argument.index(after: equals)...])
        guard let model = ModelName(parsing: name), !path.isEmpty else {
            throw ModelHubError.invalidModelDirectoryArgument(argument)
        }
        let expanded = (path as NSString).expandingTildeInPath
        return (model, URL(fileURLWithPath: expanded, isDirectory: true).standardizedFileURL)
    }

    /// Finds `model`'s files. Throws `modelDirectoryNotFound` / `missingFiles` for a bad `--model-dir`,
    /// `notInCache` when the cache has no snapshot for `revision`, `missingFiles` for an incomplete one.
    public func resolve(_ model: ModelName, revision: String = "main") throws -> ModelLocation {
        if let directory = modelDirectories[model] {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw ModelHubError.modelDirectoryNotFound(model: model, path: directory.path)
            }
            return try located(model, in: directory, source: .modelDirectory)
        }
        let repoFolder = cache.repoFolder(model.repoID)
        guard let commit = cache.commit(model.repoID, revision: revision) else {
            throw ModelHubError.notInCache(model: model, repoFolder: repoFolder.path, revision: revision)
        }
        let snapshot = cache.snapshotFolder(model.repoID, commit: commit)
        guard FileManager.default.fileExists(atPath: snapshot.path) else {
            throw ModelHubError.notInCache(model: model, repoFolder: repoFolder.path, revision: revision)
        }
        return try located(model, in: snapshot, source: .cache(revision: revision, commit: commit))
    }

    private func located(_ model: ModelName, in directory: URL, source: ModelLocation.Source) throws -> ModelLocation {
        let present = model.files.all.filter {
            FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path)
        }
        let missing = model.files.missing(present: Set(present))
        guard missing.isEmpty else {
            throw ModelHubError.missingFiles(model: model, directory: directory.path, files: missing)
        }
        return ModelLocation(model: model, directory: directory, source: source, presentFiles: present)
    }

    /// sha256 of `model`'s weights file: the identity of the weights a store should record with the repo id.
    ///
    /// For a cache snapshot whose entry links to a blob named by a sha256 (an LFS file: the Hub's etag is the
    /// content sha256, checked when PosterSim downloaded it) the blob name is returned without reading the
    /// file, unless `verify` is set; otherwise the file is hashed.
    public func weightsSHA256(for model: ModelName, revision: String = "main", verify: Bool = false) throws -> String {
        let location = try resolve(model, revision: revision)
        return try sha256(of: model.weightsFile, in: location, verify: verify)
    }

    /// sha256 of one file of a resolved model (see `weightsSHA256(for:)` for when the file is read).
    public func sha256(of file: String, in location: ModelLocation, verify: Bool = false) throws -> String {
        let url = try location.url(for: file)
        if !verify, case .cache = location.source, let etag = cache.linkedEtag(url), HubCache.isSHA256(etag) {
            return etag
        }
        return try FileDigest.sha256(of: url)
    }

    /// A report of `model` for `models list`; hashes every present file (cheap except for the weights of
    /// a --model-dir folder, which are read once).
    public func inventory(_ model: ModelName, revision: String = "main") -> ModelInventory {
        let location: ModelLocation?
        var problem: String? = nil
        do {
            location = try resolve(model, revision: revision)
        } catch {
            location = nil
            problem = "\(error)"
        }
        // When the model does not resolve, still show what is where it was looked for.
        let directory: URL
        var commit: String? = nil
        if let location {
            directory = location.directory
            if case let .cache(_, snapshotCommit) = location.source { commit = snapshotCommit }
        } else if let explicit = modelDirectories[model] {
            directory = explicit
        } else if let cached = cache.commit(model.repoID, revision: revision) {
            directory = cache.snapshotFolder(model.repoID, commit: cached)
            commit = cached
        } else {
            directory = cache.repoFolder(model.repoID)
        }
        let probe =
            location
            ?? ModelLocation(
                model: model, directory: directory,
                source: commit.map { .cache(revision: revision, commit: $0) } ?? .modelDirectory, presentFiles: [])
        var files: [ModelInventory.File] = []
        var total: Int64 = 0
        var weights: String? = nil
        for name in model.files.all {
            let url = directory.appendingPathComponent(name)
            let size = HubCache.fileSize(url)
            let digest = size == nil ? nil : try? sha256(of: name, in: probe)
            if let size { total += size }
            if name == model.weightsFile { weights = digest }
            files.append(
                ModelInventory.File(
                    name: name, required: model.files.required.contains(name), present: size != nil, size: size,
                    sha256: digest))
        }
        let source: String? =
            switch location?.source {
            case .modelDirectory: "--model-dir"
            case .cache: "cache"
            case nil: nil
            }
        return ModelInventory(
            model: model, repoID: model.repoID, revision: revision, source: source, directory: directory.path,
            commit: commit, files: files, totalSize: total, weightsSHA256: weights, problem: problem)
    }
}
