import PosterSimCore
import CVectorScan
import Dispatch
import Foundation
import Synchronization

/// Exact top-k search over a row-major Float32 matrix: a SIMD scan (C kernels compiled per ISA, picked at run time)
/// followed by a bounded heap per thread and a final merge.
///
/// Guarantees: the result is the exact top-k under the metric (see `DistanceMetric`), ordered best first, ties broken
/// by ascending id; rows whose id is negative (deleted) or that `accept` rejects are never returned; the same inputs
/// give the same output whatever the number of threads. The matrix is only read; callers must keep the pointers valid
/// for the duration of the call.
public enum ExactSearch {
    /// Rows scored per kernel call (and the unit of work threads take); small enough that the scores stay in L1.
    static let blockRows = 1024

    /// Matrix elements (rows × dimension) each extra thread must have to be worth waking: below this the scan takes
    /// tens of microseconds and a thread hand-off costs more than it saves.
    public static let minElementsPerThread = 1 << 18

    /// Threads used by default: the cores this process may use.
    public static let defaultThreads = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// The kernel family in use (for reports).
    public static var kernelName: String { String(cString: vs_isa_name(vs_selected_isa())) }

    /// Exact top-k.
    /// - Parameters:
    ///   - matrix: `rows * dimension` floats, row-major.
    ///   - inverseNorms: for cosine, `1 / ‖row‖` per row (the query's norm is handled here); ignored for euclidean.
    ///   - ids: the movie id of each row; negative marks a deleted row.
    ///   - query: `dimension` floats (for cosine, any non-zero norm).
    ///   - accept: optional per-row predicate (filters), called only for rows that would enter the top-k.
    ///   - rowList: when given, only these rows are scored (one thread; `accept` still applies).
    public static func topK(
        matrix: UnsafePointer<Float>, rows: Int, dimension: Int, metric: DistanceMetric,
        inverseNorms: UnsafePointer<Float>?, ids: UnsafePointer<Int64>, query: UnsafePointer<Float>, k: Int,
        maxThreads: Int = defaultThreads, accept: (@Sendable (Int) -> Bool)? = nil, rowList: [Int]? = nil
    ) -> [SearchMatch] {
        guard rows > 0, k > 0, dimension > 0 else { return [] }
        var queryScale: Float = 1
        if metric == .cosine {
            var sumSquares: Float = 0
            vs_dot_rows(query, 1, dimension, query, &sumSquares)
            queryScale = sumSquares > 0 ? 1 / sumSquares.squareRoot() : 0
        }
        let scan = Scan(
            matrix: matrix, dimension: dimension, metric: metric, inverseNorms: inverseNorms, ids: ids,
            query: query, queryScale: queryScale, k: k, accept: accept)
        if let rowList {
            var heap = TopKHeap(capacity: k)
            scan.run(rowList: rowList, into: &heap)
            return finish([heap], k: k, metric: metric)
        }

        let wanted = (rows * dimension) / minElementsPerThread
        let blocks = (rows + blockRows - 1) / blockRows
        let threads = max(1, min(maxThreads, wanted, blocks))
        if threads == 1 {
            var heap = TopKHeap(capacity: k)
            scan.run(rows: 0..<rows, into: &heap)
            return finish([heap], k: k, metric: metric)
        }
        // Threads take blocks from a shared counter rather than fixed halves: when another process holds a core, the
        // thread that runs finishes the work instead of waiting for the one that does not.
        let heaps = HeapSlots(count: threads, capacity: k)
        let nextBlock = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            while true {
                let b = nextBlock.wrappingAdd(1, ordering: .relaxed).oldValue
                if b >= blocks { break }
                scan.run(rows: (b * blockRows)..<min(rows, (b + 1) * blockRows), into: &heaps.buffer[t])
            }
        }
        return finish(Array(heaps.buffer), k: k, metric: metric)
    }

    /// Merges per-thread heaps: best first, ties by ascending id.
    static func finish(_ heaps: [TopKHeap], k: Int, metric: DistanceMetric) -> [SearchMatch] {
        var all: [(key: Float, id: Int64)] = []
        all.reserveCapacity(heaps.reduce(0) { $0 + $1.count })
        for h in heaps {
            for i in 0..<h.count { all.append((h.keys[i], h.ids[i])) }
        }
        all.sort { $0.key > $1.key || ($0.key == $1.key && $0.id < $1.id) }
        return all.prefix(k).map { e in
            SearchMatch(movieID: MovieID(e.id), score: metric == .cosine ? e.key : -e.key)
        }
    }
}

/// One query's scan over a range of rows. Keys are "higher is better": the cosine score, or the negated squared
/// distance (negation is exact, so ties are preserved).
struct Scan: @unchecked Sendable {
    // Raw pointers owned by the caller of `ExactSearch.topK` for the duration of the call.
    let matrix: UnsafePointer<Float>
    let dimension: Int
    let metric: DistanceMetric
    let inverseNorms: UnsafePointer<Float>?
    let ids: UnsafePointer<Int64>
    let query: UnsafePointer<Float>
    let queryScale: Float
    let k: Int
    let accept: (@Sendable (Int) -> Bool)?

    /// As `run(rows:into:)` for the listed rows only (the rows a selective filter passes): each row through the same
    /// kernel call and key arithmetic, so a row's key is the one the block scan gives it.
    func run(rowList: [Int], into heap: inout TopKHeap) {
        var score: Float = 0
        for row in rowList {
            let base = matrix + row * dimension
            switch metric {
            case .cosine:
                vs_dot_rows(base, 1, dimension, query, &score)
                if let inv = inverseNorms { score = score * queryScale * inv[row] }
            case .euclidean:
                vs_l2sq_rows(base, 1, dimension, query, &score)
                score = -score
            }
            withUnsafeMutablePointer(to: &score) { select(scores: $0, count: 1, firstRow: row, heap: &heap) }
        }
    }

    func run(rows range: Range<Int>, into heap: inout TopKHeap) {
        let block = ExactSearch.blockRows
        withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { scratch in
            guard let scores = scratch.baseAddress else { return }
            var start = range.lowerBound
            while start < range.upperBound {
                let n = min(block, range.upperBound - start)
                let base = matrix + start * dimension
                switch metric {
                case .cosine:
                    vs_dot_rows(base, n, dimension, query, scores)
                    if let inv = inverseNorms {
                        let q = queryScale
                        for i in 0..<n { scores[i] = scores[i] * q * inv[start + i] }
                    }
                case .euclidean:
                    vs_l2sq_rows(base, n, dimension, query, scores)
                    for i in 0..<n { scores[i] = -scores[i] }
                }
                select(scores: scores, count: n, firstRow: start, heap: &heap)
                start += n
            }
        }
    }

    @inline(__always)
    private func select(scores: UnsafeMutablePointer<Float>, count n: Int, firstRow: Int, heap: inout TopKHeap) {
        var threshold = heap.threshold
        for i in 0..<n {
            let key = scores[i]
            // NaN never enters (comparison false); equal keys may still win on id.
            if !(key >= threshold) { continue }
            let row = firstRow + i
            let id = ids[row]
            if id < 0 { continue }
            if heap.isFull && key == threshold && id > heap.rootID { continue }
            if let accept, !accept(row) { continue }
            heap.offer(key: key, id: id)
            threshold = heap.threshold
        }
    }
}

/// A bounded heap of the best `capacity` (key, id) pairs seen; the root is the worst of them.
struct TopKHeap: Sendable {
    private(set) var keys: [Float] = []
    private(set) var ids: [Int64] = []
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        keys.reserveCapacity(capacity)
        ids.reserveCapacity(capacity)
    }

    var count: Int { keys.count }
    var isFull: Bool { keys.count >= capacity }
    /// Keys below this cannot enter.
    var threshold: Float { isFull ? keys[0] : -.infinity }
    var rootID: Int64 { ids[0] }

    /// a is worse than b: lower key, or same key and larger id.
    @inline(__always)
    private func worse(_ a: Int, _ b: Int) -> Bool {
        keys[a] < keys[b] || (keys[a] == keys[b] && ids[a] > ids[b])
    }

    mutating func offer(key: Float, id: Int64) {
        if !isFull {
            keys.append(key)
            ids.append(id)
            var c = keys.count - 1
            while c > 0 {
                let p = (c - 1) / 2
                if worse(c, p) {
                    keys.swapAt(c, p)
                    ids.swapAt(c, p)
                    c = p
                } else { break }
            }
            return
        }
        // Replace the root if the newcomer is better.
        if key < keys[0] || (key == keys[0] && id > ids[0]) { return }
        keys[0] = key
        ids[0] = id
        var p = 0
        let n = keys.count
        while true {
            let l = 2 * p + 1
            if l >= n { break }
            var w = l
            if l + 1 < n && worse(l + 1, l) { w = l + 1 }
            if worse(w, p) {
                keys.swapAt(w, p)
                ids.swapAt(w, p)
                p = w
            } else { break }
        }
    }
}

/// Per-thread heaps written by `concurrentPerform`; each thread touches only its own element, through a raw buffer
/// (a Swift array property would be one shared, exclusivity-checked value).
final class HeapSlots: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<TopKHeap>
    init(count: Int, capacity: Int) {
        buffer = .allocate(capacity: count)
        _ = buffer.initialize(from: (0..<count).map { _ in TopKHeap(capacity: capacity) })
    }
    deinit {
        buffer.deinitialize()
        buffer.deallocate()
    }
}
