import PosterSimCore
import Foundation

/// One movie's nearest neighbours in one space, kept in the store so that "the films most like film X" is a lookup
/// instead of a scan.
///
/// Invariant (what makes a lookup exact): the entries are exactly the best `entries.count` of all *other* current
/// vectors of the space, best first, with the scores the exact scan gives (same kernel, same arithmetic), ties by
/// ascending id. When `complete`, the entries are all other current vectors. A list may be shorter than
/// `NeighbourList.capacity` after deletions; it is still an exact prefix, and is refilled by a scan when it falls
/// below `refillBelow`.
public struct NeighbourList: Sendable, Equatable {
    /// Entries kept per list. The front end asks for 10; Pinecone-style queries by id for more fall back to a scan.
    public static let capacity = 100
    /// A list that deletions left shorter than this is recomputed in the same transaction.
    public static let refillBelow = 64

    /// "Higher is better" keys, as the scan ranks them: cosine similarity, or the negated squared distance.
    public struct Entry: Sendable, Equatable {
        public var id: MovieID
        public var key: Float

        public init(id: MovieID, key: Float) {
            self.id = id
            self.key = key
        }

        /// Ranks before `other`: a higher key, or the same key and a smaller id.
        @inline(__always)
        public func ranksBefore(_ other: Entry) -> Bool {
            key > other.key || (key == other.key && id < other.id)
        }
    }

    public var entries: [Entry]
    public var complete: Bool

    public init(entries: [Entry], complete: Bool) {
        self.entries = entries
        self.complete = complete
    }

    /// The summary the writer keeps in memory to decide, without reading the list, whether a new vector enters it.
    var bound: NeighbourBound {
        NeighbourBound(count: entries.count, worst: entries.last, complete: complete)
    }

    /// Removes `ids` from the list (an exact prefix minus some members is still an exact prefix of what remains).
    /// Returns whether anything was removed.
    @discardableResult
    public mutating func remove(_ ids: Set<MovieID>) -> Bool {
        let before = entries.count
        entries.removeAll { ids.contains($0.id) }
        return entries.count != before
    }

    /// Adds candidates that the bound admitted, keeping the best `capacity`. Candidates must be new vectors (not in
    /// the list). A complete list that overflows is no longer complete.
    public mutating func insert(_ candidates: [Entry]) {
        guard !candidates.isEmpty else { return }
        let limit = bound
        let admitted = candidates.filter { limit.admits($0) }
        guard !admitted.isEmpty else { return }
        entries.append(contentsOf: admitted)
        entries.sort { $0.ranksBefore($1) }
        if entries.count > Self.capacity {
            entries.removeLast(entries.count - Self.capacity)
            complete = false
        }
    }

    /// Whether deletions left the list too short to keep answering without a refill.
    public var needsRefill: Bool { !complete && entries.count < Self.refillBelow }

    /// Converts entries to the matches a query returns (euclidean keys are negated distances).
    func matches(metric: DistanceMetric) -> [SearchMatch] {
        entries.map { SearchMatch(movieID: $0.id, score: metric == .cosine ? $0.key : -$0.key) }
    }

    // MARK: Storage form

    /// Little-endian (Int64 id, Float32 key) pairs, 12 bytes each, best first.
    func encodedEntries() -> Data {
        var data = Data(count: entries.count * 12)
        data.withUnsafeMutableBytes { raw in
            for (i, e) in entries.enumerated() {
                raw.storeBytes(of: Int64(e.id).littleEndian, toByteOffset: i * 12, as: Int64.self)
                raw.storeBytes(of: e.key.bitPattern.littleEndian, toByteOffset: i * 12 + 8, as: UInt32.self)
            }
        }
        return data
    }

    static func decodeEntries(_ data: Data, space: String, owner: MovieID) throws -> [Entry] {
        guard data.count % 12 == 0, data.count / 12 <= capacity else {
            throw StoreError.corrupt("neighbour list of movie \(owner) in space '\(space)' has \(data.count) bytes")
        }
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 12)).map { i in
                let id = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 12, as: Int64.self))
                let bits = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 12 + 8, as: UInt32.self))
                return Entry(id: MovieID(id), key: Float(bitPattern: bits))
            }
        }
    }
}

/// What the writer needs to know about a list without reading it: its length, its worst entry and whether it holds
/// every other vector.
struct NeighbourBound: Sendable, Equatable {
    var count: Int
    var worst: NeighbourList.Entry?
    var complete: Bool

    /// Whether a new vector with this key would enter the list. A complete list takes everything (it holds all other
    /// vectors); a truncated one takes what ranks before its worst entry (a full list then drops its worst).
    @inline(__always)
    func admits(_ e: NeighbourList.Entry) -> Bool {
        if complete { return true }
        guard let worst else { return false }
        return e.ranksBefore(worst)
    }

    /// Whether an existing vector with this key may be in the list (removals look only at those lists).
    @inline(__always)
    func mayHold(_ e: NeighbourList.Entry) -> Bool {
        if complete { return true }
        guard let worst else { return false }
        return !worst.ranksBefore(e)
    }
}

/// The result of checking a space's lists against exact scans (`postersim check`).
public struct NeighbourListCheck: Sendable, Hashable, Codable {
    public var space: String
    /// Current vectors of the space.
    public var vectors: Int
    /// Vectors that have a list.
    public var lists: Int
    /// Lists compared with an exact scan (all, or a sample).
    public var checked: Int
    /// Lists that differ from the exact scan, with the first few movie ids.
    public var mismatched: Int
    public var mismatchedExamples: [MovieID]
    /// List rows whose owner has no current vector, or entries naming movies without one.
    public var dangling: Int

    public var isConsistent: Bool { mismatched == 0 && dangling == 0 }

    public init(
        space: String, vectors: Int, lists: Int, checked: Int, mismatched: Int, mismatchedExamples: [MovieID],
        dangling: Int
    ) {
        self.space = space
        self.vectors = vectors
        self.lists = lists
        self.checked = checked
        self.mismatched = mismatched
        self.mismatchedExamples = mismatchedExamples
        self.dangling = dangling
    }
}

/// A store that keeps neighbour lists (see `NeighbourList`) and answers queries by id from them.
///
/// Guarantees, on top of `VectorStore`'s:
/// - Every current vector stored after the lists existed has a list, written in the same transaction as the vector;
///   storing, replacing or deleting vectors and switching a space's model update every affected list in that same
///   transaction, so a write killed at any moment leaves lists consistent with the vectors.
/// - A query by id answered from a list returns exactly what the exact scan returns (same ids, same scores, same
///   order); when a list cannot answer (filters pass too few of its entries, `k` beyond its length, no list), the
///   store scans.
public protocol NeighbourListStore: Sendable {
    /// Compares stored lists with exact scans: all of a space's lists, or about `sample` of them.
    func checkNeighbourLists(space: String, sample: Int?) async throws -> NeighbourListCheck

    /// Computes the lists that current vectors lack (a store written before lists existed), `batch` movies per
    /// transaction; reports (done, total). Returns how many lists it made.
    @discardableResult
    func buildMissingNeighbourLists(space: String, batch: Int, progress: (@Sendable (Int, Int) -> Void)?) async throws
        -> Int
}
