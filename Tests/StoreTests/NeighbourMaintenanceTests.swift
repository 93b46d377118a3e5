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
        let byGEMM = try run(.boundedGEMM)
        #expect(byGEMM.lists.count == byScan.lists.count)
        let differing = byScan.lists.filter { byGEMM.lists[$0.key] != $0.value }.keys.sorted()
        #expect(differing.isEmpty, "lists that differ: \(differing.prefix(10))")
        #expect(Set(byGEMM.dropped) == Set(byScan.dropped))
        #expect(byGEMM.lists.count > 150, "the write changed the new lists and some old ones")

        // Lists built from nothing agree too.
        let ids = Array(written.rowOfMovie.keys.prefix(120))
        let scanLists = NeighbourMaintenance(before: written, after: written, bounds: [:], threads: 2, method: .scan)
            .ownLists(of: ids)
        let gemmLists = NeighbourMaintenance(before: written, after: written, bounds: [:], threads: 2, method: .boundedGEMM)
            .ownLists(of: ids)
        #expect(scanLists.filter { gemmLists[$0.key] != $0.value }.isEmpty && scanLists.count == gemmLists.count)
    }
}
