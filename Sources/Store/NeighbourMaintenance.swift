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
        // Per-row bounds of the lists that survive the write (rows of new vectors get fresh lists instead), as two
        // flat arrays so the loops below are a compare per row: an entry (key, id) enters a list when it ranks before
        // (worstKey, worstID). A list that holds everything has (-inf, max) and takes any finite key; a row without a
        // list has (+inf, min) and takes none.
        var worstKey = [Float](repeating: .infinity, count: after.rowCount)
        var worstID = [Int64](repeating: .min, count: after.rowCount)
        for (id, row) in after.rowOfMovie where !addedSet.contains(id) {
            guard let b = bounds[id] else { continue }
            if b.complete {
                worstKey[row] = -.infinity
                worstID[row] = .max
            } else if let w = b.worst {
                worstKey[row] = w.key
                worstID[row] = Int64(w.id)
            }
        }

        var removals: [Int: Set<MovieID>] = [:]
        var insertions: [Int: [NeighbourList.Entry]] = [:]
        let cosine = after.space.metric == .cosine

        // Old vectors: which surviving lists may hold them (their entry ranks no worse than the list's worst).
        let oldRows = removed.compactMap { id in before.rowOfMovie[id].map { (id: id, row: $0) } }
        if !oldRows.isEmpty {
            scoreAgainstAfter(queries: oldRows.map { before.storage.row($0.row) }) { j, dots in
                let oldID = Int64(oldRows[j].id)
                let oldInv = cosine ? before.inverseNorms[oldRows[j].row] : 0
                forEachRow(dots, otherInverse: oldInv, worstKey: worstKey) { row, key in
                    if key > worstKey[row] || (key == worstKey[row] && oldID <= worstID[row]) {
                        removals[row, default: []].insert(MovieID(oldID))
                    }
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
                let id = Int64(newID)
                let newInv = cosine ? after.inverseNorms[newRow] : 0
                forEachRow(dots, otherInverse: newInv, worstKey: worstKey) { row, key in
                    if key > worstKey[row] || (key == worstKey[row] && id < worstID[row]) {
                        insertions[row, default: []].append(NeighbourList.Entry(id: newID, key: key))
                    }
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
        let cosine = after.space.metric == .cosine
        var heap = TopKHeap(capacity: NeighbourList.capacity)
        after.rowIDs.withUnsafeBufferPointer { ids in
            after.inverseNorms.withUnsafeBufferPointer { inv in
                var threshold = -Float.infinity
                for row in 0..<after.rowCount where row != newRow {
                    let key = cosine ? dots[row] * newInv * inv[row] : -dots[row]
                    // Keys below the heap's worst cannot enter (equal ones may, on id).
                    if key < threshold || ids[row] < 0 { continue }
                    heap.offer(key: key, id: ids[row])
                    threshold = heap.threshold
                }
            }
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

    /// Calls `body(row, key)` for the rows whose key, with the row's vector as the query and another vector (inverse
    /// norm `otherInverse`) as the row, could pass a list bound: key ≥ `worstKey[row]`. The key is computed as the
    /// scan computes it, (dot × query's inverse norm) × row's inverse norm, or the negated squared distance.
    @inline(__always)
    private func forEachRow(
        _ dots: UnsafeBufferPointer<Float>, otherInverse: Float, worstKey: [Float], _ body: (Int, Float) -> Void
    ) {
        let cosine = after.space.metric == .cosine
        worstKey.withUnsafeBufferPointer { worst in
            after.inverseNorms.withUnsafeBufferPointer { inv in
                for row in 0..<after.rowCount {
                    let key = cosine ? dots[row] * inv[row] * otherInverse : -dots[row]
                    if key >= worst[row] { body(row, key) }
                }
            }
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
