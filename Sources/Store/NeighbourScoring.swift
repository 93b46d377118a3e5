import PosterSimCore
import CVectorScan
import Dispatch

/// A vector whose scores against every row of a space the neighbour-list maintenance needs.
struct ScoringQuery {
    let vector: UnsafePointer<Float>
    /// The vector's inverse norm as the space stores it (used by cosine keys; ignored for euclidean).
    let inverseNorm: Float
    /// The vector's own row in the scored space, when it has one: never part of its own list.
    let row: Int?
}

/// What the maintenance needs from one query's scores. Every key is bit for bit the key the exact scan gives.
struct QueryScores {
    /// The query's own list (its best `NeighbourList.capacity` rows), when asked for.
    var own: NeighbourList?
    /// Every live row whose list bound the query reaches, `key ≥ worstKey[row]`, with the key as the row's own scan
    /// would rank the query. (Ties against the bound's id are the caller's to decide.)
    var entering: [(row: Int, key: Float)] = []
    /// Pairs `.boundedGEMM` rescored with the scan kernel because its bound could not decide them (0 for `.scan`).
    var rescored = 0
}

/// How the neighbour-list upkeep scores a write's vectors against a space (see `NeighbourScoring`). Both methods give
/// the same lists; the choice only moves the time. Stores choose by batch size unless told (benchmarks compare them).
public enum NeighbourScoringMethod: String, Sendable, CaseIterable {
    case scan
    /// A float32 GEMM screens the pairs (the automatic choice for big writes).
    case boundedGEMM = "gemm"
    /// An int8 GEMM over `RowCodes` screens the pairs; used only where `RowCodes.gemmIsExact`, else the float32 GEMM
    /// stands in. Not chosen automatically, because it measured slower here: its GEMM runs about 4× the float32 one's
    /// rate (181 against 896 ms for 256 × 32,768 × 4,096 on this 2-core VNNI Xeon, loaded), but its bound is about
    /// 500× wider (2% of ‖q‖‖r‖ against 0.004% at 4,096-d), so it leaves many more pairs to the scan kernel, which
    /// reads a whole row per pair. On the synthetic catalogue (`postersim-bench scale`, VGG16 space, 60,000 films, run
    /// back to back) it rescored 8.9% of the pairs against 0.8% and took 6.9 against 4.8 ms per film; a chooser that
    /// probed it every 16 writes still lost 9% (4.3 against 4.0 ms). It pays only where a list's bound stands far
    /// from nearly every row (neighbours much closer than the bulk of the space), so it is kept as an option to measure.
    case boundedInt8GEMM = "int8"

    /// Queries per write from which a GEMM is used.
    static let gemmFromQueries = 32

    static func automatic(queryCount: Int) -> NeighbourScoringMethod {
        queryCount >= gemmFromQueries ? .boundedGEMM : .scan
    }
}

/// Scores a batch of queries against every row of a space, for `NeighbourMaintenance`.
///
/// Two methods give identical results:
/// - `.scan`: every pair through the scan kernel (`vs_*_rows_multi`), so every key is exact by construction.
/// - `.boundedGEMM`: all pairs by one GEMM (`dnnl_sgemm`), whose rounding differs from the scan's, with a rigorous
///   bound on that difference; only the pairs the bound cannot decide are rescored with the scan kernel. See
///   `NeighbourScoring+GEMM.swift`.
///
/// Why both: a GEMM reads each row once per block of queries and runs near the machine's peak, which pays when a write
/// brings many vectors; with a few queries both are bound by reading the matrix, and the scan needs no rescoring.
/// Measured on the 2-core Xeon (50,000 rows, one run, other builds running): 64 queries at 512-d 23 ms by GEMM
/// against 201 ms by the scan kernel on one thread; at 4096-d 573 against 2,199 ms; 8 queries 30 against 31 ms.
enum NeighbourScoring {
    typealias Method = NeighbourScoringMethod

    /// Scores `queries` against every row of `index`. `worstKey[row]` is the key a candidate must reach to be
    /// considered for `row`'s list (`+inf` for rows without a list, `-inf` for lists that take anything).
    /// `codes` gives the int8 codes of `index`'s rows, asked for only when the int8 screen is used.
    static func score(
        _ queries: [ScoringQuery], in index: SpaceIndex, worstKey: [Float], ownLists: Bool, threads: Int,
        method: Method? = nil, codes: () -> RowCodes
    ) -> [QueryScores] {
        guard !queries.isEmpty else { return [] }
        var screen = BoundedGEMMScorer.Screen.float32
        switch method ?? .automatic(queryCount: queries.count) {
        case .scan:
            return ScanScorer(index: index, worstKey: worstKey, ownLists: ownLists, threads: threads).score(queries)
        case .boundedGEMM:
            break
        case .boundedInt8GEMM:
            if RowCodes.gemmIsExact {
                let c = codes()
                if c.usable { screen = .int8(c) }
            }
        }
        return BoundedGEMMScorer(index: index, worstKey: worstKey, ownLists: ownLists, threads: threads, screen: screen)
            .score(queries)
    }

    // MARK: Exact keys, as the scan computes them

    /// The scan kernel's result for one pair: the dot product (cosine) or squared distance (euclidean). The kernel's
    /// arithmetic for a row does not depend on the other rows of the call, so this equals the full scan's value.
    @inline(__always)
    static func kernelScore(_ row: UnsafePointer<Float>, _ query: UnsafePointer<Float>, dimension: Int, metric: DistanceMetric)
        -> Float
    {
        var s: Float = 0
        switch metric {
        case .cosine: vs_dot_rows(row, 1, dimension, query, &s)
        case .euclidean: vs_l2sq_rows(row, 1, dimension, query, &s)
        }
        return s
    }

    /// The key of `row` in the query's own list: the scan with the query as the query.
    @inline(__always)
    static func ownKey(_ score: Float, queryInverse: Float, rowInverse: Float, metric: DistanceMetric) -> Float {
        metric == .cosine ? score * queryInverse * rowInverse : -score
    }

    /// The key of the query in `row`'s list: the scan with the row's vector as the query (so the multiplications by
    /// the two inverse norms come in the other order).
    @inline(__always)
    static func enteringKey(_ score: Float, queryInverse: Float, rowInverse: Float, metric: DistanceMetric) -> Float {
        metric == .cosine ? score * rowInverse * queryInverse : -score
    }

    /// The list held by `heap` (exact own keys, movie ids), best first, ties by id.
    static func list(from heap: TopKHeap, index: SpaceIndex) -> NeighbourList {
        // `.cosine` so that `finish` hands the keys back unchanged (it negates euclidean ones).
        let entries = ExactSearch.finish([heap], k: NeighbourList.capacity, metric: .cosine).map {
            NeighbourList.Entry(id: $0.movieID, key: $0.score)
        }
        return NeighbourList(entries: entries, complete: index.liveCount - 1 <= NeighbourList.capacity)
    }
}

/// `.scan`: every pair through the multi-query scan kernel, in chunks of queries shared among threads.
struct ScanScorer {
    let index: SpaceIndex
    let worstKey: [Float]
    let ownLists: Bool
    let threads: Int

    func score(_ queries: [ScoringQuery]) -> [QueryScores] {
        var results = [QueryScores](repeating: QueryScores(), count: queries.count)
        let dim = index.space.dimension
        let rows = index.rowCount
        let metric = index.space.metric
        let chunk = 8
        let perRound = chunk * max(1, threads)
        var start = 0
        while start < queries.count {
            let end = min(queries.count, start + perRound)
            let n = end - start
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: n * dim)
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n * rows))
            defer {
                packed.deallocate()
                scores.deallocate()
            }
            for j in 0..<n { (packed + j * dim).update(from: queries[start + j].vector, count: dim) }
            if rows > 0 {
                let shared = ScanBuffers(packed: packed, scores: scores, matrix: index.storage.base)
                withExtendedLifetime(index.storage) {
                    DispatchQueue.concurrentPerform(iterations: (n + chunk - 1) / chunk) { t in
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
            }
            for j in 0..<n {
                results[start + j] = collect(queries[start + j], UnsafeBufferPointer(start: scores + j * rows, count: rows))
            }
            start = end
        }
        return results
    }

    private func collect(_ query: ScoringQuery, _ kernel: UnsafeBufferPointer<Float>) -> QueryScores {
        let metric = index.space.metric
        var result = QueryScores()
        index.rowIDs.withUnsafeBufferPointer { ids in
            index.inverseNorms.withUnsafeBufferPointer { inv in
                worstKey.withUnsafeBufferPointer { worst in
                    var heap = TopKHeap(capacity: NeighbourList.capacity)
                    var threshold = -Float.infinity
                    for row in 0..<index.rowCount where ids[row] >= 0 {
                        let rowInverse = metric == .cosine ? inv[row] : 0
                        if ownLists && row != query.row {
                            let key = NeighbourScoring.ownKey(
                                kernel[row], queryInverse: query.inverseNorm, rowInverse: rowInverse, metric: metric)
                            // Keys below the heap's worst cannot enter (equal ones may, on id).
                            if key >= threshold {
                                heap.offer(key: key, id: ids[row])
                                threshold = heap.threshold
                            }
                        }
                        let key = NeighbourScoring.enteringKey(
                            kernel[row], queryInverse: query.inverseNorm, rowInverse: rowInverse, metric: metric)
                        if key >= worst[row] { result.entering.append((row, key)) }
                    }
                    if ownLists { result.own = NeighbourScoring.list(from: heap, index: index) }
                }
            }
        }
        return result
    }
}

/// Buffers shared with `concurrentPerform`'s workers; each worker writes only its own slice.
private struct ScanBuffers: @unchecked Sendable {
    let packed: UnsafeMutablePointer<Float>
    let scores: UnsafeMutablePointer<Float>
    let matrix: UnsafeMutablePointer<Float>
}
