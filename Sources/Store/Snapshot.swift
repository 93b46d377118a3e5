import PosterSimCore
import Foundation

/// A value guarded by a lock. Readers copy the value out (for a class reference that is one retain), so the lock is held
/// only for nanoseconds and readers never wait on a writer's work.
final class Locked<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    /// Mutates the value under the lock and returns what `body` returns.
    func update<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&stored)
    }

    func set(_ value: Value) {
        lock.lock()
        let previous = stored
        stored = value
        lock.unlock()
        // The previous value (possibly the last owner of a large matrix) is released here, outside the lock.
        withExtendedLifetime(previous) {}
    }
}

/// A space's vectors loaded from the database, before their filter fields are packed with the snapshot's interner.
struct PendingSpace: Sendable {
    let space: VectorSpace
    let identity: ModelIdentity
    /// Rows 0..<ids.count hold the vectors, in `ids` order.
    let storage: MatrixStorage
    let ids: [MovieID]
    let fields: [MovieFilterFields]
    /// Bounds of the space's stored neighbour lists (empty for a new space or a switched identity).
    var neighbourBounds: [MovieID: NeighbourBound] = [:]
}

/// Everything queries read: one immutable `SpaceIndex` per space and the interner their packed filter fields use.
/// Replaced as a whole after each committed write.
final class StoreSnapshot: Sendable {
    let spaces: [String: SpaceIndex]
    let interner: MetaInterner
    /// Per space, the bounds of the stored neighbour lists (see `NeighbourBound`), by owner. The writer derives the
    /// next write's list changes from them; queries read the lists themselves from the database.
    let neighbourBounds: [String: [MovieID: NeighbourBound]]

    init(spaces: [String: SpaceIndex], interner: MetaInterner, neighbourBounds: [String: [MovieID: NeighbourBound]]) {
        self.spaces = spaces
        self.interner = interner
        self.neighbourBounds = neighbourBounds
    }

    static let empty = StoreSnapshot(spaces: [:], interner: MetaInterner(), neighbourBounds: [:])

    /// The same snapshot with a space's list bounds replaced.
    func withNeighbourBounds(_ bounds: [MovieID: NeighbourBound], space: String) -> StoreSnapshot {
        var all = neighbourBounds
        all[space] = bounds
        return StoreSnapshot(spaces: spaces, interner: interner, neighbourBounds: all)
    }

    /// Installs a freshly loaded space (new, or switched to another identity), replacing any index of that name.
    func installing(_ pending: PendingSpace) -> StoreSnapshot {
        var interner = self.interner
        let dim = pending.space.dimension
        var rowIDs: [Int64] = []
        var metas: [RowMeta] = []
        var norms: [Float] = []
        var rowOf: [MovieID: Int] = [:]
        rowIDs.reserveCapacity(pending.ids.count)
        metas.reserveCapacity(pending.ids.count)
        rowOf.reserveCapacity(pending.ids.count)
        for (r, id) in pending.ids.enumerated() {
            rowIDs.append(Int64(id))
            metas.append(interner.pack(pending.fields[r]))
            if pending.space.metric == .cosine {
                norms.append(SpaceIndex.inverseNorm(pending.storage.row(r), dimension: dim))
            }
            rowOf[id] = r
        }
        let index = SpaceIndex(
            space: pending.space, identity: pending.identity, storage: pending.storage, rowCount: rowIDs.count,
            rowIDs: rowIDs, inverseNorms: norms, rowMeta: metas, rowOfMovie: rowOf)
        var spaces = self.spaces
        spaces[pending.space.name] = index
        var bounds = neighbourBounds
        bounds[pending.space.name] = pending.neighbourBounds
        return StoreSnapshot(spaces: spaces, interner: interner, neighbourBounds: bounds)
    }

    /// New filter fields for movies (rows keep their vectors).
    func updatingMovies(_ movies: [MovieFilterFields]) -> StoreSnapshot {
        var interner = self.interner
        var metas: [MovieID: RowMeta] = [:]
        for m in movies { metas[m.id] = interner.pack(m) }
        let spaces = self.spaces.mapValues { $0.updatingMeta(metas) }
        return StoreSnapshot(spaces: spaces, interner: interner, neighbourBounds: neighbourBounds)
    }

    func upserting(_ items: [(id: MovieID, vector: [Float], fields: MovieFilterFields)], space name: String)
        -> StoreSnapshot
    {
        guard let index = spaces[name] else { return self }
        var interner = self.interner
        let packed = items.map { (id: $0.id, vector: $0.vector, meta: interner.pack($0.fields)) }
        var spaces = self.spaces
        spaces[name] = index.upserting(packed)
        return StoreSnapshot(spaces: spaces, interner: interner, neighbourBounds: neighbourBounds)
    }

    func removing(_ ids: [MovieID]) -> StoreSnapshot {
        var interner = self.interner
        for id in ids { interner.forget(id) }
        return StoreSnapshot(
            spaces: spaces.mapValues { $0.removing(ids) }, interner: interner, neighbourBounds: neighbourBounds)
    }
}

/// Vectors as stored in the database: little-endian IEEE-754 Float32, `dimension * 4` bytes, no header.
enum VectorBlob {
    static func encode(_ v: [Float]) -> Data {
        var data = Data(count: v.count * 4)
        data.withUnsafeMutableBytes { raw in
            for (i, x) in v.enumerated() {
                raw.storeBytes(of: x.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            }
        }
        return data
    }

    static func decode(_ data: Data, into dst: UnsafeMutablePointer<Float>, dimension: Int, space: String, id: MovieID)
        throws
    {
        guard data.count == dimension * 4 else {
            throw StoreError.corrupt(
                "embedding of movie \(id) in space '\(space)' has \(data.count) bytes, expected \(dimension * 4)")
        }
        data.withUnsafeBytes { raw in
            for i in 0..<dimension {
                let bits = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
                dst[i] = Float(bitPattern: bits)
            }
        }
    }

    static func decode(_ data: Data, dimension: Int, space: String, id: MovieID) throws -> [Float] {
        var out = [Float](repeating: 0, count: dimension)
        try out.withUnsafeMutableBufferPointer { buf in
            guard let base = buf.baseAddress else { return }
            try decode(data, into: base, dimension: dimension, space: space, id: id)
        }
        return out
    }
}
