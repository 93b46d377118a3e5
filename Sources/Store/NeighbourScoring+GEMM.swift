import PosterSimCore
import CDNNL
import CVectorScan
import Dispatch

/// `.boundedGEMM`: every pair's score by one `dnnl_sgemm` per tile, then exact rescoring of the pairs that could
/// matter, so the result equals `.scan`'s bit for bit.
///
/// Why it is exact. The GEMM sums the same products as the scan kernel in another order, so its value differs from
/// the scan's. For a dot product of length K, any summation order (with or without FMA) is within γ_K·Σ|xᵢyᵢ| ≤
/// γ_K·‖x‖‖y‖ of the true value, γ_K = K·u/(1 − K·u), u = 2⁻²⁴ (Higham, Accuracy and Stability of Numerical
/// Algorithms, §3.1). Both the GEMM's and the scan's values are within that of the truth, so
/// - cosine keys (dot × two inverse norms, each within a few u of 1/‖·‖) differ by at most 2γ_K·(1 + γ_K) plus the
///   rounding of the two multiplications on each side: `cosineMargin`;
/// - euclidean keys: the GEMM gives ‖q‖² + ‖r‖² − 2q·r, whose terms and rounding are each bounded by a multiple of
///   u or γ_K times S = (‖q‖ + ‖r‖)², and S also bounds the scan's d² and its error: `euclideanMargin`·S.
/// Each approximate key `k` therefore brackets the exact one in [k − m, k + m]. A row can enter the query's own list
/// only if its upper end reaches the `capacity`-th best lower end (that many rows are surely at least that good), and
/// can take the query into its own list only if its upper end reaches the list's bound. Only those pairs are rescored
/// with the scan kernel (`NeighbourScoring.kernelScore`); everything written comes from the rescoring. A non-finite
/// approximate key (an overflow) makes the pair a candidate.
///
/// Denormals: if they are flushed, each product loses at most 2⁻¹²⁶, covered by an absolute term.
struct BoundedGEMMScorer {
    let index: SpaceIndex
    let worstKey: [Float]
    let ownLists: Bool
    let threads: Int
    var screen = Screen.float32

    /// What the GEMM multiplies: the float32 rows, or their int8 codes (`RowCodes`, whose own bound then joins the
    /// margins: see `int8DotMargin`).
    enum Screen {
        case float32
        case int8(RowCodes)
    }

    /// Queries per GEMM (a block the GEMM's packing amortises well), and scores per tile (32 MiB of Float).
    static let queriesPerGEMM = 256
    static let scoresPerTile = 1 << 23

    static func gamma(_ k: Int) -> Double {
        let u = 0x1p-24
        return Double(k) * u / (1 - Double(k) * u)
    }

    static func cosineMargin(dimension: Int) -> Float {
        Float(2.01 * gamma(dimension) + 10 * 0x1p-24 + 1e-30)
    }

    /// Multiplied by (‖q‖ + ‖r‖)², with 1% headroom for the computed norms' own error.
    static func euclideanMargin(dimension: Int) -> Float {
        Float((3 * gamma(dimension) + 16 * 0x1p-24) * 1.01)
    }

    /// How far the scan's dot product of a query and a row can lie from the int8 GEMM's value s_q·s_r·(q_q·q_r): the
    /// codes' bound (`RowCodes`), the rounding of the two multiplications by the scales (3 roundings, taken as 4u of
    /// ‖q̃‖‖r̃‖ ≤ (‖q‖+‖e_q‖)(‖r‖+‖e_r‖)), and the scan's own error γ_K·‖q‖‖r‖.
    @inline(__always)
    static func int8DotMargin(
        queryNorm nq: Float, queryResidual eq: Float, rowNorm nr: Float, rowResidual er: Float, gamma: Float
    ) -> Float {
        (nq * er + eq * (nr + er) + 0x1p-22 * (nq + eq) * (nr + er) + gamma * nq * nr) * 1.0001
    }

    func score(_ queries: [ScoringQuery]) -> [QueryScores] {
        let rows = index.rowCount
        let dim = index.space.dimension
        guard rows > 0, dim > 0 else {
            return ScanScorer(index: index, worstKey: worstKey, ownLists: ownLists, threads: threads).score(queries)
        }
        // Vectors so small that their norms are denormal break the relative bounds above: score them by the scan.
        if index.space.metric == .cosine, index.inverseNorms.contains(where: { $0 > 1e15 }) {
            return ScanScorer(index: index, worstKey: worstKey, ownLists: ownLists, threads: threads).score(queries)
        }
        let rowNorms = index.space.metric == .euclidean ? squaredNorms() : []
        var results: [QueryScores] = []
        results.reserveCapacity(queries.count)
        var start = 0
        while start < queries.count {
            let group = Array(queries[start..<min(queries.count, start + Self.queriesPerGEMM)])
            guard let scored = scoreGroup(group, rowSquaredNorms: rowNorms) else {
                return ScanScorer(index: index, worstKey: worstKey, ownLists: ownLists, threads: threads)
                    .score(queries)
            }
            results.append(contentsOf: scored)
            start += group.count
        }
        return results
    }

    /// ‖r‖² of every row, by the scan kernel (as `SpaceIndex.inverseNorm` computes it).
    private func squaredNorms() -> [Float] {
        let dim = index.space.dimension
        return (0..<index.rowCount).map { r in
            let p = UnsafePointer(index.storage.row(r))
            return NeighbourScoring.kernelScore(p, p, dimension: dim, metric: .cosine)
        }
    }

    /// One block of queries against every row; nil when the GEMM reports an error (the caller then scans).
    private func scoreGroup(_ group: [ScoringQuery], rowSquaredNorms: [Float]) -> [QueryScores]? {
        let dim = index.space.dimension
        let rows = index.rowCount
        let n = group.count
        let tileRows = max(256, Self.scoresPerTile / n)
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: n * dim)
        // Float scores (float32 screen) or Int32 sums (int8 screen): both 4 bytes.
        let scores = UnsafeMutableRawPointer.allocate(byteCount: 4 * n * min(rows, tileRows), alignment: 64)
        defer {
            packed.deallocate()
            scores.deallocate()
        }
        for j in 0..<n { (packed + j * dim).update(from: group[j].vector, count: dim) }
        var isInt8 = false
        if case .int8 = screen { isInt8 = true }
        let queryCodes = QueryCodes(count: isInt8 ? n : 0, dimension: dim)
        defer { queryCodes.deallocate() }
        if isInt8 {
            for j in 0..<n where !queryCodes.code(j, group[j].vector) { return nil }
        }
        let states = (0..<n).map { j in
            GEMMQueryState(
                query: group[j],
                squaredNorm: NeighbourScoring.kernelScore(group[j].vector, group[j].vector, dimension: dim, metric: .cosine))
        }
        let pass = GEMMPass(
            index: index, worstKey: worstKey, rowSquaredNorms: rowSquaredNorms, ownLists: ownLists, states: states,
            screen: screen, queryCodes: queryCodes)
        var r0 = 0
        var failed = false
        withExtendedLifetime(index.storage) {
            while r0 < rows && !failed {
                let t = min(tileRows, rows - r0)
                let status: dnnl_status_t
                switch screen {
                case .float32:
                    status = dnnl_sgemm(
                        CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "T")), Int64(n), Int64(t), Int64(dim), 1,
                        packed, Int64(dim), index.storage.row(r0), Int64(dim), 0,
                        scores.assumingMemoryBound(to: Float.self), Int64(t))
                case .int8(let codes):
                    // The queries' codes are stored offset by 128 (unsigned); the GEMM takes the offset back out.
                    var zero: Int32 = 0
                    status = dnnl_gemm_u8s8s32(
                        CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "T")), CChar(UInt8(ascii: "F")), Int64(n),
                        Int64(t), Int64(dim), 1, queryCodes.codes, Int64(dim), 128, codes.codes + r0 * dim, Int64(dim),
                        0, 0, scores.assumingMemoryBound(to: Int32.self), Int64(t), &zero)
                }
                if status != dnnl_success {
                    failed = true
                    break
                }
                let tile = TileScores(base: scores, rows: t, firstRow: r0)
                DispatchQueue.concurrentPerform(iterations: n) { j in pass.bracket(query: j, tile: tile) }
                r0 += t
            }
        }
        if failed { return nil }
        var results = [QueryScores](repeating: QueryScores(), count: n)
        results.withUnsafeMutableBufferPointer { buffer in
            let out = ResultSlots(base: buffer.baseAddress!)
            withExtendedLifetime(index.storage) {
                DispatchQueue.concurrentPerform(iterations: n) { j in out.base[j] = pass.rescore(query: j) }
            }
        }
        return results
    }
}

/// One query's candidates while the tiles go by. Touched by one worker at a time.
private final class GEMMQueryState: @unchecked Sendable {
    let query: ScoringQuery
    let squaredNorm: Float
    /// The best `capacity` lower ends of the query's own keys so far (ids are rows).
    var lower = TopKHeap(capacity: NeighbourList.capacity)
    /// Rows whose own key's upper end reached `lower`'s threshold when they were seen, with that upper end.
    var ownCandidates: [(row: Int, upper: Float)] = []
    /// Rows whose list bound the query's key may reach.
    var entering: [Int] = []

    init(query: ScoringQuery, squaredNorm: Float) {
        self.query = query
        self.squaredNorm = squaredNorm
    }
}

/// A tile of GEMM scores: `rows` scores per query (Float, or Int32 for the int8 screen), for rows `firstRow...`.
private struct TileScores: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let rows: Int
    let firstRow: Int
}

/// A block of queries coded as `RowCodes` codes its rows, stored offset by 128 for `dnnl_gemm_u8s8s32`.
private struct QueryCodes: @unchecked Sendable {
    let codes: UnsafeMutablePointer<UInt8>
    let scales: UnsafeMutablePointer<Float>
    let norms: UnsafeMutablePointer<Float>
    let residuals: UnsafeMutablePointer<Float>
    let dimension: Int

    init(count: Int, dimension: Int) {
        self.dimension = dimension
        codes = .allocate(capacity: max(1, count * dimension))
        scales = .allocate(capacity: max(1, count))
        norms = .allocate(capacity: max(1, count))
        residuals = .allocate(capacity: max(1, count))
    }

    /// Codes query `j`; false when `RowCodes` cannot code it (the caller then uses another screen).
    func code(_ j: Int, _ vector: UnsafePointer<Float>) -> Bool {
        let row = codes + j * dimension
        let coded = row.withMemoryRebound(to: Int8.self, capacity: dimension) {
            RowCodes.code(vector, dimension: dimension, into: $0)
        }
        guard let c = coded else { return false }
        for i in 0..<dimension { row[i] = row[i] &+ 128 }
        scales[j] = c.scale
        norms[j] = c.norm
        residuals[j] = c.residual
        return true
    }

    func deallocate() {
        codes.deallocate()
        scales.deallocate()
        norms.deallocate()
        residuals.deallocate()
    }
}

private struct ResultSlots: @unchecked Sendable {
    let base: UnsafeMutablePointer<QueryScores>
}

/// The read-only inputs of a pass and the per-query states it fills.
private struct GEMMPass: @unchecked Sendable {
    let index: SpaceIndex
    let worstKey: [Float]
    let rowSquaredNorms: [Float]
    let ownLists: Bool
    let states: [GEMMQueryState]
    let screen: BoundedGEMMScorer.Screen
    let queryCodes: QueryCodes

    /// Brackets the exact keys of one query against a tile's rows and records the candidates.
    func bracket(query j: Int, tile: TileScores) {
        let state = states[j]
        let q = state.query
        let cosine = index.space.metric == .cosine
        let dim = index.space.dimension
        let cosineMargin = BoundedGEMMScorer.cosineMargin(dimension: dim)
        let euclideanMargin = BoundedGEMMScorer.euclideanMargin(dimension: dim)
        let gamma = Float(BoundedGEMMScorer.gamma(dim))
        let qNorm = state.squaredNorm.squareRoot()
        let floatDots = tile.base.assumingMemoryBound(to: Float.self) + j * tile.rows
        let intDots = tile.base.assumingMemoryBound(to: Int32.self) + j * tile.rows
        var codes: RowCodes?
        if case .int8(let c) = screen { codes = c }
        let qScale = codes == nil ? 0 : queryCodes.scales[j]
        let qCodeNorm = codes == nil ? 0 : queryCodes.norms[j]
        let qResidual = codes == nil ? 0 : queryCodes.residuals[j]
        index.rowIDs.withUnsafeBufferPointer { ids in
            index.inverseNorms.withUnsafeBufferPointer { inv in
                worstKey.withUnsafeBufferPointer { worst in
                    rowSquaredNorms.withUnsafeBufferPointer { rowSq in
                        var threshold = state.lower.threshold
                        for i in 0..<tile.rows {
                            let row = tile.firstRow + i
                            if ids[row] < 0 { continue }
                            // The GEMM's dot product, and how far the scan's may lie from it beyond what the
                            // float32 margins below already cover.
                            let dot: Float
                            var dotMargin: Float = 0
                            if let codes {
                                dot = Float(intDots[i]) * qScale * codes.scales[row]
                                dotMargin = BoundedGEMMScorer.int8DotMargin(
                                    queryNorm: qCodeNorm, queryResidual: qResidual, rowNorm: codes.norms[row],
                                    rowResidual: codes.residuals[row], gamma: gamma)
                            } else {
                                dot = floatDots[i]
                            }
                            let key: Float
                            let margin: Float
                            if cosine {
                                key = dot * q.inverseNorm * inv[row]
                                margin = cosineMargin + dotMargin * q.inverseNorm * inv[row] * 1.0001
                            } else {
                                key = -(state.squaredNorm + rowSq[row] - 2 * dot)
                                let s = qNorm + rowSq[row].squareRoot()
                                margin = euclideanMargin * s * s + 2 * dotMargin + 1e-30
                            }
                            var lowerEnd = key - margin
                            var upperEnd = key + margin
                            if !key.isFinite || !margin.isFinite {
                                lowerEnd = -.infinity
                                upperEnd = .infinity
                            }
                            if ownLists && row != q.row && upperEnd >= threshold {
                                state.ownCandidates.append((row, upperEnd))
                                if lowerEnd >= threshold {
                                    state.lower.offer(key: lowerEnd, id: Int64(row))
                                    threshold = state.lower.threshold
                                }
                            }
                            if upperEnd >= worst[row] { state.entering.append(row) }
                        }
                    }
                }
            }
        }
    }

    /// Rescores one query's candidates with the scan kernel and keeps what the exact keys admit.
    func rescore(query j: Int) -> QueryScores {
        let state = states[j]
        let q = state.query
        let metric = index.space.metric
        let dim = index.space.dimension
        var result = QueryScores()
        result.rescored = state.entering.count
        if ownLists {
            let threshold = state.lower.threshold
            var heap = TopKHeap(capacity: NeighbourList.capacity)
            for c in state.ownCandidates where c.upper >= threshold {
                result.rescored += 1
                let score = NeighbourScoring.kernelScore(index.storage.row(c.row), q.vector, dimension: dim, metric: metric)
                let key = NeighbourScoring.ownKey(
                    score, queryInverse: q.inverseNorm, rowInverse: metric == .cosine ? index.inverseNorms[c.row] : 0,
                    metric: metric)
                heap.offer(key: key, id: index.rowIDs[c.row])
            }
            result.own = NeighbourScoring.list(from: heap, index: index)
        }
        for row in state.entering {
            let score = NeighbourScoring.kernelScore(index.storage.row(row), q.vector, dimension: dim, metric: metric)
            let key = NeighbourScoring.enteringKey(
                score, queryInverse: q.inverseNorm, rowInverse: metric == .cosine ? index.inverseNorms[row] : 0,
                metric: metric)
            if key >= worstKey[row] { result.entering.append((row, key)) }
        }
        return result
    }
}
