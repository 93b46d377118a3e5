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
}
