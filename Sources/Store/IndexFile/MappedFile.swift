import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only (`PROT_READ`, `MAP_PRIVATE`), unmapped when the last reference goes.
///
/// Mapped pages count in the process's resident set once touched, like allocated memory; the difference is that they
/// are clean page-cache pages backed by the file: under memory pressure the kernel drops them and reads them back on
/// the next touch, instead of swapping (this machine has no swap) or failing. So a store larger than memory still
/// opens and answers, the rows queries never touch (a by-id query reads one row, its list comes from the database) are
/// never read from disk, and a restart finds the rows it used still in the page cache.
///
/// The index file is only ever replaced by renaming a new file over it, never rewritten in place, so a mapping stays
/// valid after a replacement or a deletion (the old file lives until unmapped). Truncating the file in place while a
/// process has it mapped would make that process fault on the lost pages: delete the file instead.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer
    let length: Int
    /// A descriptor of the mapped file, open as long as the mapping: the chunks not checked at open are read through
    /// it (`pread`, so checking them adds page-cache pages, not pages of this process), and it names the file that was
    /// mapped even after another file has been renamed over its path.
    let fd: Int32

    /// Maps `length` bytes (at least 1) of the open file `fd`, keeping a duplicate of the descriptor; the caller
    /// closes its own.
    init(fd: Int32, length: Int) throws {
        guard length > 0 else { throw IndexFileError.corrupt("empty file") }
        let own = dup(fd)
        guard own >= 0 else { throw IndexFileError.unreadable("dup: \(String(cString: strerror(errno)))") }
        guard let p = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            close(own)
            throw IndexFileError.unreadable("mmap: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
        self.length = length
        self.fd = own
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), length)
        close(fd)
    }

    /// Whether `path` still names the file this maps (same device and inode).
    func isStill(at path: String) -> Bool {
        var mine = stat()
        var theirs = stat()
        guard fstat(fd, &mine) == 0, stat(path, &theirs) == 0 else { return false }
        return mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino
    }
}

/// Blocking file I/O for the index file, with errors as `IndexFileError`.
enum IndexFileIO {
    /// Reads exactly `count` bytes at `offset` into `buffer`.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws {
        var done = 0
        while done < count {
            let n = pread(fd, buffer + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw IndexFileError.unreadable("read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw IndexFileError.corrupt("file ends at \(offset + done), expected \(offset + count) bytes") }
            done += n
        }
    }

    static func read(_ fd: Int32, count: Int, at offset: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { raw in
            if let p = raw.baseAddress { try read(fd, into: p, count: count, at: offset) }
        }
        return bytes
    }

    /// Writes all of `bytes`.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = write(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw IndexFileError.unwritable("write: \(String(cString: strerror(errno)))")
            }
            p += n
            left -= n
        }
    }

    static func size(_ fd: Int32) throws -> Int {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw IndexFileError.unreadable("stat: \(String(cString: strerror(errno)))") }
        return Int(st.st_size)
    }
}
