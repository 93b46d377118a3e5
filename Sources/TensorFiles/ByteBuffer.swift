// Read-only byte buffers: a memory-mapped file or an owned allocation, plus bounds-checked views into them.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Errors raised while opening or mapping a file.
public enum FileAccessError: Error, CustomStringConvertible, Sendable, Equatable {
    case cannotOpen(path: String, errno: Int32)
    case cannotStat(path: String, errno: Int32)
    case notARegularFile(path: String)
    case cannotMap(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let code): return "cannot open \(path): \(String(cString: strerror(code)))"
        case .cannotStat(let path, let code): return "cannot stat \(path): \(String(cString: strerror(code)))"
        case .notARegularFile(let path): return "\(path) is not a regular file"
        case .cannotMap(let path, let code): return "cannot memory-map \(path): \(String(cString: strerror(code)))"
        }
    }
}

/// An immutable block of bytes: either a read-only, private memory mapping of a file (`mmap`) or an owned heap
/// allocation.
///
/// Guarantees: the bytes never change and the base address stays valid and fixed for the buffer's whole lifetime,
/// so views (`ByteView`, mapped `FloatTensor`s) that keep a reference to the buffer may point into it without copying.
/// A mapping's base address is page aligned; an owned allocation is 64-byte aligned. The file is unmapped when the
/// last reference goes away. (A file truncated by another process while mapped can still raise SIGBUS; that is a
/// property of `mmap` we accept for weights that must not be copied.)
public final class ByteBuffer: @unchecked Sendable {
    /// Start of the bytes; `nil` only when `count == 0`.
    let base: UnsafeRawPointer?
    /// Number of bytes.
    public let count: Int
    private let isMapped: Bool

    /// Maps the file at `url` read-only. An empty file gives an empty buffer.
    public init(mapping url: URL) throws {
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileAccessError.cannotOpen(path: path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileAccessError.cannotStat(path: path, errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw FileAccessError.notARegularFile(path: path) }
        let size = Int(info.st_size)
        if size == 0 {
            base = nil
            count = 0
            isMapped = false
            return
        }
        guard let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), pointer != MAP_FAILED else {
            throw FileAccessError.cannotMap(path: path, errno: errno)
        }
        base = UnsafeRawPointer(pointer)
        count = size
        isMapped = true
    }

    /// Copies `bytes` into a new owned, 64-byte aligned allocation.
    public convenience init<C: Collection>(copying bytes: C) where C.Element == UInt8 {
        self.init(owningCount: bytes.count) { destination in
            // Contiguous sources (arrays, Data) take the memcpy path.
            let copied: Void? = bytes.withContiguousStorageIfAvailable { source in
                destination.copyMemory(from: UnsafeRawBufferPointer(source))
            }
            if copied == nil { destination.copyBytes(from: bytes) }
        }
    }

    /// Allocates `count` bytes (64-byte aligned) and lets `fill` write all of them.
    init(owningCount: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        if owningCount == 0 {
            base = nil
            count = 0
            isMapped = false
            return
        }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: owningCount, alignment: 64)
        memset(memory, 0, owningCount)
        do {
            try fill(UnsafeMutableRawBufferPointer(start: memory, count: owningCount))
        } catch {
            memory.deallocate()
            throw error
        }
        base = UnsafeRawPointer(memory)
        count = owningCount
        isMapped = false
    }

    deinit {
        guard let base else { return }
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        } else {
            base.deallocate()
        }
    }

    /// True when the bytes are a file mapping rather than a heap allocation.
    public var isMemoryMapped: Bool { isMapped }

    /// Drops the mapping's pages from this process's resident set (`madvise(MADV_DONTNEED)`); a no-op for an owned
    /// allocation. The bytes do not change: the mapping is read-only and private, so a later access reads the same
    /// pages back from the file (usually still in the page cache). Models call this once loading has copied what it
    /// needs (packed or batch-norm-folded weights), so the file's pages and our copies are not both counted.
    public func dropResidentPages() {
        guard isMapped, let base else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base), count, MADV_DONTNEED)
    }

    /// A view of all the bytes.
    public var view: ByteView { ByteView(buffer: self, offset: 0, count: count) }

    /// Calls `body` with the raw bytes. The pointer must not escape `body` unless `self` is kept alive.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }
}

/// A bounds-checked window `[offset, offset + count)` into a `ByteBuffer`. Holding a view keeps the buffer (and its
/// mapping) alive. Creating a sub-view never copies.
public struct ByteView: Sendable {
    public let buffer: ByteBuffer
    public let offset: Int
    public let count: Int

    /// Internal: callers guarantee `0 <= offset`, `0 <= count`, `offset + count <= buffer.count`.
    init(buffer: ByteBuffer, offset: Int, count: Int) {
        precondition(offset >= 0 && count >= 0 && offset <= buffer.count && count <= buffer.count - offset)
        self.buffer = buffer
        self.offset = offset
        self.count = count
    }

    /// A view holding a fresh copy of `bytes`.
    public init<C: Collection>(copying bytes: C) where C.Element == UInt8 {
        let owned = ByteBuffer(copying: bytes)
        self.init(buffer: owned, offset: 0, count: owned.count)
    }

    /// The sub-range `[start, start + length)` of this view, or nil when it is out of bounds (overflow-safe).
    public func slice(_ start: Int, _ length: Int) -> ByteView? {
        guard start >= 0, length >= 0, start <= count, length <= count - start else { return nil }
        return ByteView(buffer: buffer, offset: offset + start, count: length)
    }

    /// Calls `body` with the viewed bytes (no copy).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        guard let base = buffer.base else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: base + offset, count: count))
    }

    /// A copy of the viewed bytes.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// The address of the first byte (nil when the buffer is empty); valid while `buffer` lives.
    var address: UnsafeRawPointer? { buffer.base.map { $0 + offset } }
}

/// Little-endian field reads on raw bytes; callers bounds-check before reading.
extension UnsafeRawBufferPointer {
    @inline(__always) func u16(at index: Int) -> UInt16 {
        UInt16(self[index]) | UInt16(self[index + 1]) << 8
    }
    @inline(__always) func u32(at index: Int) -> UInt32 {
        UInt32(self[index]) | UInt32(self[index + 1]) << 8 | UInt32(self[index + 2]) << 16 | UInt32(self[index + 3]) << 24
    }
    @inline(__always) func u64(at index: Int) -> UInt64 {
        UInt64(u32(at: index)) | UInt64(u32(at: index + 4)) << 32
    }
}
