import PosterSimCore
import TestSupport
import Foundation
import Testing
import CVectorScan
@testable import Store

/// The batched kernel behind neighbour lists: its scores must be the scan's, bit for bit, or lists and scans disagree.
@Suite struct NeighbourMaintenanceTests {
    /// Pair by pair, the batched kernel gives the bits the one-query scan gives, whatever the dimension's tail.
    @Test func multiKernelEqualsScan() throws {
        var rng = SplitMix64(seed: 1)
        for dim in [3, 8, 16, 33, 512, 515, 2048] {
            let rows = 50
            let m = (0..<(rows * dim)).map { _ in Float.random(in: -1...1, using: &rng) }
            let qs = (0..<(5 * dim)).map { _ in Float.random(in: -1...1, using: &rng) }
            var multi = [Float](repeating: 0, count: 5 * rows)
            var multiL2 = [Float](repeating: 0, count: 5 * rows)
            vs_dot_rows_multi(m, rows, dim, qs, 5, &multi)
            vs_l2sq_rows_multi(m, rows, dim, qs, 5, &multiL2)
            for j in 0..<5 {
                var one = [Float](repeating: 0, count: rows)
                var oneL2 = [Float](repeating: 0, count: rows)
                Array(qs[(j * dim)..<((j + 1) * dim)]).withUnsafeBufferPointer { q in
                    vs_dot_rows(m, rows, dim, q.baseAddress!, &one)
                    vs_l2sq_rows(m, rows, dim, q.baseAddress!, &oneL2)
                }
                #expect(Array(multi[(j * rows)..<((j + 1) * rows)]) == one, "dim \(dim) query \(j)")
                #expect(Array(multiL2[(j * rows)..<((j + 1) * rows)]) == oneL2, "dim \(dim) query \(j)")
            }
        }
    }

    /// The GEMM with error bounds and rescoring (`.boundedGEMM`) must hand back exactly what scoring every pair with
    /// the scan kernel does, on data built to sit inside the bounds: near-duplicates (differences far below the
    /// GEMM's rounding), exact duplicates (ties decided by id), euclidean vectors far from the origin (distances tiny
    /// next to the norms), a zero vector, and writes that add, replace and delete.
    @Test(arguments: [(DistanceMetric.cosine, 5), (.cosine, 515), (.euclidean, 7), (.euclidean, 2048)])
    func boundedGEMMEqualsScan(metric: DistanceMetric, dimension: Int) throws {
        var rng = SplitMix64(seed: UInt64(dimension))
        let space = VectorSpace(name: "s", dimension: dimension, metric: metric)
        let identity = ModelIdentity(repo: "test/model", weightsSHA256: String(repeating: "a", count: 64))
        let meta = RowMeta(year: RowMeta.noYear, adult: false, voteCount: 0, language: 0, genreBits: 0)
        let offset: Float = metric == .euclidean ? 1000 : 0
        let centres = (0..<6).map { _ in (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) } }
        func vector(_ i: Int) -> [Float] {
            if metric == .cosine && i == 7 { return [Float](repeating: 0, count: dimension) }
            let c = centres[i % centres.count]
            // Every fifth movie is an exact copy of its centre; the others differ from it by ~1e-6 or by ~0.05.
            let spread: Float = i % 5 == 0 ? 0 : (i % 3 == 0 ? 1e-6 : 0.05)
            return c.map { offset + $0 + spread * Float.random(in: -1...1, using: &rng) }
        }
        let firstIDs = (1...400).map { MovieID($0) }
        let empty = SpaceIndex.empty(space, identity: identity)
        let before = empty.upserting(firstIDs.map { ($0, vector(Int($0)), meta) })
        let initial = try NeighbourMaintenance(before: empty, after: before, bounds: [:], threads: 2, method: .scan)
            .apply(added: firstIDs, removed: []) { _ in nil }

        // A write with 150 new vectors, 40 replaced and 30 deleted.
        let newIDs = (401...550).map { MovieID($0) }
        let replaced = (1...40).map { MovieID($0 * 3) }
        let deleted = (1...30).map { MovieID($0 * 7 + 1) }.filter { !replaced.contains($0) }
        let written = before.removing(deleted).upserting((newIDs + replaced).map { ($0, vector(Int($0) + 1000), meta) })
        func run(_ method: NeighbourScoring.Method) throws -> NeighbourMaintenance.Result {
            try NeighbourMaintenance(before: before, after: written, bounds: initial.bounds, threads: 2, method: method)
                .apply(added: newIDs + replaced, removed: replaced + deleted) { initial.lists[$0] }
        }
        let byScan = try run(.scan)
        for method in [NeighbourScoring.Method.boundedGEMM, .boundedInt8GEMM] {
            let byGEMM = try run(method)
            #expect(byGEMM.lists.count == byScan.lists.count, "\(method)")
            let differing = byScan.lists.filter { byGEMM.lists[$0.key] != $0.value }.keys.sorted()
            #expect(differing.isEmpty, "\(method): lists that differ: \(differing.prefix(10))")
            #expect(Set(byGEMM.dropped) == Set(byScan.dropped))
            #expect(byGEMM.lists.count > 150, "the write changed the new lists and some old ones")
        }

        // Lists built from nothing agree too.
        let ids = Array(written.rowOfMovie.keys.prefix(120))
        let scanLists = NeighbourMaintenance(before: written, after: written, bounds: [:], threads: 2, method: .scan)
            .ownLists(of: ids)
        for method in [NeighbourScoring.Method.boundedGEMM, .boundedInt8GEMM] {
            let gemmLists = NeighbourMaintenance(before: written, after: written, bounds: [:], threads: 2, method: method)
                .ownLists(of: ids)
            #expect(scanLists.filter { gemmLists[$0.key] != $0.value }.isEmpty && scanLists.count == gemmLists.count)
        }
    }

    /// On clustered vectors like the models' (the data above is built to defeat the screens), each screen decides
    /// most pairs itself: a bound so wide that it sent every pair to the scan would pass the test above too.
    @Test(arguments: [(DistanceMetric.cosine, 512), (.euclidean, 1024)])
    func screensDecideMostPairs(metric: DistanceMetric, dimension: Int) throws {
        var rng = SplitMix64(seed: 77)
        let space = VectorSpace(name: "s", dimension: dimension, metric: metric)
        let identity = ModelIdentity(repo: "test/model", weightsSHA256: String(repeating: "a", count: 64))
        let meta = RowMeta(year: RowMeta.noYear, adult: false, voteCount: 0, language: 0, genreBits: 0)
        let centres = (0..<8).map { _ in (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) } }
        func vector(_ i: Int) -> [Float] {
            centres[i % 8].map { c in
                let x = c + 0.5 * Float.random(in: -1...1, using: &rng)
                return metric == .euclidean ? max(0, x) : x
            }
        }
        let empty = SpaceIndex.empty(space, identity: identity)
        let firstIDs = (1...1200).map { MovieID($0) }
        let before = empty.upserting(firstIDs.map { ($0, vector(Int($0)), meta) })
        let initial = try NeighbourMaintenance(before: empty, after: before, bounds: [:], threads: 2, method: .scan)
            .apply(added: firstIDs, removed: []) { _ in nil }
        let newIDs = (1201...1400).map { MovieID($0) }
        let after = before.upserting(newIDs.map { ($0, vector(Int($0)), meta) })
        func run(_ method: NeighbourScoring.Method) throws -> NeighbourMaintenance.Result {
            try NeighbourMaintenance(before: before, after: after, bounds: initial.bounds, threads: 2, method: method)
                .apply(added: newIDs, removed: []) { initial.lists[$0] }
        }
        let byScan = try run(.scan)
        for method in [NeighbourScoring.Method.boundedGEMM, .boundedInt8GEMM] {
            let result = try run(method)
            #expect(result.lists == byScan.lists, "\(method)")
            let fraction = Double(result.pairsRescored) / Double(result.pairsScored)
            #expect(fraction < 0.25, "\(method) rescored \(fraction) of the pairs")
        }
    }

    /// The int8 screen is only sound where oneDNN's int8 GEMM sums exactly; on the CI machines (VNNI) it must, or the
    /// tests above silently ran the float32 screen instead.
    @Test func int8GEMMIsExactHere() {
        #expect(RowCodes.gemmIsExact)
    }

    /// Codes obey their bound: |x·y − s_x·s_y·(q_x·q_y)| ≤ ‖x‖‖e_y‖ + ‖e_x‖(‖y‖ + ‖e_y‖), checked in Double.
    @Test func rowCodesBoundHolds() {
        var rng = SplitMix64(seed: 9)
        let dim = 777
        for trial in 0..<40 {
            // Mixed magnitudes, including one huge component that makes every other code coarse.
            let x = (0..<dim).map { i in Float.random(in: -1...1, using: &rng) * (i == trial ? 1e4 : 1) }
            let y = (0..<dim).map { _ in Float.random(in: -3...3, using: &rng) }
            var qx = [Int8](repeating: 0, count: dim)
            var qy = [Int8](repeating: 0, count: dim)
            let cx = x.withUnsafeBufferPointer { RowCodes.code($0.baseAddress!, dimension: dim, into: &qx) }!
            let cy = y.withUnsafeBufferPointer { RowCodes.code($0.baseAddress!, dimension: dim, into: &qy) }!
            let exact = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let ints = zip(qx, qy).reduce(0) { $0 + Int($1.0) * Int($1.1) }
            let approx = Double(cx.scale) * Double(cy.scale) * Double(ints)
            let bound = Double(cx.norm) * Double(cy.residual) + Double(cx.residual) * Double(cy.norm + cy.residual)
            #expect(abs(exact - approx) <= bound)
            #expect(cx.residual > 0 && bound < 0.5 * Double(cx.norm) * Double(cy.norm), "the bound says something")
        }
        var q = [Int8](repeating: 1, count: 3)
        #expect([Float(0), 0, 0].withUnsafeBufferPointer { RowCodes.code($0.baseAddress!, dimension: 3, into: &q) }! == (0, 0, 0))
        #expect(q == [0, 0, 0])
        #expect([Float(1e20), 0, 0].withUnsafeBufferPointer { RowCodes.code($0.baseAddress!, dimension: 3, into: &q) } == nil)
    }

    /// The cache keeps codes only for rows the published snapshot holds: a write that appended rows and rolled back
    /// leaves them in the shared matrix, and the next write overwrites them with other vectors.
    @Test func rowCodesCacheRecodesRowsAWriteOverwrote() {
        let space = VectorSpace(name: "s", dimension: 16, metric: .euclidean)
        let identity = ModelIdentity(repo: "test/model", weightsSHA256: String(repeating: "a", count: 64))
        let meta = RowMeta(year: RowMeta.noYear, adult: false, voteCount: 0, language: 0, genreBits: 0)
        func vectors(_ ids: ClosedRange<Int>, _ salt: Float) -> [(id: MovieID, vector: [Float], meta: RowMeta)] {
            ids.map { id in (MovieID(id), (0..<16).map { Float($0 * id) + salt }, meta) }
        }
        let published = SpaceIndex.empty(space, identity: identity, capacity: 100).upserting(vectors(1...10, 0))
        let cache = RowCodesCache()
        let rolledBack = published.upserting(vectors(11...20, 0.5))
        _ = cache.codes(for: rolledBack, before: published)
        let next = published.upserting(vectors(21...30, 7))
        #expect(next.storage === rolledBack.storage, "the test needs the writes to share the matrix")
        let cached = cache.codes(for: next, before: published)
        let fresh = RowCodes(storage: next.storage)
        fresh.extend(to: next.rowCount)
        #expect(cached.count == next.rowCount)
        for r in 0..<next.rowCount {
            #expect(cached.scales[r] == fresh.scales[r] && cached.residuals[r] == fresh.residuals[r])
            #expect((0..<16).allSatisfy { cached.codes[r * 16 + $0] == fresh.codes[r * 16 + $0] }, "row \(r)")
        }
    }
}
