import PosterSimCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The persisted, memory-mappable form of a `StoreSnapshot` (layout: `IndexFileHeader`), so that opening a large
/// store maps its matrices instead of decoding every vector row.
///
/// Guarantees:
/// - `write` is atomic: it writes a temporary file beside the target, fsyncs it, renames it over the target and fsyncs
///   the directory. A process killed at any moment leaves the previous file or the new one, never a partial one under
///   the target's name (an abandoned temporary is removed by `removeAbandonedTemporaries`).
/// - `load` returns a snapshot only when the file stands for the database described by the expected stamp (store id,
///   revision, schema, spaces and their models) and its lengths, header, magic and every section except the matrices
///   match their checksums; otherwise it throws an `IndexFileError` and never crashes. It reads the matrices not at
///   all: it returns them mapped, with an `IndexFileVerification` that checks them chunk by chunk afterwards (the
///   store runs it in the background, `SQLiteVectorStore+IndexFile.swift`). So a changed byte in a matrix is
///   reported by that verification, not by `load`; until it has run, queries may read the changed row. Opening thus
///   costs the small sections (tens of bytes per row), not the vectors.
/// - The snapshot `load` returns answers exactly as one decoded from the database rows at that revision, provided
///   its verification passes: same rows in the same order, same packed fields, interner and list bounds.
/// - `verify` checks everything, matrices included, reading the file once.
/// - The matrices of a loaded snapshot are read-only views of the mapping (see `MatrixStorage`); ids, norms, packed
///   fields and bounds are copied out (a few bytes per row against `4 * dimension`).
enum SpaceIndexFile {
    /// Writes `snapshot`, which reflects the database as `stamp` describes it, to `path`, unless `path` already holds
    /// a newer revision of the same database.
    static func write(
        _ snapshot: StoreSnapshot, stamp: IndexFileStamp, to path: String,
        chunkBytes: Int = IndexFileHeader.defaultChunkBytes
    ) throws {
        try requireLittleEndianHost()
        let temp = "\(path)\(temporaryInfix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IndexFileError.unwritable("\(temp): \(String(cString: strerror(errno)))") }
        var isOpen = true
        do {
            var body = BodyWriter(fd: fd, chunkBytes: chunkBytes)
            var header = IndexFileHeader(
                format: IndexFileHeader.currentFormat, storeID: stamp.storeID, revision: stamp.revision,
                schema: stamp.schema, spaces: [], interner: .init(offset: 0, length: 0, checksums: []), bodyLength: 0,
                chunkBytes: chunkBytes)
            try body.append(IndexFileHeader.magic)
            for name in snapshot.spaces.keys.sorted() {
                header.spaces.append(
                    try writeSpace(snapshot.spaces[name]!, bounds: snapshot.neighbourBounds[name] ?? [:], to: &body))
            }
            let interner: [UInt8]
            do { interner = Array(try JSONEncoder().encode(snapshot.interner)) } catch {
                throw IndexFileError.unwritable("interner: \(error)")
            }
            header.interner = try body.section(alignment: 1) { try $0.append(interner) }
            try body.flush()
            header.bodyLength = body.offset
            let json: [UInt8]
            do { json = Array(try JSONEncoder().encode(header)) } catch { throw IndexFileError.unwritable("header: \(error)") }
            var trailer = [UInt8](repeating: 0, count: IndexFileHeader.trailerLength)
            trailer.withUnsafeMutableBytes { t in
                t.storeBytes(of: UInt64(json.count).littleEndian, toByteOffset: 0, as: UInt64.self)
                json.withUnsafeBytes { t.storeBytes(of: IndexChecksum.of($0).littleEndian, toByteOffset: 8, as: UInt64.self) }
            }
            trailer.replaceSubrange(16..<24, with: IndexFileHeader.magic)
            try (json + trailer).withUnsafeBytes { raw in try IndexFileIO.writeAll(fd, raw) }
            guard fsync(fd) == 0 else { throw IndexFileError.unwritable("fsync: \(String(cString: strerror(errno)))") }
            close(fd)
            isOpen = false
            // A newer file of the same database, written meanwhile by another writer (a sync finishing while a server
            // rewrites the file it opened with), stays: ours would only make it stale.
            if let existing = try? readHeader(path: path), existing.storeID == stamp.storeID,
                existing.revision > stamp.revision
            {
                unlink(temp)
                return
            }
            guard rename(temp, path) == 0 else {
                throw IndexFileError.unwritable("rename to \(path): \(String(cString: strerror(errno)))")
            }
        } catch {
            if isOpen { close(fd) }
            unlink(temp)
            throw error
        }
        // Make the rename itself durable.
        let dir = open(directory(of: path), O_RDONLY | O_CLOEXEC)
        if dir >= 0 {
            fsync(dir)
            close(dir)
        }
    }

    /// The header of the file at `path`, checked for integrity (not the body): whether it is current is then a
    /// comparison of stamps.
    static func readHeader(path: String) throws -> IndexFileHeader {
        let fd = try openForReading(path)
        defer { close(fd) }
        return try readHeader(fd: fd, size: try IndexFileIO.size(fd))
    }

    /// The snapshot stored at `path`, provided the file stands for the database `expected` describes and all but its
    /// matrices check out; and the verification of the matrices, still to run.
    static func load(path: String, expecting expected: IndexFileStamp) throws
        -> (snapshot: StoreSnapshot, verification: IndexFileVerification)
    {
        let fd = try openForReading(path)
        defer { close(fd) }
        let (header, size) = try checkedHeader(fd: fd, expecting: expected)
        let file = try MappedFile(fd: fd, length: size)
        // Through the mapping: the snapshot copies these sections out of it next, so the pages are read once.
        guard Array(UnsafeRawBufferPointer(start: file.base, count: 8)) == IndexFileHeader.magic else {
            throw IndexFileError.corrupt("bad magic")
        }
        for chunk in smallChunks(header) {
            try chunk.check(IndexChecksum.of(UnsafeRawBufferPointer(start: file.base + chunk.range.lowerBound, count: chunk.range.count)))
        }
        return (try snapshot(from: file, header: header), IndexFileVerification(file: file, chunks: matrixChunks(header)))
    }

    /// Throws unless the file at `path` is whole and stands for the database `expected` describes: everything `load`
    /// and its verification check, without mapping (reads the whole file once).
    static func verify(path: String, expecting expected: IndexFileStamp) throws {
        let fd = try openForReading(path)
        defer { close(fd) }
        let (header, _) = try checkedHeader(fd: fd, expecting: expected)
        guard try IndexFileIO.read(fd, count: 8, at: 0) == IndexFileHeader.magic else { throw IndexFileError.corrupt("bad magic") }
        try IndexFileVerification.check(smallChunks(header) + matrixChunks(header), fd: fd) { true }
    }

    private static func checkedHeader(fd: Int32, expecting expected: IndexFileStamp) throws -> (IndexFileHeader, Int) {
        try requireLittleEndianHost()
        let size = try IndexFileIO.size(fd)
        let header = try readHeader(fd: fd, size: size)
        try header.check(against: expected)
        try header.checkLayout()
        return (header, size)
    }

    /// The checksum chunks of every section but the matrices.
    private static func smallChunks(_ header: IndexFileHeader) -> [IndexFileVerification.Chunk] {
        header.spaces.flatMap { space in
            space.smallSections.flatMap { IndexFileVerification.chunks(of: $0.section, "\($0.what) of '\(space.key.name)'", header.chunkBytes) }
        } + IndexFileVerification.chunks(of: header.interner, "interner", header.chunkBytes)
    }

    private static func matrixChunks(_ header: IndexFileHeader) -> [IndexFileVerification.Chunk] {
        header.spaces.flatMap { IndexFileVerification.chunks(of: $0.matrix, "matrix of '\($0.key.name)'", header.chunkBytes) }
    }

    /// Removes temporaries that writers of `path` left when they were killed (their process no longer exists).
    static func removeAbandonedTemporaries(of path: String) {
        let dir = directory(of: path)
        let prefix = (path as NSString).lastPathComponent + temporaryInfix
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for name in names where name.hasPrefix(prefix) {
            guard let pid = name.dropFirst(prefix.count).split(separator: "-").first.flatMap({ Int32($0) }) else {
                continue
            }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink((dir as NSString).appendingPathComponent(name)) }
        }
    }

    // MARK: Writing

    private static let temporaryInfix = ".tmp-"

    private static func writeSpace(
        _ index: SpaceIndex, bounds: [MovieID: NeighbourBound], to body: inout BodyWriter
    ) throws -> IndexFileHeader.Space {
        let dim = index.space.dimension
        // Live rows in ascending id order: the order a load from the database produces.
        let order = (0..<index.rowCount).filter { index.rowIDs[$0] >= 0 }.sorted { index.rowIDs[$0] < index.rowIDs[$1] }
        let matrix = try body.section(alignment: IndexFileHeader.matrixAlignment) { body in
            try withExtendedLifetime(index.storage) {
                for r in order { try body.append(UnsafeRawBufferPointer(start: index.storage.row(r), count: dim * 4)) }
            }
        }
        let ids = try body.section { order.map { index.rowIDs[$0] }.withUnsafeBytes { Array($0) } }
        let norms = try body.section {
            index.space.metric == .cosine ? order.map { index.inverseNorms[$0] }.withUnsafeBytes { Array($0) } : []
        }
        let meta = try body.section {
            var bytes = [UInt8](repeating: 0, count: order.count * IndexFileHeader.metaRecordLength)
            bytes.withUnsafeMutableBytes { raw in
                for (i, r) in order.enumerated() {
                    IndexRecords.store(index.rowMeta[r], to: raw.baseAddress! + i * IndexFileHeader.metaRecordLength)
                }
            }
            return bytes
        }
        let boundSection = try body.section {
            let owners = bounds.keys.sorted()
            var bytes = [UInt8](repeating: 0, count: owners.count * IndexFileHeader.boundRecordLength)
            bytes.withUnsafeMutableBytes { raw in
                for (i, owner) in owners.enumerated() {
                    IndexRecords.store(
                        owner: owner, bounds[owner]!, to: raw.baseAddress! + i * IndexFileHeader.boundRecordLength)
                }
            }
            return bytes
        }
        let key = IndexFileHeader.SpaceKey(
            name: index.space.name, dimension: dim, metric: index.space.metric.rawValue,
            identity: index.identity.storedForm)
        return IndexFileHeader.Space(
            key: key, rows: order.count, matrix: matrix, ids: ids, inverseNorms: norms, meta: meta, bounds: boundSection)
    }

    /// Appends the body through a large buffer, keeping its length and the checksums of the section being written.
    private struct BodyWriter {
        static let bufferSize = 8 << 20
        let fd: Int32
        let chunkBytes: Int
        var buffer: [UInt8] = []
        var offset = 0
        /// The checksums of the open section (nil between sections: magic and padding).
        var checksums: ChunkedChecksum?

        init(fd: Int32, chunkBytes: Int) {
            self.fd = fd
            self.chunkBytes = chunkBytes
            buffer.reserveCapacity(Self.bufferSize)
        }

        mutating func append(_ bytes: UnsafeRawBufferPointer) throws {
            checksums?.update(bytes)
            buffer.append(contentsOf: bytes)
            offset += bytes.count
            if buffer.count >= Self.bufferSize { try flush() }
        }

        mutating func append(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { raw in try append(raw) }
        }

        mutating func pad(to alignment: Int) throws {
            let gap = (alignment - offset % alignment) % alignment
            if gap > 0 { try append([UInt8](repeating: 0, count: gap)) }
        }

        /// Appends what `write` appends as one section starting at a multiple of `alignment`; returns where it went
        /// and its checksums.
        mutating func section(alignment: Int, _ write: (inout BodyWriter) throws -> Void) throws -> IndexFileHeader.Section {
            try pad(to: alignment)
            let start = offset
            checksums = ChunkedChecksum(chunkBytes: chunkBytes)
            try write(&self)
            let values = checksums?.values() ?? []
            checksums = nil
            return .init(offset: start, length: offset - start, checksums: values)
        }

        /// Appends `bytes()` as a 64-aligned section.
        mutating func section(_ bytes: () -> [UInt8]) throws -> IndexFileHeader.Section {
            try section(alignment: IndexFileHeader.sectionAlignment) { try $0.append(bytes()) }
        }

        mutating func flush() throws {
            try buffer.withUnsafeBytes { raw in try IndexFileIO.writeAll(fd, raw) }
            buffer.removeAll(keepingCapacity: true)
        }
    }

    // MARK: Reading

    private static func openForReading(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw IndexFileError.missing }
            throw IndexFileError.unreadable("\(path): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    private static func readHeader(fd: Int32, size: Int) throws -> IndexFileHeader {
        let minimum = IndexFileHeader.magic.count + IndexFileHeader.trailerLength
        guard size >= minimum else { throw IndexFileError.corrupt("\(size) bytes, too short") }
        let trailer = try IndexFileIO.read(fd, count: IndexFileHeader.trailerLength, at: size - IndexFileHeader.trailerLength)
        guard Array(trailer[16..<24]) == IndexFileHeader.magic else { throw IndexFileError.corrupt("no trailer (truncated?)") }
        let (length, sum) = trailer.withUnsafeBytes {
            (UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
             UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
        guard length <= UInt64(size - minimum), length <= 64 << 20 else { throw IndexFileError.corrupt("header length \(length)") }
        let headerStart = size - IndexFileHeader.trailerLength - Int(length)
        let json = try IndexFileIO.read(fd, count: Int(length), at: headerStart)
        guard json.withUnsafeBytes({ IndexChecksum.of($0) }) == sum else { throw IndexFileError.corrupt("header checksum") }
        // The format first: an older file has other fields, and is refused as such rather than as damaged.
        struct Format: Decodable { var format: Int }
        if let format = try? JSONDecoder().decode(Format.self, from: Data(json)).format,
            format != IndexFileHeader.currentFormat
        {
            throw IndexFileError.unsupportedFormat(format)
        }
        let header: IndexFileHeader
        do { header = try JSONDecoder().decode(IndexFileHeader.self, from: Data(json)) } catch {
            throw IndexFileError.corrupt("header: \(error)")
        }
        guard header.bodyLength == headerStart else {
            throw IndexFileError.corrupt("body of \(header.bodyLength) bytes, the file holds \(headerStart)")
        }
        return header
    }

    private static func snapshot(from file: MappedFile, header: IndexFileHeader) throws -> StoreSnapshot {
        let base = file.base
        let interner: MetaInterner
        do {
            interner = try JSONDecoder().decode(
                MetaInterner.self, from: Data(bytes: base + header.interner.offset, count: header.interner.length))
        } catch { throw IndexFileError.corrupt("interner: \(error)") }
        var spaces: [String: SpaceIndex] = [:]
        var allBounds: [String: [MovieID: NeighbourBound]] = [:]
        for s in header.spaces {
            guard let metric = DistanceMetric(rawValue: s.key.metric),
                let identity = ModelIdentity(storedForm: s.key.identity)
            else { throw IndexFileError.corrupt("space '\(s.key.name)' has an unreadable model") }
            let space = VectorSpace(name: s.key.name, dimension: s.key.dimension, metric: metric)
            let rows = s.rows
            let ids = Array(UnsafeBufferPointer(
                start: (base + s.ids.offset).assumingMemoryBound(to: Int64.self), count: rows))
            var rowOf: [MovieID: Int] = [:]
            rowOf.reserveCapacity(rows)
            for (r, id) in ids.enumerated() {
                guard id >= 0, r == 0 || id > ids[r - 1] else { throw IndexFileError.corrupt("ids of '\(space.name)' out of order") }
                rowOf[MovieID(id)] = r
            }
            let norms = Array(UnsafeBufferPointer(
                start: (base + s.inverseNorms.offset).assumingMemoryBound(to: Float.self), count: s.inverseNorms.length / 4))
            let metas = (0..<rows).map { IndexRecords.loadMeta(base + s.meta.offset + $0 * IndexFileHeader.metaRecordLength) }
            var bounds: [MovieID: NeighbourBound] = [:]
            let boundCount = s.bounds.length / IndexFileHeader.boundRecordLength
            bounds.reserveCapacity(boundCount)
            for i in 0..<boundCount {
                let (owner, bound) = IndexRecords.loadBound(base + s.bounds.offset + i * IndexFileHeader.boundRecordLength)
                bounds[owner] = bound
            }
            let storage = rows > 0
                ? try MatrixStorage(
                    mapping: file, byteOffset: s.matrix.offset, rows: rows, dimension: space.dimension,
                    tailRows: max(SpaceIndex.minimumTail, rows / 64))
                : MatrixStorage(dimension: space.dimension, capacityRows: 64)
            spaces[space.name] = SpaceIndex(
                space: space, identity: identity, storage: storage, rowCount: rows, rowIDs: ids, inverseNorms: norms,
                rowMeta: metas, rowOfMovie: rowOf)
            allBounds[space.name] = bounds
        }
        return StoreSnapshot(spaces: spaces, interner: interner, neighbourBounds: allBounds)
    }

    private static func requireLittleEndianHost() throws {
        #if _endian(big)
        throw IndexFileError.unsupportedFormat(IndexFileHeader.currentFormat)
        #endif
    }

    private static func directory(of path: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        return dir.isEmpty ? "." : dir
    }
}

/// The checksum chunks of a mapped index file that `SpaceIndexFile.load` did not check: its matrices. Runs once, on
/// any thread; reads with `pread` through the mapping's own descriptor, so it reads the file that was mapped even if
/// another has been renamed over its path, and adds page-cache pages (which the mapped queries then find), not pages
/// of the process.
final class IndexFileVerification: Sendable {
    struct Chunk: Sendable {
        /// What the chunk belongs to and which it is, for the error.
        var what: String
        var range: Range<Int>
        var checksum: String

        func check(_ actual: UInt64) throws {
            guard IndexChecksum.hex(actual) == checksum else {
                throw IndexFileError.corrupt("\(what): checksum of bytes \(range.lowerBound)..<\(range.upperBound) differs")
            }
        }
    }

    let file: MappedFile
    let chunks: [Chunk]

    init(file: MappedFile, chunks: [Chunk]) {
        self.file = file
        self.chunks = chunks
    }

    /// The bytes it reads.
    var bytes: Int { chunks.reduce(0) { $0 + $1.range.count } }

    /// Reads and checks every chunk while `keepGoing()` says so (asked before each chunk); throws
    /// `IndexFileError.corrupt` naming the first chunk that differs. Returns false when stopped early.
    @discardableResult
    func run(keepGoing: () -> Bool) throws -> Bool {
        try Self.check(chunks, fd: file.fd, keepGoing: keepGoing)
    }

    static func chunks(of section: IndexFileHeader.Section, _ what: String, _ chunkBytes: Int) -> [Chunk] {
        let ranges = section.chunks(of: chunkBytes)
        return zip(ranges, section.checksums).enumerated().map { i, pair in
            Chunk(what: "\(what), chunk \(i + 1) of \(ranges.count)", range: pair.0, checksum: pair.1)
        }
    }

    /// Bytes read at a time: a chunk (32 MiB) is read in pieces, so the check holds 1 MiB of memory, not a chunk.
    static let readBytes = 1 << 20

    @discardableResult
    static func check(_ chunks: [Chunk], fd: Int32, keepGoing: () -> Bool) throws -> Bool {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: readBytes, alignment: 64)
        defer { buffer.deallocate() }
        for chunk in chunks {
            guard keepGoing() else { return false }
            var sum = IndexChecksum()
            for start in stride(from: chunk.range.lowerBound, to: chunk.range.upperBound, by: readBytes) {
                let n = min(readBytes, chunk.range.upperBound - start)
                try IndexFileIO.read(fd, into: buffer, count: n, at: start)
                sum.update(UnsafeRawBufferPointer(start: buffer, count: n))
            }
            try chunk.check(sum.value)
        }
        return true
    }
}
