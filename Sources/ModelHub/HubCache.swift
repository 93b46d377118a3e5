// The on-disk layout of the Hugging Face hub cache, reproduced from huggingface_hub
// (file_download.py: repo_folder_name, _create_symlink, _cache_commit_hash_for_specific_revision):
//
//   <cache>/models--ORG--NAME/
//       refs/<revision>                 text file holding the 40-hex commit the revision pointed to
//       blobs/<etag>                    file contents; etag = sha256 for LFS files, git blob sha1 otherwise
//       blobs/<etag>.incomplete         a download in progress (resumable)
//       snapshots/<commit>/<file>       relative symlink to ../../blobs/<etag>
//       .no_exist/<commit>/<file>       empty marker: the file does not exist at that commit
import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// POSIX rename(2): atomic replacement within one file system.
private func systemRename(_ source: String, _ destination: String) -> Int32 {
    rename(source, destination)
}

/// One hub cache folder and the operations on it.
///
/// Guarantees: every path it produces stays inside `root` (file names with `..` or a leading `/` are
/// refused); refs and blobs are installed by atomic rename, so readers never see partial files.
public struct HubCache: Sendable {
    /// The cache root (the folder holding `models--ORG--NAME`).
    public let root: URL

    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    /// `models--ORG--NAME` for repository `ORG/NAME` (huggingface_hub `repo_folder_name`).
    public static func repoFolderName(repoID: String) -> String {
        (["models"] + repoID.split(separator: "/").map(String.init)).joined(separator: "--")
    }

    public func repoFolder(_ repoID: String) -> URL {
        root.appendingPathComponent(HubCache.repoFolderName(repoID: repoID), isDirectory: true)
    }

    public func snapshotFolder(_ repoID: String, commit: String) -> URL {
        repoFolder(repoID).appendingPathComponent("snapshots", isDirectory: true)
            .appendingPathComponent(commit, isDirectory: true)
    }

    public func blobURL(_ repoID: String, etag: String) -> URL {
        repoFolder(repoID).appendingPathComponent("blobs", isDirectory: true).appendingPathComponent(etag)
    }

    func incompleteURL(_ repoID: String, etag: String) -> URL {
        repoFolder(repoID).appendingPathComponent("blobs", isDirectory: true)
            .appendingPathComponent(etag + ".incomplete")
    }

    func lockURL(_ repoID: String, etag: String) -> URL {
        root.appendingPathComponent(".locks", isDirectory: true)
            .appendingPathComponent(HubCache.repoFolderName(repoID: repoID), isDirectory: true)
            .appendingPathComponent(etag + ".lock")
    }

    func noExistMarker(_ repoID: String, commit: String, file: String) -> URL {
        repoFolder(repoID).appendingPathComponent(".no_exist", isDirectory: true)
            .appendingPathComponent(commit, isDirectory: true).appendingPathComponent(file)
    }

    /// Whether `text` is a full 40-hex commit hash (huggingface_hub REGEX_COMMIT_HASH).
    public static func isCommitHash(_ text: String) -> Bool { isLowerHex(text, count: 40) }

    /// Whether an etag is a sha256 (so an LFS file whose contents can be verified).
    public static func isSHA256(_ text: String) -> Bool { isLowerHex(text, count: 64) }

    static func isLowerHex(_ text: String, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// Refuses names that could escape the snapshot folder.
    static func validate(fileName: String) throws {
        let parts = fileName.split(separator: "/", omittingEmptySubsequences: false)
        if fileName.isEmpty || fileName.hasPrefix("/") || parts.contains(where: { $0 == ".." || $0 == "." || $0.isEmpty }) {
            throw ModelHubError.unsafeFileName(fileName)
        }
    }

    /// The commit `revision` stands for: itself when it is a commit hash, else the content of `refs/<revision>`.
    public func commit(_ repoID: String, revision: String) -> String? {
        if HubCache.isCommitHash(revision) { return revision }
        guard !revision.contains(".."), !revision.hasPrefix("/") else { return nil }
        let refURL = repoFolder(repoID).appendingPathComponent("refs").appendingPathComponent(revision)
        guard let data = FileManager.default.contents(atPath: refURL.path),
            let text = String(data: data, encoding: .utf8)
        else { return nil }
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return commit.isEmpty ? nil : commit
    }

    /// Records that `revision` points at `commit` (no-op when `revision` is the commit itself), atomically.
    public func writeRef(_ repoID: String, revision: String, commit: String) throws {
        guard revision != commit else { return }
        guard !revision.contains(".."), !revision.hasPrefix("/") else { throw ModelHubError.unsafeFileName(revision) }
        let refURL = repoFolder(repoID).appendingPathComponent("refs").appendingPathComponent(revision)
        if self.commit(repoID, revision: revision) == commit { return }
        try HubCache.createDirectory(refURL.deletingLastPathComponent())
        let temporary = refURL.deletingLastPathComponent()
            .appendingPathComponent(".\(refURL.lastPathComponent).\(UUID().uuidString.prefix(8)).tmp")
        do {
            try Data(commit.utf8).write(to: temporary)
        } catch {
            throw ModelHubError.fileSystem(path: temporary.path, operation: "write", reason: "\(error)")
        }
        try HubCache.rename(temporary, to: refURL)
    }

    /// The snapshot entry for `file`, if it exists and (when a symlink) its target exists.
    public func snapshotFile(_ repoID: String, commit: String, file: String) -> URL? {
        let url = snapshotFolder(repoID, commit: commit).appendingPathComponent(file)
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    /// Points `snapshots/<commit>/<file>` at `blobs/<etag>` with a relative symlink, replacing any old entry.
    public func link(_ repoID: String, commit: String, file: String, etag: String) throws {
        try HubCache.validate(fileName: file)
        let pointer = snapshotFolder(repoID, commit: commit).appendingPathComponent(file)
        try HubCache.createDirectory(pointer.deletingLastPathComponent())
        // From snapshots/<commit>/<dirs...>/ back to the repo folder, then into blobs/.
        let depth = 2 + file.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth) + "blobs/" + etag
        unlink(pointer.path)
        do {
            try FileManager.default.createSymbolicLink(atPath: pointer.path, withDestinationPath: target)
        } catch {
            throw ModelHubError.fileSystem(path: pointer.path, operation: "create symlink", reason: "\(error)")
        }
    }

    /// The etag a snapshot entry links to (the blob's name), or nil for a plain file or a broken link.
    public func linkedEtag(_ url: URL) -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: url.path) else { return nil }
        let resolved = URL(fileURLWithPath: target, relativeTo: url.deletingLastPathComponent()).standardizedFileURL
        guard resolved.deletingLastPathComponent().lastPathComponent == "blobs",
            FileManager.default.fileExists(atPath: resolved.path)
        else { return nil }
        return resolved.lastPathComponent
    }

    func markAbsent(_ repoID: String, commit: String, file: String) {
        guard (try? HubCache.validate(fileName: file)) != nil else { return }
        let marker = noExistMarker(repoID, commit: commit, file: file)
        try? HubCache.createDirectory(marker.deletingLastPathComponent())
        _ = FileManager.default.createFile(atPath: marker.path, contents: Data())
    }

    func isMarkedAbsent(_ repoID: String, commit: String, file: String) -> Bool {
        FileManager.default.fileExists(atPath: noExistMarker(repoID, commit: commit, file: file).path)
    }

    // MARK: - File helpers

    static func createDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw ModelHubError.fileSystem(path: url.path, operation: "create folder", reason: "\(error)")
        }
    }

    static func rename(_ source: URL, to destination: URL) throws {
        if systemRename(source.path, destination.path) != 0 {
            let reason = String(cString: strerror(errno))
            throw ModelHubError.fileSystem(path: destination.path, operation: "rename into", reason: reason)
        }
    }

    static func fileSize(_ url: URL) -> Int64? {
        var info = stat()
        guard stat(url.path, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }
}

/// Hashes of file contents, streamed so large weights files never sit in memory.
public enum FileDigest {
    /// Lowercase hex sha256 of the file at `url` (symlinks followed).
    public static func sha256(of url: URL) throws -> String {
        var hasher = SHA256()
        try forEachChunk(of: url) { hasher.update(bufferPointer: $0) }
        return hex(hasher.finalize())
    }

    /// The git blob id (sha1 of "blob <size>\0" + contents), which the Hub uses as ETag for non-LFS files.
    public static func gitBlobSHA1(of url: URL) throws -> String {
        guard let size = HubCache.fileSize(url) else {
            throw ModelHubError.fileSystem(path: url.path, operation: "read", reason: "no such file")
        }
        var hasher = Insecure.SHA1()
        hasher.update(data: Data("blob \(size)\0".utf8))
        try forEachChunk(of: url) { hasher.update(bufferPointer: $0) }
        return hex(hasher.finalize())
    }

    static func hex<D: Digest>(_ digest: D) -> String {
        digest.map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }

    /// Calls `body` with successive chunks of the file's bytes.
    static func forEachChunk(of url: URL, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let descriptor = open(url.path, O_RDONLY)
        guard descriptor >= 0 else {
            throw ModelHubError.fileSystem(path: url.path, operation: "open", reason: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        let capacity = 4 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(descriptor, buffer.baseAddress, capacity)
            if count < 0 {
                if errno == EINTR { continue }
                throw ModelHubError.fileSystem(path: url.path, operation: "read", reason: String(cString: strerror(errno)))
            }
            if count == 0 { break }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }
}
