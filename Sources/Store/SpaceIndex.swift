import PosterSimCore
import CVectorScan
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A row-major Float32 matrix with room for `capacityRows` rows, 64-byte aligned: either allocated in anonymous memory
/// (large ones on huge pages where the OS allows, `vs_matrix_alloc`: a scan is then not bound by TLB misses), or the
/// rows of a mapped index file (`SpaceIndexFile`) followed, at the next addresses, by a tail of anonymous memory.
///
/// Sharing rule (why this class may be `@unchecked Sendable`): published `SpaceIndex` snapshots read only rows below
/// their own `rowCount`; the single writer appends only at or above the newest snapshot's `rowCount` and publishes the
/// new count afterwards through a lock, which orders the writes before any reader that sees the new count. Rows below
/// a published count are never written again. The file's rows (below `mappedRows`) are never written at all (mapped
/// read-only): writes to a mapped space append into the tail, so the first write after a mapped open costs its own
/// rows, not a copy of the space, and the matrix stays one contiguous array for every scan (`SpaceIndex.upserting`
/// grows the tail by copying the tail only; `SQLiteVectorStore` folds a large tail back into the index file).
final class MatrixStorage: @unchecked Sendable {
    let dimension: Int
    let capacityRows: Int
    let base: UnsafeMutablePointer<Float>
    /// The index file these rows come from (kept alive as long as the matrix), or nil when allocated.
    let mapping: MappedFile?
    /// Rows read from the file: `0..<mappedRows` (0 when allocated).
    let mappedRows: Int
    /// Where the file's rows start in the file.
    private let fileOffset: Int
    /// The address range this matrix reserved (file rows and tail), unmapped with it; nil when allocated.
    private let reservation: (address: UnsafeMutableRawPointer, bytes: Int)?

    init(dimension: Int, capacityRows: Int) {
        self.dimension = dimension
        self.capacityRows = max(1, capacityRows)
        let count = self.capacityRows * dimension
        guard let raw = vs_matrix_alloc(count * MemoryLayout<Float>.stride) else {
            fatalError("out of memory for a \(self.capacityRows) x \(dimension) matrix")
        }
        base = raw.bindMemory(to: Float.self, capacity: count)
        mapping = nil
        mappedRows = 0
        fileOffset = 0
        reservation = nil
    }

    /// `rows` (at least 1) rows of `dimension` floats at `byteOffset` (a multiple of the page size) in the mapped file,
    /// followed by room for `tailRows` more. The whole pages of the file's rows are mapped read-only from the file at
    /// the start of one reserved address range; the rest of the range is anonymous memory (reserved, not committed:
    /// untouched tail pages cost nothing), starting with a copy of the file's last partial page.
    init(mapping: MappedFile, byteOffset: Int, rows: Int, dimension: Int, tailRows: Int) throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let fileBytes = rows * dimension * 4
        precondition(rows >= 1 && byteOffset + fileBytes <= mapping.length)
        guard byteOffset % page == 0 else {
            // The file aligns matrices to 4096 bytes; a system with larger pages decodes the rows instead.
            throw IndexFileError.unsupportedFormat(IndexFileHeader.currentFormat)
        }
        let capacity = rows + max(1, tailRows)
        let bytes = (capacity * dimension * 4 + page - 1) / page * page
        let wholePages = fileBytes / page * page
        guard let reserved = mmap(nil, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
            reserved != MAP_FAILED
        else { throw IndexFileError.unreadable("reserving \(bytes) bytes: \(String(cString: strerror(errno)))") }
        var mapped = true
        if wholePages > 0 {
            let p = mmap(reserved, wholePages, PROT_READ, MAP_PRIVATE | MAP_FIXED, mapping.fd, off_t(byteOffset))
            mapped = p == reserved
        }
        if mapped {
            let p = mmap(
                reserved + wholePages, bytes - wholePages, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0)
            mapped = p == reserved + wholePages
        }
        guard mapped else {
            let message = String(cString: strerror(errno))
            munmap(reserved, bytes)
            throw IndexFileError.unreadable("mapping a matrix: \(message)")
        }
        (reserved + wholePages).copyMemory(from: mapping.base + byteOffset + wholePages, byteCount: fileBytes - wholePages)
        self.dimension = dimension
        capacityRows = capacity
        base = reserved.bindMemory(to: Float.self, capacity: capacity * dimension)
        self.mapping = mapping
        mappedRows = rows
        fileOffset = byteOffset
        reservation = (reserved, bytes)
    }

    deinit {
        if let reservation {
            munmap(reservation.address, reservation.bytes)
        } else {
            vs_matrix_free(base)
        }
    }

    /// A mapped matrix with the same file rows and room for `tailRows` after them, holding this one's tail rows up to
    /// `rowCount` (copied: the tail only, never the file's rows).
    func withTail(_ tailRows: Int, keepingRowsBelow rowCount: Int) throws -> MatrixStorage {
        guard let mapping else { preconditionFailure("only a mapped matrix has a tail") }
        let grown = try MatrixStorage(
            mapping: mapping, byteOffset: fileOffset, rows: mappedRows, dimension: dimension, tailRows: tailRows)
        if rowCount > mappedRows { grown.row(mappedRows).update(from: row(mappedRows), count: (rowCount - mappedRows) * dimension) }
        return grown
    }

    var isMapped: Bool { mapping != nil }

    func row(_ r: Int) -> UnsafeMutablePointer<Float> { base + r * dimension }
}

/// The filter fields of one movie, packed so that a filter test is a few integer compares.
struct RowMeta: Sendable, Equatable {
    static let noYear = Int16.min
    var year: Int16
    var adult: Bool
    var voteCount: Int32
    /// Interned `original_language` + 1; 0 when unknown.
    var language: UInt32
    /// Bit i: the movie has the genre interned as i (i < 63). Bit 63: it also has genres beyond the interned 63.
    var genreBits: UInt64
}

/// Maps languages and genre ids to small integers for `RowMeta`. Append-only; part of each published snapshot (and of
/// the index file, which stores it next to the packed rows that use its codes).
struct MetaInterner: Sendable, Codable, Equatable {
    static let overflowBit: UInt64 = 1 << 63
    private(set) var languages: [String: UInt32] = [:]
    private(set) var genres: [Int: Int] = [:]
    /// Genres of movies that have ids beyond the 63 interned ones (TMDB has about 19 movie genres, so normally empty).
    private(set) var overflowGenres: [MovieID: [Int]] = [:]

    mutating func pack(_ movie: MovieFilterFields) -> RowMeta {
        var language: UInt32 = 0
        if let lang = movie.originalLanguage {
            if let code = languages[lang] {
                language = code
            } else {
                language = UInt32(languages.count + 1)
                languages[lang] = language
            }
        }
        var bits: UInt64 = 0
        var overflow = false
        for g in movie.genreIDs {
            if let bit = genres[g] {
                bits |= 1 << UInt64(bit)
            } else if genres.count < 63 {
                let bit = genres.count
                genres[g] = bit
                bits |= 1 << UInt64(bit)
            } else {
                overflow = true
            }
        }
        if overflow {
            bits |= Self.overflowBit
            overflowGenres[movie.id] = movie.genreIDs
        } else if overflowGenres[movie.id] != nil {
            overflowGenres[movie.id] = nil
        }
        let year = movie.releaseYear.map { Int16(clamping: $0) } ?? RowMeta.noYear
        return RowMeta(
            year: year, adult: movie.adult ?? false, voteCount: Int32(clamping: movie.voteCount ?? 0),
            language: language, genreBits: bits)
    }

    mutating func forget(_ id: MovieID) {
        if overflowGenres[id] != nil { overflowGenres[id] = nil }
    }

    func compile(_ filter: SearchFilter) -> CompiledFilter {
        var c = CompiledFilter()
        if filter.minYear != nil || filter.maxYear != nil {
            c.checkYear = true
            // Years outside Int16 cannot be stored, so clamping keeps the comparison exact.
            c.yearLo = Int16(clamping: filter.minYear ?? Int(Int16.min + 1))
            c.yearHi = Int16(clamping: filter.maxYear ?? Int(Int16.max))
        }
        if let g = filter.genreID {
            if let bit = genres[g] {
                c.genreMask = 1 << UInt64(bit)
            } else if !overflowGenres.isEmpty {
                c.genreMask = Self.overflowBit
                c.overflowGenre = g
                c.overflowGenres = overflowGenres
            } else {
                c.impossible = true
            }
        }
        if let lang = filter.originalLanguage {
            if let code = languages[lang] { c.language = code } else { c.impossible = true }
        }
        c.adult = filter.adult
        if let v = filter.minVoteCount { c.minVotes = Int32(clamping: v) }
        return c
    }
}

/// The subset of `Movie` the index needs, so it can be read cheaply from the database.
struct MovieFilterFields: Sendable {
    var id: MovieID
    var releaseYear: Int?
    var genreIDs: [Int]
    var originalLanguage: String?
    var adult: Bool?
    var voteCount: Int?

    init(_ m: Movie) {
        id = m.id
        releaseYear = m.releaseYear
        genreIDs = m.genreIDs
        originalLanguage = m.originalLanguage
        adult = m.adult
        voteCount = m.voteCount
    }

    init(id: MovieID, releaseYear: Int?, genreIDs: [Int], originalLanguage: String?, adult: Bool?, voteCount: Int?) {
        self.id = id
        self.releaseYear = releaseYear
        self.genreIDs = genreIDs
        self.originalLanguage = originalLanguage
        self.adult = adult
        self.voteCount = voteCount
    }
}

/// A `SearchFilter` translated to the packed representation.
struct CompiledFilter: Sendable {
    var impossible = false
    var checkYear = false
    var yearLo: Int16 = 0
    var yearHi: Int16 = 0
    var genreMask: UInt64 = 0
    var overflowGenre: Int?
    var overflowGenres: [MovieID: [Int]] = [:]
    var language: UInt32?
    var adult: Bool?
    var minVotes: Int32?

    @inline(__always)
    func accepts(_ m: RowMeta, id: Int64) -> Bool {
        if impossible { return false }
        if checkYear {
            if m.year == RowMeta.noYear || m.year < yearLo || m.year > yearHi { return false }
        }
        if genreMask != 0 {
            if m.genreBits & genreMask == 0 { return false }
            if let g = overflowGenre, !(overflowGenres[MovieID(id)]?.contains(g) ?? false) { return false }
        }
        if let l = language, m.language != l { return false }
        if let a = adult, m.adult != a { return false }
        if let v = minVotes, m.voteCount < v { return false }
        return true
    }
}

/// An immutable snapshot of one space's searchable vectors: the current identity's embeddings as one contiguous matrix,
/// the row → movie id map (negative = deleted row), 1/‖row‖ for cosine, and the packed filter fields per row.
final class SpaceIndex: Sendable {
    let space: VectorSpace
    let identity: ModelIdentity
    let storage: MatrixStorage
    let rowCount: Int
    let rowIDs: [Int64]
    let inverseNorms: [Float]
    let rowMeta: [RowMeta]
    let rowOfMovie: [MovieID: Int]

    var liveCount: Int { rowOfMovie.count }

    init(
        space: VectorSpace, identity: ModelIdentity, storage: MatrixStorage, rowCount: Int, rowIDs: [Int64],
        inverseNorms: [Float], rowMeta: [RowMeta], rowOfMovie: [MovieID: Int]
    ) {
        self.space = space
        self.identity = identity
        self.storage = storage
        self.rowCount = rowCount
        self.rowIDs = rowIDs
        self.inverseNorms = inverseNorms
        self.rowMeta = rowMeta
        self.rowOfMovie = rowOfMovie
    }

    /// Rows of room a mapped space's tail starts with, and grows by at least.
    static let minimumTail = 1024

    /// Rows written since the space was mapped (its tail) plus mapped rows replaced or deleted since: what folding it
    /// into a new index file would remove from memory and from every scan. 0 for an allocated space.
    var delta: Int {
        guard storage.isMapped else { return 0 }
        let mapped = storage.mappedRows
        return rowCount - mapped + rowIDs[0..<mapped].lazy.filter { $0 < 0 }.count
    }

    static func empty(_ space: VectorSpace, identity: ModelIdentity, capacity: Int = 0) -> SpaceIndex {
        SpaceIndex(
            space: space, identity: identity, storage: MatrixStorage(dimension: space.dimension, capacityRows: capacity),
            rowCount: 0, rowIDs: [], inverseNorms: [], rowMeta: [], rowOfMovie: [:])
    }

    /// 1/‖v‖ as the index stores it (computed with the scan kernel, so a row's self-score is consistent).
    static func inverseNorm(_ v: UnsafePointer<Float>, dimension: Int) -> Float {
        var s: Float = 0
        vs_dot_rows(v, 1, dimension, v, &s)
        return s > 0 ? 1 / s.squareRoot() : 0
    }

    /// A new snapshot with `vectors` (already validated) added or replacing the movies' previous rows. Appends into
    /// the shared storage when it has room (see `MatrixStorage`), otherwise compacts into a larger one.
    func upserting(_ items: [(id: MovieID, vector: [Float], meta: RowMeta)]) -> SpaceIndex {
        guard !items.isEmpty else { return self }
        let dim = space.dimension
        var rowIDs = self.rowIDs
        var rowOfMovie = self.rowOfMovie
        var rowMeta = self.rowMeta
        var inverseNorms = self.inverseNorms
        // Later items for the same movie win, like the SQL upsert.
        var last: [MovieID: Int] = [:]
        for (i, item) in items.enumerated() { last[item.id] = i }
        let fresh = items.enumerated().filter { last[$0.element.id] == $0.offset }.map(\.element)
        for item in fresh {
            if let old = rowOfMovie[item.id] { rowIDs[old] = -1 }
        }
        let live = rowOfMovie.count + fresh.filter { rowOfMovie[$0.id] == nil }.count
        var storage = self.storage
        var rowCount = self.rowCount
        let dead = rowIDs.lazy.filter { $0 < 0 }.count
        if storage.isMapped, rowCount + fresh.count > storage.capacityRows,
            let grown = try? storage.withTail(
                max(Self.minimumTail, (rowCount + fresh.count - storage.mappedRows) * 2), keepingRowsBelow: rowCount)
        {
            // A mapped space keeps its file rows where they are, tombstones included: compacting would copy the whole
            // space into memory. The store folds the tail and the tombstones into a new index file instead.
            storage = grown
        }
        if rowCount + fresh.count > storage.capacityRows || (!storage.isMapped && dead > max(1024, live / 4)) {
            // Compact the live rows into new storage with headroom for growth.
            let newStorage = MatrixStorage(dimension: dim, capacityRows: max(64, live + live / 2))
            var newIDs: [Int64] = []
            var newNorms: [Float] = []
            var newMeta: [RowMeta] = []
            newIDs.reserveCapacity(live)
            newMeta.reserveCapacity(live)
            var newRowOf: [MovieID: Int] = [:]
            newRowOf.reserveCapacity(live)
            for r in 0..<rowCount where rowIDs[r] >= 0 {
                let nr = newIDs.count
                newStorage.row(nr).update(from: storage.row(r), count: dim)
                newIDs.append(rowIDs[r])
                newMeta.append(rowMeta[r])
                if space.metric == .cosine { newNorms.append(inverseNorms[r]) }
                newRowOf[MovieID(rowIDs[r])] = nr
            }
            storage = newStorage
            rowCount = newIDs.count
            rowIDs = newIDs
            rowMeta = newMeta
            inverseNorms = newNorms
            rowOfMovie = newRowOf
        }
        for item in fresh {
            let r = rowCount
            let dst = storage.row(r)
            item.vector.withUnsafeBufferPointer { src in
                if let s = src.baseAddress { dst.update(from: s, count: dim) }
            }
            rowIDs.append(Int64(item.id))
            rowMeta.append(item.meta)
            if space.metric == .cosine { inverseNorms.append(Self.inverseNorm(dst, dimension: dim)) }
            rowOfMovie[item.id] = r
            rowCount += 1
        }
        return SpaceIndex(
            space: space, identity: identity, storage: storage, rowCount: rowCount, rowIDs: rowIDs,
            inverseNorms: inverseNorms, rowMeta: rowMeta, rowOfMovie: rowOfMovie)
    }

    /// A new snapshot without these movies' rows (rows are tombstoned; compaction happens on a later append).
    func removing(_ ids: [MovieID]) -> SpaceIndex {
        var rowIDs = self.rowIDs
        var rowOfMovie = self.rowOfMovie
        var changed = false
        for id in ids {
            if let r = rowOfMovie.removeValue(forKey: id) {
                rowIDs[r] = -1
                changed = true
            }
        }
        guard changed else { return self }
        return SpaceIndex(
            space: space, identity: identity, storage: storage, rowCount: rowCount, rowIDs: rowIDs,
            inverseNorms: inverseNorms, rowMeta: rowMeta, rowOfMovie: rowOfMovie)
    }

    /// A new snapshot with updated filter fields for movies that have rows.
    func updatingMeta(_ metas: [MovieID: RowMeta]) -> SpaceIndex {
        var rowMeta = self.rowMeta
        var changed = false
        for (id, meta) in metas {
            if let r = rowOfMovie[id], rowMeta[r] != meta {
                rowMeta[r] = meta
                changed = true
            }
        }
        guard changed else { return self }
        return SpaceIndex(
            space: space, identity: identity, storage: storage, rowCount: rowCount, rowIDs: rowIDs,
            inverseNorms: inverseNorms, rowMeta: rowMeta, rowOfMovie: rowOfMovie)
    }

    /// Filters passing at most 1 row in this many are answered by scoring the passing rows only.
    static let prefilterBelowFraction = 8

    /// The live rows `filter` passes (without `excludedRow`) when they are at most 1 in `prefilterBelowFraction`;
    /// nil for a broader filter (counting stops there).
    func narrowFilterRows(_ filter: CompiledFilter, excluding excludedRow: Int? = nil) -> [Int]? {
        let limit = rowCount / Self.prefilterBelowFraction
        var rows: [Int] = []
        for row in 0..<rowCount
        where rowIDs[row] >= 0 && row != excludedRow && filter.accepts(rowMeta[row], id: rowIDs[row]) {
            rows.append(row)
            if rows.count > limit { return nil }
        }
        return rows
    }

    /// Exact top-k for a validated query vector, skipping `excludedRow`. `narrowRows`: `filter`'s rows as
    /// `narrowFilterRows` gave them (without `excludedRow`), when the caller already asked.
    func search(
        _ query: [Float], k: Int, filter: CompiledFilter?, excludedRow: Int? = nil, narrowRows: [Int]? = nil,
        maxThreads: Int
    ) -> [SearchMatch] {
        let meta = rowMeta
        let ids = rowIDs
        // A selective filter: score only the rows it passes (found with integer compares) instead of scanning the
        // space and filtering the best rows. Same kernel per row, same keys, same answer; at 1% of 100,000 films in
        // the 4096-d space this is 1,000 rows scored instead of 100,000.
        let passing = narrowRows ?? filter.flatMap { narrowFilterRows($0, excluding: excludedRow) }
        let accept: (@Sendable (Int) -> Bool)?
        if filter != nil || excludedRow != nil {
            accept = { row in
                if row == excludedRow { return false }
                if let f = filter { return f.accepts(meta[row], id: ids[row]) }
                return true
            }
        } else {
            accept = nil
        }
        return withExtendedLifetime(storage) {
            rowIDs.withUnsafeBufferPointer { idp in
                inverseNorms.withUnsafeBufferPointer { np in
                    query.withUnsafeBufferPointer { qp in
                        guard let idBase = idp.baseAddress, let qBase = qp.baseAddress else { return [] }
                        return ExactSearch.topK(
                            matrix: storage.base, rows: rowCount, dimension: space.dimension, metric: space.metric,
                            inverseNorms: space.metric == .cosine ? np.baseAddress : nil, ids: idBase, query: qBase,
                            k: k, maxThreads: maxThreads, accept: passing == nil ? accept : nil, rowList: passing)
                    }
                }
            }
        }
    }

    /// The score of one row against `query`, through the same scan path as `search` (so a movie's score against
    /// itself equals what a scan would report).
    func score(row: Int, query: [Float]) -> Float {
        let id = rowIDs[row]
        let norm = space.metric == .cosine ? inverseNorms[row] : 0
        return withExtendedLifetime(storage) {
            withUnsafePointer(to: id) { idp in
                withUnsafePointer(to: norm) { np in
                    query.withUnsafeBufferPointer { qp in
                        guard let q = qp.baseAddress else { return Float.nan }
                        let m = ExactSearch.topK(
                            matrix: storage.row(row), rows: 1, dimension: space.dimension, metric: space.metric,
                            inverseNorms: np, ids: idp, query: q, k: 1, maxThreads: 1)
                        return m.first?.score ?? .nan
                    }
                }
            }
        }
    }

    /// The stored vector of a movie (a copy).
    func vector(of id: MovieID) -> [Float]? {
        guard let r = rowOfMovie[id] else { return nil }
        return Array(UnsafeBufferPointer(start: storage.row(r), count: space.dimension))
    }
}
