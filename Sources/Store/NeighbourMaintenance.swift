import PosterSimCore
import CVectorScan
import Dispatch
import Foundation

/// Works out how a write changes a space's neighbour lists (see `NeighbourList` for the invariant it keeps).
///
/// Given the space before and after the write, it scores the new vectors and the old vectors of replaced or deleted
/// movies against every row of the space with the batched kernel (`vs_dot_rows_multi`: pair by pair the same
/// arithmetic as the scan, so list scores equal scan scores bit for bit), then:
/// - each new vector gets its own list (the best `capacity` other rows);
/// - an existing list whose bound admits a new vector takes it (dropping its worst entry when full);
/// - an existing list that may hold an old vector loses it, and is recomputed by a scan when that leaves it short;
/// - lists of deleted or replaced movies are replaced.
/// The store writes the returned lists in the same transaction as the vectors.
struct NeighbourMaintenance {
    let before: SpaceIndex
    let after: SpaceIndex
    /// Bounds of the lists as they are before the write, by owner.
    let bounds: [MovieID: NeighbourBound]
    let threads: Int

    struct Result {
        /// Lists to write (insert or replace), by owner.
        var lists: [MovieID: NeighbourList] = [:]
        /// Owners whose list must be deleted (their vectors are gone).
        var dropped: [MovieID] = []
        /// Bounds after the write.
        var bounds: [MovieID: NeighbourBound]
    }

    /// `added`: movies whose vector the write stored (new or replaced). `removed`: movies whose old vector left the
    /// space (replaced or deleted). `loadList` reads a stored list (nil when the movie has none).
    func apply(added: [MovieID], removed: [MovieID], loadList: (MovieID) throws -> NeighbourList?) throws -> Result {
        var result = Result(bounds: bounds)
        let addedSet = Set(added)
        for id in removed where !addedSet.contains(id) {
            result.dropped.append(id)
            result.bounds[id] = nil
        }
        // Per-row bounds of lists that survive the write (rows of new vectors get fresh lists instead).
        var rowBounds = [NeighbourBound?](repeating: nil, count: after.rowCount)
        for (id, row) in after.rowOfMovie where !addedSet.contains(id) { rowBounds[row] = bounds[id] }

        var removals: [Int: Set<MovieID>] = [:]
        var insertions: [Int: [NeighbourList.Entry]] = [:]

        // Old vectors: which surviving lists may hold them.
        let oldRows = removed.compactMap { id in before.rowOfMovie[id].map { (id: id, row: $0) } }
        if !oldRows.isEmpty {
            scoreAgainstAfter(queries: oldRows.map { before.storage.row($0.row) }) { j, dots in
                let oldID = oldRows[j].id
                let oldInv = before.space.metric == .cosine ? before.inverseNorms[oldRows[j].row] : 0
                for row in 0..<after.rowCount {
                    guard let b = rowBounds[row] else { continue }
                    let e = NeighbourList.Entry(id: oldID, key: key(dot: dots[row], queryRow: row, otherInverse: oldInv))
                    if b.mayHold(e) { removals[row, default: []].insert(oldID) }
                }
            }
        }

        // New vectors: their own lists, and the surviving lists they enter.
        let newRows = added.compactMap { id in after.rowOfMovie[id].map { (id: id, row: $0) } }
        if !newRows.isEmpty {
            scoreAgainstAfter(queries: newRows.map { after.storage.row($0.row) }) { j, dots in
                let (newID, newRow) = newRows[j]
                let list = ownList(row: newRow, dots: dots)
                result.lists[newID] = list
                result.bounds[newID] = list.bound
                let newInv = after.space.metric == .cosine ? after.inverseNorms[newRow] : 0
                for row in 0..<after.rowCount {
                    guard let b = rowBounds[row] else { continue }
                    let e = NeighbourList.Entry(id: newID, key: key(dot: dots[row], queryRow: row, otherInverse: newInv))
                    if b.admits(e) { insertions[row, default: []].append(e) }
                }
            }
        }

        // Surviving lists that change.
        for row in Set(removals.keys).union(insertions.keys).sorted() {
            let owner = MovieID(after.rowIDs[row])
            guard var list = try loadList(owner) else { continue }
            if let gone = removals[row] { list.remove(gone) }
            if let new = insertions[row] { list.insert(new) }
            if list.needsRefill { list = refill(row: row) }
            result.lists[owner] = list
            result.bounds[owner] = list.bound
        }
        return result
    }

    /// Lists for movies of `after` that have none, without touching other lists (which already rank these vectors:
    /// every list is computed against, and maintained with, all current vectors).
    func ownLists(of ids: [MovieID]) -> [MovieID: NeighbourList] {
        let rows = ids.compactMap { id in after.rowOfMovie[id].map { (id: id, row: $0) } }
        var lists: [MovieID: NeighbourList] = [:]
        scoreAgainstAfter(queries: rows.map { after.storage.row($0.row) }) { j, dots in
            lists[rows[j].id] = ownList(row: rows[j].row, dots: dots)
        }
        return lists
    }

    /// The list of the vector in `row`, from its scores against every row (`dots`, as the scan kernels give them).
    private func ownList(row newRow: Int, dots: UnsafeBufferPointer<Float>) -> NeighbourList {
        let newInv = after.space.metric == .cosine ? after.inverseNorms[newRow] : 0
        var heap = TopKHeap(capacity: NeighbourList.capacity)
        for row in 0..<after.rowCount where row != newRow {
            let id = after.rowIDs[row]
            if id < 0 { continue }
            heap.offer(key: ownKey(dot: dots[row], queryInverse: newInv, row: row), id: id)
        }
        // `.cosine` so that `finish` hands the keys back unchanged (it negates euclidean ones).
        let entries = ExactSearch.finish([heap], k: NeighbourList.capacity, metric: .cosine).map {
            NeighbourList.Entry(id: $0.movieID, key: $0.score)
        }
        return NeighbourList(entries: entries, complete: after.liveCount - 1 <= NeighbourList.capacity)
    }

    /// The exact list of `row` by a scan of the space after the write.
    func refill(row: Int) -> NeighbourList {
        let query = Array(UnsafeBufferPointer(start: after.storage.row(row), count: after.space.dimension))
        let matches = after.search(query, k: NeighbourList.capacity, filter: nil, excludedRow: row, maxThreads: threads)
        let entries = matches.map {
            NeighbourList.Entry(id: $0.movieID, key: after.space.metric == .cosine ? $0.score : -$0.score)
        }
        return NeighbourList(entries: entries, complete: after.liveCount - 1 <= NeighbourList.capacity)
    }

    /// The scan's key for row `queryRow` as the query and another vector (inverse norm `otherInverse`) as the row.
    @inline(__always)
    private func key(dot: Float, queryRow: Int, otherInverse: Float) -> Float {
        switch after.space.metric {
        // ExactSearch's order of operations: (dot * query scale) * row's inverse norm.
        case .cosine: return dot * after.inverseNorms[queryRow] * otherInverse
        case .euclidean: return -dot
        }
    }

    /// The scan's key for a new vector (inverse norm `queryInverse`) as the query and `row` as the row.
    @inline(__always)
    private func ownKey(dot: Float, queryInverse: Float, row: Int) -> Float {
        switch after.space.metric {
        case .cosine: return dot * queryInverse * after.inverseNorms[row]
        case .euclidean: return -dot
        }
    }

    /// Scores every query against every row of `after` (dot products for cosine, squared distances for euclidean),
    /// in chunks of queries shared among threads, and hands each query's row scores to `body` (called from one
    /// thread at a time, in query order within a chunk).
    private func scoreAgainstAfter(
        queries: [UnsafeMutablePointer<Float>], body: (Int, UnsafeBufferPointer<Float>) -> Void
    ) {
        let dim = after.space.dimension
        let rows = after.rowCount
        guard rows > 0 else {
            for j in queries.indices { body(j, UnsafeBufferPointer(start: nil, count: 0)) }
            return
        }
        let chunk = 8
        let perRound = chunk * max(1, threads)
        var start = 0
        while start < queries.count {
            let end = min(queries.count, start + perRound)
            let n = end - start
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: n * dim)
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: n * rows)
            defer {
                packed.deallocate()
                scores.deallocate()
            }
            for j in 0..<n { (packed + j * dim).update(from: queries[start + j], count: dim) }
            let tasks = (n + chunk - 1) / chunk
            let shared = SharedPointers(packed: packed, scores: scores, matrix: after.storage.base)
            let metric = after.space.metric
            withExtendedLifetime(after.storage) {
                DispatchQueue.concurrentPerform(iterations: tasks) { t in
                    let q0 = t * chunk
                    let q = min(chunk, n - q0)
                    let qp = shared.packed + q0 * dim
                    let out = shared.scores + q0 * rows
                    switch metric {
                    case .cosine: vs_dot_rows_multi(shared.matrix, rows, dim, qp, q, out)
                    case .euclidean: vs_l2sq_rows_multi(shared.matrix, rows, dim, qp, q, out)
                    }
                }
            }
            for j in 0..<n { body(start + j, UnsafeBufferPointer(start: scores + j * rows, count: rows)) }
            start = end
        }
    }
}

/// Buffers shared with `concurrentPerform`'s workers; each worker writes only its own slice.
private struct SharedPointers: @unchecked Sendable {
    let packed: UnsafeMutablePointer<Float>
    let scores: UnsafeMutablePointer<Float>
    let matrix: UnsafeMutablePointer<Float>
}
