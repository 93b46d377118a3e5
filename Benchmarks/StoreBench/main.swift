// `make bench-store`: exact search latency of the store's scan next to faiss-cpu on the same vectors, in one run.
//
//   postersim-bench-store [--sizes 10000,100000] [--dims 512,2048,4096] [--queries 200] [--k 10]
//                         [--python PATH] [--faiss-script Benchmarks/scripts/faiss_flat.py] [--work DIR] [--no-faiss]
//                         [--kernels-only] [--skip-kernels] [--skip-by-id]
//
// For each size and dimension: random unit-norm Float32 vectors (so faiss's inner product ranks like the store's
// cosine), queries timed one at a time (p50/p99 in ms) with the store's exact search on 1 and 2 threads, then faiss
// IndexFlatIP / IndexFlatL2 on the same vectors (written as .npy) with 1 and 2 OpenMP threads. Also: a kernel
// comparison (Swift SIMD16, C per-ISA kernels, OpenBLAS cblas_sgemv) and query-by-id p50 through SQLiteVectorStore.
import PosterSimCore
import TestSupport
import COpenBLAS
import CVectorScan
import Dispatch
import Foundation
import Store

// MARK: options

struct Options {
    var sizes = [10_000, 100_000]
    var dims = [512, 2048, 4096]
    var queries = 200
    var k = 10
    var python = ProcessInfo.processInfo.environment["PYTHON"] ?? ".venv-reference/bin/python"
    var faissScript = "Benchmarks/scripts/faiss_flat.py"
    var work = ".build/bench-store"
    var faiss = true
    var kernels = true
    var search = true
    var byID = true
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    func ints(_ s: String?) -> [Int] { (s ?? "").split(separator: ",").compactMap { Int($0) } }
    while let a = args.popFirst() {
        switch a {
        case "--sizes": o.sizes = ints(args.popFirst())
        case "--dims": o.dims = ints(args.popFirst())
        case "--queries": o.queries = Int(args.popFirst() ?? "") ?? o.queries
        case "--k": o.k = Int(args.popFirst() ?? "") ?? o.k
        case "--python": o.python = args.popFirst() ?? o.python
        case "--faiss-script": o.faissScript = args.popFirst() ?? o.faissScript
        case "--work": o.work = args.popFirst() ?? o.work
        case "--no-faiss": o.faiss = false
        case "--kernels-only": o.search = false; o.byID = false
        case "--skip-kernels": o.kernels = false
        case "--skip-by-id": o.byID = false
        default:
            FileHandle.standardError.write(Data("postersim-bench-store: unknown option \(a)\n".utf8))
            exit(2)
        }
    }
    return o
}

// MARK: data


/// `rows` unit-norm rows of `dim` floats, in memory allocated the way the store allocates its matrices
/// (`vs_matrix_alloc`, huge pages where the OS allows), so the scan timed here is the one the store does. Free with
/// `freeRows`.
func unitRows(_ rows: Int, _ dim: Int, seed: UInt64) -> UnsafeMutableBufferPointer<Float> {
    guard let raw = vs_matrix_alloc(rows * dim * MemoryLayout<Float>.stride) else { fatalError("out of memory") }
    let buf = UnsafeMutableBufferPointer(start: raw.bindMemory(to: Float.self, capacity: rows * dim), count: rows * dim)
    var rng = SplitMix64(seed: seed)
    for r in 0..<rows {
        var s: Float = 0
        for i in 0..<dim {
            let x = rng.nextFloat()
            buf[r * dim + i] = x
            s += x * x
        }
        let inv = 1 / s.squareRoot()
        for i in 0..<dim { buf[r * dim + i] *= inv }
    }
    return buf
}

func freeRows(_ buf: UnsafeMutableBufferPointer<Float>) { vs_matrix_free(buf.baseAddress) }

/// Writes a C-order `<f4` .npy (format 1.0) without copying the data.
func writeNPY(_ data: UnsafeBufferPointer<Float>, rows: Int, dim: Int, to path: String) throws {
    var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(dim)), }"
    let total = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
    let len = UInt16(header.utf8.count)
    bytes += [UInt8(len & 0xFF), UInt8(len >> 8)] + Array(header.utf8)
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
        throw BenchError("cannot create \(path)")
    }
    guard let h = FileHandle(forWritingAtPath: path) else { throw BenchError("cannot write \(path)") }
    defer { try? h.close() }
    try h.seekToEnd()
    try h.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: data.baseAddress!),
                                 count: data.count * 4, deallocator: .none))
}

/// Unbuffered output, so progress shows when stdout is a file or a pipe.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

// MARK: timing

func nowNs() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

struct Percentiles {
    let p50: Double
    let p99: Double
    init(p50: Double, p99: Double) {
        self.p50 = p50
        self.p99 = p99
    }
    init(_ samples: [Double]) {
        let s = samples.sorted()
        p50 = s[s.count / 2]
        p99 = s[min(s.count - 1, Int((0.99 * Double(s.count)).rounded(.up)) - 1)]
    }
}

func fmt(_ x: Double) -> String { String(format: x < 10 ? "%.3f" : "%.2f", x) }
func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }

// MARK: kernels

/// The store's scan written in Swift with SIMD16<Float>, compiled for the default target (baseline x86-64).
func swiftSIMDDot(_ m: UnsafePointer<Float>, _ rows: Int, _ dim: Int, _ q: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
    let raw = UnsafeRawPointer(m)
    let qraw = UnsafeRawPointer(q)
    for r in 0..<rows {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
        var i = 0
        let rowBase = raw + r * dim * 4
        while i + 32 <= dim {
            a0 += rowBase.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                * qraw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            a1 += rowBase.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self)
                * qraw.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self)
            i += 32
        }
        var s = (a0 + a1).sum()
        while i < dim { s += m[r * dim + i] * q[i]; i += 1 }
        out[r] = s
    }
}

func kernelComparison(_ o: Options) {
    emit("\n## Scan kernels: one query against 10k rows, scores only, one thread (p50 ms over \(o.queries) queries)")
    openblas_set_num_threads(1)
    let isas: [(String, vs_isa)] = [("C scalar", VS_ISA_SCALAR), ("C avx2+fma", VS_ISA_AVX2_FMA), ("C avx512f", VS_ISA_AVX512F)]
        .filter { vs_isa_supported($0.1) != 0 }
    var header = pad("dim", 6) + pad("Swift SIMD16", 14)
    for (n, _) in isas { header += pad(n, 12) }
    header += pad("cblas_sgemv", 13)
    emit(header)
    let rows = 10_000
    for dim in o.dims {
        let m = unitRows(rows, dim, seed: 1)
        let q = unitRows(o.queries, dim, seed: 2)
        defer { freeRows(m); freeRows(q) }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: rows)
        defer { out.deallocate() }
        func time(_ body: (UnsafePointer<Float>) -> Void) -> Double {
            for j in 0..<3 { body(q.baseAddress! + j * dim) }
            var t: [Double] = []
            for j in 0..<o.queries {
                let t0 = nowNs()
                body(q.baseAddress! + j * dim)
                t.append(Double(nowNs() - t0) / 1e6)
            }
            return Percentiles(t).p50
        }
        var line = pad("\(dim)", 6)
        line += pad(fmt(time { swiftSIMDDot(m.baseAddress!, rows, dim, $0, out) }), 14)
        for (_, isa) in isas { line += pad(fmt(time { vs_dot_rows_isa(isa, m.baseAddress!, rows, dim, $0, out) }), 12) }
        line += pad(fmt(time {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(dim), 1, m.baseAddress!, Int32(dim), $0, 1, 0, out, 1)
        }), 13)
        emit(line)
    }
}

// MARK: search vs faiss

struct Row {
    var n: Int, dim: Int
    var swift: [String: [Int: Percentiles]] = [:]  // metric -> threads -> p
    var faiss: [String: [Int: Percentiles]] = [:]
    var agreement: [String: Double] = [:]
}

func runFaiss(_ o: Options, base: String, queries: String, out: String) throws -> [String: Any] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: o.python)
    p.arguments = [o.faissScript, "--base", base, "--queries", queries, "--k", "\(o.k)", "--threads", "1,2", "--out", out]
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw BenchError("faiss script failed (\(p.terminationStatus))") }
    let data = try Data(contentsOf: URL(fileURLWithPath: out))
    guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw BenchError("bad faiss JSON") }
    return json
}

func searchBenchmark(_ o: Options) throws -> [Row] {
    try FileManager.default.createDirectory(atPath: o.work, withIntermediateDirectories: true)
    var rows: [Row] = []
    for n in o.sizes {
        for dim in o.dims {
            FileHandle.standardError.write(Data("bench: \(n) x \(dim)\n".utf8))
            let m = unitRows(n, dim, seed: UInt64(n * 31 + dim))
            let q = unitRows(o.queries, dim, seed: UInt64(n * 17 + dim + 1))
            defer { freeRows(m); freeRows(q) }
            let ids = UnsafeMutableBufferPointer<Int64>.allocate(capacity: n)
            let inv = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
            defer { ids.deallocate(); inv.deallocate() }
            for r in 0..<n {
                ids[r] = Int64(r)
                var s: Float = 0
                vs_dot_rows(m.baseAddress! + r * dim, 1, dim, m.baseAddress! + r * dim, &s)
                inv[r] = 1 / s.squareRoot()
            }
            var row = Row(n: n, dim: dim)
            var found: [String: [[Int]]] = [:]
            for (name, metric) in [("ip", DistanceMetric.cosine), ("l2", DistanceMetric.euclidean)] {
                for threads in [1, 2] {
                    func one(_ j: Int) -> [SearchMatch] {
                        ExactSearch.topK(
                            matrix: m.baseAddress!, rows: n, dimension: dim, metric: metric,
                            inverseNorms: inv.baseAddress!, ids: ids.baseAddress!, query: q.baseAddress! + j * dim,
                            k: o.k, maxThreads: threads)
                    }
                    for j in 0..<min(5, o.queries) { _ = one(j) }
                    var t: [Double] = []
                    var res: [[Int]] = []
                    for j in 0..<o.queries {
                        let t0 = nowNs()
                        let r = one(j)
                        t.append(Double(nowNs() - t0) / 1e6)
                        res.append(r.map(\.movieID))
                    }
                    row.swift[name, default: [:]][threads] = Percentiles(t)
                    if threads == 1 { found[name] = res }
                }
            }
            if o.faiss {
                let base = "\(o.work)/base-\(n)x\(dim).npy", qs = "\(o.work)/queries-\(dim).npy"
                let out = "\(o.work)/faiss-\(n)x\(dim).json"
                try writeNPY(UnsafeBufferPointer(m), rows: n, dim: dim, to: base)
                try writeNPY(UnsafeBufferPointer(q), rows: o.queries, dim: dim, to: qs)
                let json = try runFaiss(o, base: base, queries: qs, out: out)
                try? FileManager.default.removeItem(atPath: base)
                for name in ["ip", "l2"] {
                    if let per = json[name] as? [String: [String: Double]] {
                        for (t, v) in per {
                            if let t = Int(t), let p50 = v["p50"], let p99 = v["p99"] {
                                row.faiss[name, default: [:]][t] = Percentiles(p50: p50, p99: p99)
                            }
                        }
                    }
                    if let theirs = json[name + "_ids"] as? [[Int]], let ours = found[name] {
                        var same = 0, total = 0
                        for (a, b) in zip(ours, theirs) {
                            same += Set(a).intersection(b).count
                            total += b.count
                        }
                        row.agreement[name] = total > 0 ? Double(same) / Double(total) : 0
                    }
                }
            }
            rows.append(row)
        }
    }
    return rows
}

func printTable(_ rows: [Row]) {
    emit("\n## Exact top-k, one query at a time (ms). Store: cosine (vs faiss IndexFlatIP on the same unit vectors) and")
    emit("## squared euclidean (vs IndexFlatL2); t = threads. ratio = faiss p50 / store p50 (> 1: store faster).")
    for (name, label) in [("ip", "cosine / IndexFlatIP"), ("l2", "euclidean / IndexFlatL2")] {
        emit("\n### \(label)")
        let h = pad("n", 7) + pad("dim", 6) + pad("store t1 p50", 14) + pad("p99", 8) + pad("store t2 p50", 14)
            + pad("p99", 8) + pad("faiss t1 p50", 14) + pad("p99", 8) + pad("faiss t2 p50", 14) + pad("p99", 8)
            + pad("t1 ratio", 10) + pad("t2 ratio", 10) + pad("best ratio", 12) + pad("same top-k", 12)
        emit(h)
        for r in rows {
            let s1 = r.swift[name]?[1], s2 = r.swift[name]?[2]
            let f1 = r.faiss[name]?[1], f2 = r.faiss[name]?[2]
            func c(_ p: Percentiles?) -> (String, String) { p.map { (fmt($0.p50), fmt($0.p99)) } ?? ("-", "-") }
            func ratio(_ f: Percentiles?, _ s: Percentiles?) -> String {
                guard let f, let s else { return "-" }
                return String(format: "%.2fx", f.p50 / s.p50)
            }
            let bestS = [s1, s2].compactMap { $0 }.min { $0.p50 < $1.p50 }
            let bestF = [f1, f2].compactMap { $0 }.min { $0.p50 < $1.p50 }
            var line = pad("\(r.n)", 7) + pad("\(r.dim)", 6)
            line += pad(c(s1).0, 14) + pad(c(s1).1, 8) + pad(c(s2).0, 14) + pad(c(s2).1, 8)
            line += pad(c(f1).0, 14) + pad(c(f1).1, 8) + pad(c(f2).0, 14) + pad(c(f2).1, 8)
            line += pad(ratio(f1, s1), 10) + pad(ratio(f2, s2), 10) + pad(ratio(bestF, bestS), 12)
            line += pad(r.agreement[name].map { String(format: "%.1f%%", $0 * 100) } ?? "-", 12)
            emit(line)
        }
    }
}

// MARK: query by id through the store

func queryByID(_ o: Options) async throws {
    emit("\n## Query by id through SQLiteVectorStore, 10k movies, k = \(o.k), cosine (ms)")
    emit(pad("dim", 6) + pad("p50", 9) + pad("p99", 9))
    for dim in o.dims {
        let n = 10_000
        let path = "\(o.work)/byid-\(dim).sqlite"
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let store = try SQLiteVectorStore(path: path)
        let space = VectorSpace(name: "s", dimension: dim, metric: .cosine)
        let identity = ModelIdentity(repo: "bench", weightsSHA256: "00")
        try await store.registerSpace(space, identity: identity)
        try await store.upsertMovies((1...n).map { Movie(id: $0, title: "m\($0)", releaseDate: "2000-01-01", genreIDs: [18]) })
        let m = unitRows(n, dim, seed: 99)
        defer { freeRows(m) }
        for start in stride(from: 0, to: n, by: 1000) {
            let batch = (start..<min(n, start + 1000)).map { r in
                EmbeddingInput(movieID: r + 1, vector: Array(UnsafeBufferPointer(start: m.baseAddress! + r * dim, count: dim)))
            }
            try await store.upsertEmbeddings(batch, space: "s", identity: identity)
        }
        var rng = SplitMix64(seed: 5)
        for _ in 0..<5 { _ = try await store.query(space: "s", movieID: 1, k: o.k) }
        var t: [Double] = []
        for _ in 0..<o.queries {
            let id = Int(rng.next() % UInt64(n)) + 1
            let t0 = nowNs()
            let r = try await store.query(space: "s", movieID: id, k: o.k)
            t.append(Double(nowNs() - t0) / 1e6)
            guard r.first?.movieID == id else { throw BenchError("query by id \(id) did not return itself first") }
        }
        let p = Percentiles(t)
        emit(pad("\(dim)", 6) + pad(fmt(p.p50), 9) + pad(fmt(p.p99), 9))
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }
}

// MARK: main

let options = parseOptions()
emit("# postersim-bench-store")
emit("cores: \(ProcessInfo.processInfo.activeProcessorCount), store kernel: \(ExactSearch.kernelName), k = \(options.k), \(options.queries) queries per cell")
if options.kernels { kernelComparison(options) }
if options.search {
    let rows = try searchBenchmark(options)
    printTable(rows)
}
if options.byID { try await queryByID(options) }
