import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A poster path or size that cannot name a file in the cache.
public enum PosterPathError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not `/name` with a plain file name.
    case invalidPosterPath(String)
    /// Not a plain folder name (`w500`, `original`).
    case invalidSize(String)

    public var description: String {
        switch self {
        case .invalidPosterPath(let path): return "invalid poster path '\(path)' (expected '/name.ext')"
        case .invalidSize(let size): return "invalid poster size '\(size)'"
        }
    }
}

/// Downloaded posters on disk, by size and TMDB path: `{directory}/{size}/{file name}` (e.g.
/// `.cache/posters/original/abc.jpg`).
///
/// Guarantees:
/// - A cached file is always a complete download: bytes are written to a temporary file in the same folder and
///   renamed into place (rename is atomic within a file system), so a process killed at any moment leaves either no
///   file or the whole file, never a prefix. (Leftover `.tmp-` files from a kill are never read.)
/// - Only plain file names are used: a poster path must be `/name` with letters, digits, `.`, `_`, `-`, so a path
///   from a JSON file can never point outside the cache.
/// - Concurrent writers of the same poster are harmless: the last rename wins and both wrote the same bytes.
public struct PosterCache: Sendable {
    public static let defaultDirectory = ".cache/posters"
    /// Where TMDB serves posters, `{base}/{size}{poster_path}`: ingest downloads from it and the server redirects to
    /// it for posters not in the cache.
    public static let tmdbImageBaseURL = "https://image.tmdb.org/t/p"

    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    /// Where `posterPath` at `size` is (or would be) cached.
    public func fileURL(posterPath: String, size: String) throws(PosterPathError) -> URL {
        guard Self.isSafeComponent(size) else { throw .invalidSize(size) }
        let name = try Self.fileName(of: posterPath)
        return directory.appendingPathComponent(size, isDirectory: true).appendingPathComponent(name)
    }

    /// The cached bytes, or nil when not cached (or unreadable).
    public func read(posterPath: String, size: String) -> [UInt8]? {
        guard let url = try? fileURL(posterPath: posterPath, size: size),
            let data = FileManager.default.contents(atPath: url.path)
        else { return nil }
        return [UInt8](data)
    }

    /// Stores `bytes` atomically (temporary file + rename).
    public func write(_ bytes: [UInt8], posterPath: String, size: String) throws {
        let url = try fileURL(posterPath: posterPath, size: size)
        let folder = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: temporary.path, contents: Data(bytes)) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        if rename(temporary.path, url.path) != 0 {
            let code = errno
            try? FileManager.default.removeItem(at: temporary)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }

    /// Removes a cached poster (used when cached bytes do not decode, so the next run downloads again).
    public func remove(posterPath: String, size: String) {
        guard let url = try? fileURL(posterPath: posterPath, size: size) else { return }
        try? FileManager.default.removeItem(at: url)
    }

    /// The file name of a TMDB poster path (`/abc.jpg` → `abc.jpg`), or `invalidPosterPath`.
    public static func fileName(of posterPath: String) throws(PosterPathError) -> String {
        guard posterPath.hasPrefix("/") else { throw .invalidPosterPath(posterPath) }
        let name = String(posterPath.dropFirst())
        guard isSafeComponent(name) else { throw .invalidPosterPath(posterPath) }
        return name
    }

    /// Non-empty, at most 255 bytes, only `[A-Za-z0-9._-]`, not starting with a dot (no `.`/`..`, no hidden files).
    public static func isSafeComponent(_ s: String) -> Bool {
        let bytes = Array(s.utf8)
        guard !bytes.isEmpty, bytes.count <= 255, bytes[0] != UInt8(ascii: ".") else { return false }
        return bytes.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E
                || b == 0x5F || b == 0x2D
        }
    }
}
