import PosterSimCore

/// Approximate search by vector over the neighbour lists, for spaces too big to scan on every query.
///
/// The lists form the exact 100-nearest-neighbour graph of the space, kept current by every write, so no other index
/// is built or stored. The search is HNSW's bottom-layer beam search run on that graph:
/// 1. Entry: score a fixed pseudo-random sample of `entrySample` rows and start from the best `entryPoints`. A k-NN graph
///    of clustered data falls apart into one piece per cluster (a film's 100 neighbours are all in its own cluster),
///    so entry points must come from near the query, not from one fixed node; the sample plays the part of HNSW's
///    upper layers.
/// 2. Beam: repeatedly expand the best unexpanded candidate (read its list, score the neighbours not yet seen), keeping
///    the best `beamWidth` found, until the best candidate left is worse than the worst kept.
///
/// Entry points: 16. With 8, queries halfway between two films of different clusters (their answer spans two pieces of
/// the graph) had recall@10 0.982 against the scan on CLIP's space at 100,000 films (`postersim-bench scale --reuse`,
/// 250 such queries); 16 gave 1.000 on 1,000 such queries, 32 the same, p50 7.2 ms against 5.9 ms with 8 and 7.5 with
/// 32 (2026-12-04, quiet machine).
///
/// Every score is computed as the exact scan computes it (same kernel, same key), so a film that is found has exactly
/// the score an exact search reports; only membership of the top-k is approximate. Recall is measured, not assumed:
/// `make bench-scale` reports recall@10 against an exact search of the same queries, and a store test holds it on
/// clustered data.
struct ListGraphSearch {
    static let defaultEntrySample = 4096
    static let entryPoints = 16
    static let beamWidth = 256

    let index: SpaceIndex
    var entrySample = Self.defaultEntrySample

    struct Outcome {
        var matches: [SearchMatch]
        /// Lists read and rows scored (the work the search did, against `rowCount` for a scan).
        var listsRead = 0
        var rowsScored = 0
    }

    /// The best `k` (≤ `beamWidth`) rows found for a validated `query`. `neighbours` reads a movie's stored list; nil
    /// (no list) leaves that node unexpanded.
    ///
    /// With `accept` (a filter, by row), the walk is the same (rows the filter rejects still lead to their
    /// neighbours) and the answer is the best `k` accepted rows among all the rows it scored; fewer than `k` when the
    /// walk met fewer. The store takes this path only for filters that pass at least 1 row in
    /// `SpaceIndex.prefilterBelowFraction` (narrower ones score their passing rows directly), so the region the walk
    /// explores, the query's best `beamWidth` rows or more, holds about 32 accepted ones or more.
    func search(
        _ query: [Float], k: Int, accept: ((Int) -> Bool)? = nil, neighbours: (MovieID) throws -> NeighbourList?
    ) rethrows -> Outcome {
        let rows = index.rowCount
        let dim = index.space.dimension
        let metric = index.space.metric
        var outcome = Outcome(matches: [])
        guard rows > 0, k > 0 else { return outcome }
        let queryInverse = metric == .cosine ? query.withUnsafeBufferPointer {
            SpaceIndex.inverseNorm($0.baseAddress!, dimension: dim)
        } : 0
        var seen = [Bool](repeating: false, count: rows)

        // The accepted rows' best keys (ids are movie ids), when filtering.
        var accepted = TopKHeap(capacity: accept == nil ? 0 : k)

        func key(_ row: Int) -> Float {
            outcome.rowsScored += 1
            let score = query.withUnsafeBufferPointer {
                NeighbourScoring.kernelScore(index.storage.row(row), $0.baseAddress!, dimension: dim, metric: metric)
            }
            let key = NeighbourScoring.ownKey(
                score, queryInverse: queryInverse, rowInverse: metric == .cosine ? index.inverseNorms[row] : 0,
                metric: metric)
            if let accept, accept(row) { accepted.offer(key: key, id: index.rowIDs[row]) }
            return key
        }

        // `kept`: the best `beamWidth` rows found (ids are rows); `candidates`: rows to expand, best first.
        let width = max(Self.beamWidth, k)
        var kept = TopKHeap(capacity: width)
        var candidates = BestFirstQueue()

        // Entry points from a sample of live rows (every sampled row also competes for `kept`). Rows are picked by
        // Fibonacci hashing, not at a fixed stride: a catalogue written in a periodic order (cluster i at rows
        // i, i + c, i + 2c, ...) would otherwise hide whole clusters from a stride that shares a factor with c.
        var entries = TopKHeap(capacity: Self.entryPoints)
        withExtendedLifetime(index.storage) {
            for i in 0..<min(rows, entrySample) {
                let row = rows <= entrySample ? i : Int((UInt64(i) &* 0x9E37_79B9_7F4A_7C15) % UInt64(rows))
                guard index.rowIDs[row] >= 0, !seen[row] else { continue }
                seen[row] = true
                let k = key(row)
                entries.offer(key: k, id: Int64(row))
                kept.offer(key: k, id: Int64(row))
            }
        }
        for i in 0..<entries.count { candidates.push(key: entries.keys[i], row: Int(entries.ids[i])) }
        try withExtendedLifetime(index.storage) {
            while let best = candidates.popBest() {
                if kept.isFull && best.key < kept.threshold { break }
                outcome.listsRead += 1
                guard let list = try neighbours(MovieID(index.rowIDs[best.row])) else { continue }
                for entry in list.entries {
                    guard let row = index.rowOfMovie[entry.id], !seen[row] else { continue }
                    seen[row] = true
                    let k = key(row)
                    if !kept.isFull || k >= kept.threshold {
                        kept.offer(key: k, id: Int64(row))
                        candidates.push(key: k, row: row)
                    }
                }
            }
        }

        if accept != nil {
            outcome.matches = ExactSearch.finish([accepted], k: k, metric: metric)
            return outcome
        }
        // Rows to movie ids; the same tie rule as the scan (`ExactSearch.finish`).
        var top = TopKHeap(capacity: k)
        for i in 0..<kept.count { top.offer(key: kept.keys[i], id: index.rowIDs[Int(kept.ids[i])]) }
        outcome.matches = ExactSearch.finish([top], k: k, metric: metric)
        return outcome
    }
}

/// A max-heap of (key, row): the best candidate first.
private struct BestFirstQueue {
    private var keys: [Float] = []
    private var rows: [Int] = []

    mutating func push(key: Float, row: Int) {
        keys.append(key)
        rows.append(row)
        var c = keys.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            guard keys[c] > keys[p] else { break }
            keys.swapAt(c, p)
            rows.swapAt(c, p)
            c = p
        }
    }

    mutating func popBest() -> (key: Float, row: Int)? {
        guard let top = keys.first else { return nil }
        let row = rows[0]
        keys.swapAt(0, keys.count - 1)
        rows.swapAt(0, rows.count - 1)
        keys.removeLast()
        rows.removeLast()
        var p = 0
        while true {
            let l = 2 * p + 1
            let r = l + 1
            var m = p
            if l < keys.count && keys[l] > keys[m] { m = l }
            if r < keys.count && keys[r] > keys[m] { m = r }
            if m == p { break }
            keys.swapAt(p, m)
            rows.swapAt(p, m)
            p = m
        }
        return (top, row)
    }
}
