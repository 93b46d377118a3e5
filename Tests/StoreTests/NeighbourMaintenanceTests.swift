import PosterSimCore
import TestSupport
import Foundation
import Testing
import CVectorScan
@testable import Store

/// The batched kernel behind neighbour lists, and lists built from real-valued vectors in the models' dimensions
/// (the contract's small integer vectors make every dot product exact, which would hide a change in the order of
/// operations).
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
}

extension NeighbourMaintenanceTests {
    /// Batches smaller and larger than a list, in both metrics; every list checked against the scan.
    @Test(arguments: [
        (8, 150, 50, DistanceMetric.cosine), (512, 350, 70, .cosine), (8, 600, 500, .euclidean),
        (515, 400, 130, .euclidean),
    ])
    func listsStayExactWithRealValuedVectors(dim: Int, n: Int, batch: Int, metric: DistanceMetric) async throws {
        let store = try SQLiteVectorStore(path: try TempStore.newPath())
        let space = VectorSpace(name: "clip", dimension: dim, metric: metric)
        let id = VectorStoreContract.idA
        try await store.registerSpace(space, identity: id)
        var rng = SplitMix64(seed: 3)
        try await store.upsertMovies((1...n).map { VectorStoreContract.movie($0) })
        for start in stride(from: 1, through: n, by: batch) {
            let ids = Array(start..<min(n + 1, start + batch))
            try await store.upsertEmbeddings(ids.map { EmbeddingInput(movieID: $0, vector: (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }) }, space: "clip", identity: id)
        }
        // Replace a few posters and delete some films, then check every list.
        try await store.upsertEmbeddings(stride(from: 1, through: n, by: 9).map { EmbeddingInput(movieID: $0, vector: (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }) }, space: "clip", identity: id)
        try await store.deleteMovies(ids: Array(stride(from: 2, through: n, by: 3)))
        let check = try await store.checkNeighbourLists(space: "clip", sample: nil)
        #expect(check.isConsistent && check.lists == check.vectors, "dim \(dim) n \(n) batch \(batch): \(check)")
    }
}

