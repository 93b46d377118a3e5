import PosterSimCore
import Foundation

/// Why an index file was not used (then the store decodes its rows, as without one). Never fatal: every damage to the
/// file (truncated, bytes changed, another format or store) ends here, as a typed error.
public enum IndexFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// There is no index file.
    case missing
    /// The file could not be read (permissions, I/O error).
    case unreadable(String)
    /// The file could not be written.
    case unwritable(String)
    /// Truncated, changed bytes (checksum), or sections that do not fit together.
    case corrupt(String)
    /// Written by another version of the format.
    case unsupportedFormat(Int)
    /// Written for another database file.
    case otherStore
    /// Written at another revision of the store.
    case revisionMoved(file: UInt64, store: UInt64)
    /// The database schema (its migrations) differs.
    case schemaChanged
    /// A space was added or removed, or its model, dimension or metric differs.
    case spacesChanged(String)

    public var description: String {
        switch self {
        case .missing: return "no index file"
        case .unreadable(let m): return "index file unreadable: \(m)"
        case .unwritable(let m): return "index file not written: \(m)"
        case .corrupt(let m): return "index file corrupt: \(m)"
        case .unsupportedFormat(let v): return "index file format \(v), expected \(IndexFileHeader.currentFormat)"
        case .otherStore: return "index file belongs to another database"
        case .revisionMoved(let file, let store): return "index file is at revision \(file), the store at \(store)"
        case .schemaChanged: return "index file was written for another schema"
        case .spacesChanged(let m): return "index file spaces differ: \(m)"
        }
    }
}

/// What an index file must match to stand for the database: read from the database in the same read transaction as
/// its revision.
struct IndexFileStamp: Sendable, Equatable {
    /// The database's own random id (`store_instance`), so a file left beside a replaced database is not used.
    var storeID: String
    var revision: UInt64
    /// The applied migrations, sorted.
    var schema: [String]
    /// Every registered space with its current model identity.
    var spaces: [IndexFileHeader.SpaceKey]
}

/// The index file's layout:
///
///     "PSIMIDX1"                       8 bytes of magic
///     sections                          each space's matrix (4096-aligned), ids, inverse norms, packed rows and list
///                                       bounds (64-aligned), then the interner (JSON); all little-endian
///     header                            JSON (`IndexFileHeader`), with the checksum table
///     trailer                           header length (UInt64), header checksum (UInt64), "PSIMIDX1"
///
/// Integrity is checked piece by piece, so that opening a store does not have to read its vectors (26.6 GB at a
/// million films in the three spaces): the trailer holds the header's checksum, and the header holds the checksum
/// table, one checksum per `chunkBytes` of every section (`Section.checksums`). A truncated file (no trailer, or
/// lengths that do not add up) and a changed byte in any section are detected: the header, the magic and every small
/// section (ids, norms, packed rows, bounds, interner; tens of bytes per row) when the file is opened, the matrices
/// chunk by chunk afterwards, without delaying readiness (see `SpaceIndexFile` and `IndexFileVerification`). The
/// alignment padding between sections is covered by no checksum: nothing reads it.
/// Rows are written in ascending movie id order, live rows only, as the database load produces them.
struct IndexFileHeader: Codable, Equatable {
    /// 1: one checksum over the whole body, read at every open. 2: the checksum table. A file of another format is
    /// not read (`IndexFileError.unsupportedFormat`): the store decodes its rows and writes the current format.
    static let currentFormat = 2
    static let magic = Array("PSIMIDX1".utf8)
    static let trailerLength = 24
    static let matrixAlignment = 4096
    static let sectionAlignment = 64
    static let metaRecordLength = 20
    static let boundRecordLength = 32
    /// The checksum chunk written by default: 32 MiB is 830 entries for the 26.6 GB of a million films (about 15 KB
    /// of header), and one chunk is read and checked in a few milliseconds.
    static let defaultChunkBytes = 32 << 20

    /// `length` bytes at `offset`, with one checksum (16 hex digits: JSON numbers are not exact to 64 bits everywhere)
    /// per `chunkBytes` from its start, the last chunk shorter; none for an empty section.
    struct Section: Codable, Equatable {
        var offset: Int
        var length: Int
        var checksums: [String]

        /// The byte ranges, relative to the file, that `checksums` cover, in order.
        func chunks(of chunkBytes: Int) -> [Range<Int>] {
            stride(from: 0, to: length, by: chunkBytes).map { offset + $0..<offset + min(length, $0 + chunkBytes) }
        }
    }

    struct SpaceKey: Codable, Equatable, Sendable {
        var name: String
        var dimension: Int
        var metric: String
        var identity: String
    }

    struct Space: Codable, Equatable {
        var key: SpaceKey
        var rows: Int
        var matrix: Section
        var ids: Section
        var inverseNorms: Section
        var meta: Section
        var bounds: Section

        /// Every section but the matrix: what an open reads and checks in full.
        var smallSections: [(what: String, section: Section)] {
            [("ids", ids), ("norms", inverseNorms), ("rows", meta), ("bounds", bounds)]
        }
    }

    var format: Int
    var storeID: String
    var revision: UInt64
    var schema: [String]
    var spaces: [Space]
    var interner: Section
    var bodyLength: Int
    /// The size of a checksum chunk (a multiple of 4096).
    var chunkBytes: Int

    var stamp: IndexFileStamp {
        IndexFileStamp(storeID: storeID, revision: revision, schema: schema, spaces: spaces.map(\.key))
    }

    /// Throws unless this header stands for the database `expected` describes.
    func check(against expected: IndexFileStamp) throws {
        guard format == Self.currentFormat else { throw IndexFileError.unsupportedFormat(format) }
        guard storeID == expected.storeID else { throw IndexFileError.otherStore }
        guard schema == expected.schema else { throw IndexFileError.schemaChanged }
        guard revision == expected.revision else { throw IndexFileError.revisionMoved(file: revision, store: expected.revision) }
        let mine = spaces.map(\.key).sorted { $0.name < $1.name }
        let theirs = expected.spaces.sorted { $0.name < $1.name }
        guard mine == theirs else {
            throw IndexFileError.spacesChanged("file has \(mine.map(\.name)), store has \(theirs.map(\.name)) (or models differ)")
        }
    }

    /// Throws unless every section lies inside the body, is aligned, has the length its row count implies and one
    /// checksum per chunk.
    func checkLayout() throws {
        guard chunkBytes >= 4096, chunkBytes <= 1 << 30, chunkBytes % 4096 == 0 else {
            throw IndexFileError.corrupt("checksum chunk of \(chunkBytes) bytes")
        }
        func inBody(_ s: Section, _ what: String, alignment: Int) throws {
            guard s.offset >= Self.magic.count, s.length >= 0, s.offset % alignment == 0,
                s.offset <= bodyLength - s.length
            else { throw IndexFileError.corrupt("\(what) section \(s.offset)+\(s.length) outside the body of \(bodyLength) bytes") }
            guard s.checksums.count == (s.length + chunkBytes - 1) / chunkBytes,
                s.checksums.allSatisfy({ $0.utf8.count == 16 && UInt64($0, radix: 16) != nil })
            else { throw IndexFileError.corrupt("\(what) section has \(s.checksums.count) checksums for \(s.length) bytes") }
        }
        for space in spaces {
            let k = space.key
            guard space.rows >= 0, k.dimension > 0, k.dimension <= 1 << 20,
                let metric = DistanceMetric(rawValue: k.metric)
            else { throw IndexFileError.corrupt("space '\(k.name)' has an invalid shape") }
            try inBody(space.matrix, "matrix of '\(k.name)'", alignment: Self.matrixAlignment)
            for (what, section) in space.smallSections {
                try inBody(section, "\(what) of '\(k.name)'", alignment: Self.sectionAlignment)
            }
            let (rows, overflow) = space.rows.multipliedReportingOverflow(by: k.dimension * 4)
            guard !overflow, space.matrix.length == rows, space.ids.length == space.rows * 8,
                space.inverseNorms.length == (metric == .cosine ? space.rows * 4 : 0),
                space.meta.length == space.rows * Self.metaRecordLength,
                space.bounds.length % Self.boundRecordLength == 0
            else { throw IndexFileError.corrupt("sections of space '\(k.name)' do not match its \(space.rows) rows") }
        }
        try inBody(interner, "interner", alignment: 1)
    }
}

/// The checksum of the index file: four interleaved 64-bit FNV-style lanes over little-endian 8-byte words (one
/// multiply per word, so it runs near memory speed), bytes past the last whole 32-byte block folded in one by one, and
/// the length mixed in last. A change of any single word always changes the result (each step is a bijection of the
/// lane's state), which is what a flipped bit or a torn write produces; it is not a defence against deliberate
/// tampering, which the index file, like the database beside it, does not claim.
struct IndexChecksum {
    private static let prime: UInt64 = 0x0000_0100_0000_01b3
    private var lanes: (UInt64, UInt64, UInt64, UInt64) = (
        0xcbf2_9ce4_8422_2325, 0x8422_2325_cbf2_9ce4, 0x9ce4_8422_2325_cbf2, 0x2325_cbf2_9ce4_8422
    )
    private var pending: [UInt8] = []
    private var total: UInt64 = 0

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress, bytes.count > 0 else { return }
        var left = bytes.count
        total &+= UInt64(left)
        if !pending.isEmpty {
            let take = min(32 - pending.count, left)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: p, count: take))
            p += take
            left -= take
            if pending.count == 32 {
                pending.withUnsafeBytes { consume(blocks: $0.baseAddress!, count: 1) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        let blocks = left / 32
        if blocks > 0 { consume(blocks: p, count: blocks) }
        p += blocks * 32
        left -= blocks * 32
        if left > 0 { pending.append(contentsOf: UnsafeRawBufferPointer(start: p, count: left)) }
    }

    private mutating func consume(blocks p: UnsafeRawPointer, count: Int) {
        var (a, b, c, d) = lanes
        for i in 0..<count {
            let q = p + i * 32
            a = (a ^ UInt64(littleEndian: q.loadUnaligned(fromByteOffset: 0, as: UInt64.self))) &* Self.prime
            b = (b ^ UInt64(littleEndian: q.loadUnaligned(fromByteOffset: 8, as: UInt64.self))) &* Self.prime
            c = (c ^ UInt64(littleEndian: q.loadUnaligned(fromByteOffset: 16, as: UInt64.self))) &* Self.prime
            d = (d ^ UInt64(littleEndian: q.loadUnaligned(fromByteOffset: 24, as: UInt64.self))) &* Self.prime
        }
        lanes = (a, b, c, d)
    }

    var value: UInt64 {
        var h = lanes.0
        for lane in [lanes.1, lanes.2, lanes.3] { h = (h ^ lane) &* Self.prime; h ^= h >> 29 }
        for byte in pending { h = (h ^ UInt64(byte)) &* Self.prime }
        h = (h ^ total) &* Self.prime
        return h ^ (h >> 32)
    }

    static func of(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var c = IndexChecksum()
        c.update(bytes)
        return c.value
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

/// The checksums of one section as it is written: a fresh `IndexChecksum` every `chunkBytes` bytes (the entries of
/// `IndexFileHeader.Section.checksums`).
struct ChunkedChecksum {
    let chunkBytes: Int
    private var current = IndexChecksum()
    private var filled = 0
    private var finished: [UInt64] = []

    init(chunkBytes: Int) { self.chunkBytes = chunkBytes }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let take = min(chunkBytes - filled, left)
            current.update(UnsafeRawBufferPointer(start: p, count: take))
            filled += take
            p += take
            left -= take
            if filled == chunkBytes {
                finished.append(current.value)
                current = IndexChecksum()
                filled = 0
            }
        }
    }

    /// The checksums of the whole chunks and of the last, partial one.
    func values() -> [String] {
        (filled > 0 ? finished + [current.value] : finished).map(IndexChecksum.hex)
    }
}

/// The fixed little-endian records of the packed-row and list-bound sections.
enum IndexRecords {
    /// year Int16, adult UInt8, pad UInt8, votes Int32, language UInt32, genre bits UInt64: 20 bytes.
    static func store(_ m: RowMeta, to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: m.year.littleEndian, toByteOffset: 0, as: Int16.self)
        p.storeBytes(of: m.adult ? 1 : 0, toByteOffset: 2, as: UInt8.self)
        p.storeBytes(of: 0, toByteOffset: 3, as: UInt8.self)
        p.storeBytes(of: m.voteCount.littleEndian, toByteOffset: 4, as: Int32.self)
        p.storeBytes(of: m.language.littleEndian, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: m.genreBits.littleEndian, toByteOffset: 12, as: UInt64.self)
    }

    static func loadMeta(_ p: UnsafeRawPointer) -> RowMeta {
        RowMeta(
            year: Int16(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: Int16.self)),
            adult: p.load(fromByteOffset: 2, as: UInt8.self) != 0,
            voteCount: Int32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: Int32.self)),
            language: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
            genreBits: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt64.self)))
    }

    /// owner Int64, count Int32, complete UInt8, has-worst UInt8, pad 2, worst id Int64, worst key Float32 bits,
    /// pad 4: 32 bytes.
    static func store(owner: MovieID, _ b: NeighbourBound, to p: UnsafeMutableRawPointer) {
        p.initializeMemory(as: UInt8.self, repeating: 0, count: IndexFileHeader.boundRecordLength)
        p.storeBytes(of: Int64(owner).littleEndian, toByteOffset: 0, as: Int64.self)
        p.storeBytes(of: Int32(clamping: b.count).littleEndian, toByteOffset: 8, as: Int32.self)
        p.storeBytes(of: b.complete ? 1 : 0, toByteOffset: 12, as: UInt8.self)
        if let w = b.worst {
            p.storeBytes(of: 1, toByteOffset: 13, as: UInt8.self)
            p.storeBytes(of: Int64(w.id).littleEndian, toByteOffset: 16, as: Int64.self)
            p.storeBytes(of: w.key.bitPattern.littleEndian, toByteOffset: 24, as: UInt32.self)
        }
    }

    static func loadBound(_ p: UnsafeRawPointer) -> (owner: MovieID, bound: NeighbourBound) {
        let owner = MovieID(Int64(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: Int64.self)))
        let count = Int(Int32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: Int32.self)))
        var worst: NeighbourList.Entry?
        if p.load(fromByteOffset: 13, as: UInt8.self) != 0 {
            let id = MovieID(Int64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: Int64.self)))
            let bits = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt32.self))
            worst = NeighbourList.Entry(id: id, key: Float(bitPattern: bits))
        }
        return (owner, NeighbourBound(count: count, worst: worst, complete: p.load(fromByteOffset: 12, as: UInt8.self) != 0))
    }
}
