// postersim-bench-pg: the embedded store next to PostgreSQL + pgvector on the same vectors, in the same run.
//
//   postersim-bench-pg --pg postgres://… [--sizes 10000,100000] [--queries 200] [--k 10] [--ef-search 100]
//
// For each size and model space (clip 512-d cosine, resnet50 2048-d euclidean, vgg16 4096-d euclidean) it generates
// the same seeded unit vectors and queries as `postersim-bench-store`, loads them into a SQLiteVectorStore and into a
// PostgresVectorStore (fresh schema, batches of 1,000 through `upsertEmbeddings`; HNSW maintained as rows arrive) and
// reports ingest throughput, query latency p50/p99 (one query at a time) and recall@10 against exact search (the
// embedded store is exact; see StoreTests' NumPy reference). PostgreSQL runs exact scan and its index path; for
// 4,096-d the two candidate plans (exact scan; HNSW on binary_quantize + exact re-ranking) are both measured.
import PosterSimCore
import Dispatch
import Foundation
import PostgresStore
import Store
import TestSupport

struct Options {
    var url = ProcessInfo.processInfo.environment["POSTERSIM_TEST_PG_URL"] ?? ""
    var sizes = [10_000, 100_000]
    var queries = 200
    var k = 10
    var efSearch = 100
    var rerank = 100
    var models = ["clip", "resnet50", "vgg16"]
}

func parse() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    func ints(_ s: String?) -> [Int] { (s ?? "").split(separator: ",").compactMap { Int($0) } }
    while let a = args.popFirst() {
        switch a {
        case "--pg": o.url = args.popFirst() ?? o.url
        case "--sizes": o.sizes = ints(args.popFirst())
        case "--queries": o.queries = Int(args.popFirst() ?? "") ?? o.queries
        case "--k": o.k = Int(args.popFirst() ?? "") ?? o.k
        case "--ef-search": o.efSearch = Int(args.popFirst() ?? "") ?? o.efSearch
        case "--rerank": o.rerank = Int(args.popFirst() ?? "") ?? o.rerank
        case "--models": o.models = (args.popFirst() ?? "").split(separator: ",").map(String.init)
        default: FileHandle.standardError.write(Data("unknown option \(a)\n".utf8)); exit(2)
        }
    }
    return o
}

func unitRows(_ rows: Int, _ dim: Int, seed: UInt64) -> [[Float]] {
    var rng = SplitMix64(seed: seed)
    return (0..<rows).map { _ in
        var v = (0..<dim).map { _ in rng.nextFloat() }
        let inv = 1 / v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for i in v.indices { v[i] *= inv }
        return v
    }
}

func emit(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }
func note(_ s: String) { FileHandle.standardError.write(Data(("bench-pg: " + s + "\n").utf8)) }
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
func fmt(_ x: Double) -> String { String(format: x < 10 ? "%.2f" : "%.1f", x) }
func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }

struct Result {
    var label: String
    var ingestPerSecond: Double?
    var p50 = 0.0
    var p99 = 0.0
    var recall = 0.0
}

func percentiles(_ t: [Double]) -> (Double, Double) {
    let s = t.sorted()
    return (s[s.count / 2], s[min(s.count - 1, Int((0.99 * Double(s.count)).rounded(.up)) - 1)])
}

func load(_ store: any VectorStore, space: VectorSpace, identity: ModelIdentity, vectors: [[Float]]) async throws
    -> Double
{
    let t0 = now()
    try await store.registerSpace(space, identity: identity)
    try await store.upsertMovies((1...vectors.count).map { Movie(id: $0, title: "m\($0)", releaseDate: "2000-01-01") })
    for start in stride(from: 0, to: vectors.count, by: 1000) {
        let batch = (start..<min(vectors.count, start + 1000)).map { EmbeddingInput(movieID: $0 + 1, vector: vectors[$0]) }
        try await store.upsertEmbeddings(batch, space: space.name, identity: identity)
    }
    return Double(vectors.count) / (now() - t0)
}

func measure(_ label: String, _ store: any VectorStore, space: String, queries: [[Float]], k: Int,
             truth: [[Int]]?, ingest: Double?) async throws -> (Result, [[Int]]) {
    for q in queries.prefix(3) { _ = try await store.query(space: space, vector: q, k: k) }
    var times: [Double] = []
    var found: [[Int]] = []
    for q in queries {
        let t0 = now()
        let r = try await store.query(space: space, vector: q, k: k)
        times.append((now() - t0) * 1000)
        found.append(r.map(\.movieID))
    }
    let (p50, p99) = percentiles(times)
    var recall = 1.0
    if let truth {
        var hit = 0, total = 0
        for (a, b) in zip(found, truth) { hit += Set(a).intersection(b).count; total += b.count }
        recall = Double(hit) / Double(max(1, total))
    }
    return (Result(label: label, ingestPerSecond: ingest, p50: p50, p99: p99, recall: recall), found)
}

let o = parse()
guard !o.url.isEmpty else {
    note("give --pg postgres://… (or POSTERSIM_TEST_PG_URL; scripts/pgserver start prints one)")
    exit(2)
}
let work = FileManager.default.temporaryDirectory.appendingPathComponent("postersim-bench-pg-\(getpid())")
try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: work) }
let identity = ModelIdentity(repo: "bench", weightsSHA256: "00")
let models: [String: VectorSpace] = [
    "clip": VectorSpace(name: "clip", dimension: 512, metric: .cosine),
    "resnet50": VectorSpace(name: "resnet50", dimension: 2048, metric: .euclidean),
    "vgg16": VectorSpace(name: "vgg16", dimension: 4096, metric: .euclidean),
]

emit("# postersim-bench-pg")
emit("cores: \(ProcessInfo.processInfo.activeProcessorCount), k = \(o.k), \(o.queries) queries per cell, one at a time; "
    + "PostgreSQL: hnsw.ef_search = \(o.efSearch), re-rank candidates = \(o.rerank), HNSW m = 16, ef_construction = 64")
emit("")
emit(pad("n", 7) + "  " + "model".padding(toLength: 9, withPad: " ", startingAt: 0) + "  "
    + "store / plan".padding(toLength: 40, withPad: " ", startingAt: 0) + pad("ingest/s", 10) + pad("p50 ms", 9)
    + pad("p99 ms", 9) + pad("recall@10", 11))
for n in o.sizes {
    for name in o.models {
        guard let space = models[name] else { continue }
        let dim = space.dimension
        note("\(n) x \(dim) (\(name)): generating")
        let vectors = unitRows(n, dim, seed: UInt64(n * 31 + dim))
        let queries = unitRows(o.queries, dim, seed: UInt64(n * 17 + dim + 1))
        var results: [Result] = []

        note("\(n) x \(dim): embedded store")
        let path = work.appendingPathComponent("\(name)-\(n).sqlite").path
        let sqlite = try SQLiteVectorStore(path: path)
        let sqliteIngest = try await load(sqlite, space: space, identity: identity, vectors: vectors)
        let (exactResult, truth) = try await measure(
            "embedded (SQLite, exact in memory)", sqlite, space: name, queries: queries, k: o.k, truth: nil,
            ingest: sqliteIngest)
        results.append(exactResult)

        var plans: [PostgresStoreConfiguration.LargeSpaceIndex] = [.exact]
        if dim > 4000 { plans.append(.binaryQuantized) }
        for plan in plans {
            var config = try PostgresStoreConfiguration(url: o.url)
            config.schema = "bench_\(name)_\(n)_\(plan.rawValue.lowercased())_\(getpid())"
            config.efSearch = o.efSearch
            config.rerankCandidates = o.rerank
            config.largeSpaceIndex = plan
            config.exactScanBelow = 0
            note("\(n) x \(dim): PostgreSQL (\(plan == .binaryQuantized ? "HNSW on binary_quantize" : "default index"))")
            let pg = try await PostgresVectorStore.open(configuration: config)
            let pgIngest = try await load(pg, space: space, identity: identity, vectors: vectors)
            try await pg.analyze()
            let indexName: String
            switch (dim, plan) {
            case (...2000, _): indexName = "HNSW vector"
            case (...4000, _): indexName = "HNSW halfvec"
            case (_, .binaryQuantized): indexName = "HNSW bit(\(dim)) + re-rank"
            default: indexName = "no index"
            }
            if dim <= 4000 || plan == .binaryQuantized {
                results.append(try await measure(
                    "PostgreSQL \(indexName)", pg, space: name, queries: queries, k: o.k, truth: truth,
                    ingest: pgIngest).0)
            }
            var exactConfig = config
            exactConfig.approximateSearch = false
            let pgExact = try await PostgresVectorStore.open(configuration: exactConfig)
            results.append(try await measure(
                "PostgreSQL exact scan", pgExact, space: name, queries: queries, k: o.k, truth: truth,
                ingest: dim <= 4000 || plan == .binaryQuantized ? nil : pgIngest).0)
            await pgExact.shutdown()
            await pg.shutdown()
            if plan == .binaryQuantized || dim > 4000 {
                // Keep the server small between cells.
            }
        }
        for r in results {
            emit(pad("\(n)", 7) + "  " + name.padding(toLength: 9, withPad: " ", startingAt: 0) + "  "
                + r.label.padding(toLength: 40, withPad: " ", startingAt: 0)
                + pad(r.ingestPerSecond.map { String(format: "%.0f", $0) } ?? "", 10) + pad(fmt(r.p50), 9)
                + pad(fmt(r.p99), 9) + pad(String(format: "%.3f", r.recall), 11))
        }
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.removeItem(atPath: path + "-wal")
        try? FileManager.default.removeItem(atPath: path + "-shm")
    }
}
