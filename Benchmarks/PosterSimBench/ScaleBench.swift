// `postersim-bench scale`, run by `make bench-scale` once per size: a seeded synthetic catalogue written straight into a
// store (neighbour lists maintained as vectors arrive), then what a user of that store sees: build cost, size on disk,
// `postersim serve` start-up and memory, queries by id and by vector, filtered queries; faiss-cpu (flat and HNSW) on
// the same vectors in the same run. Prints one JSON object (see Benchmarks/README.md for the fields).
import ArgumentParser
import CommandSupport
import Foundation
import PosterSimCore
import Store
import TestSupport

struct ScaleBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale", abstract: "Synthetic catalogue of N films: build, start-up, memory and query latency.")

    @Option(help: "Films in the catalogue.") var movies = 10_000
    @Option(help: "Models (spaces), comma-separated.") var models = "clip,resnet50,vgg16"
    @Option(help: "Films per write transaction.") var batch = 500
    @Option(help: "Queries sampled for each latency figure.") var queries = 500
    @Option(help: "Seed of the synthetic catalogue.") var seed: UInt64 = 16
    @Option(help: "The postersim binary whose `serve` start-up and memory are measured (default: beside this one).")
    var postersim: String?
    @Option(help: "Python with faiss-cpu and numpy for the comparison; none to skip it.") var python = "python3"
    @Option(help: "The faiss script.") var faissScript = "Benchmarks/scripts/faiss_scale.py"
    @Option(help: "Folder for the store (when --store/--db is not given) and the vectors handed to faiss.")
    var workDir: String?
    @Flag(help: "Print only the JSON object.") var json = false
    @Option(help: "How list upkeep scores writes: auto, scan, gemm (float32 screen) or int8 (SQLite; to compare them).")
    var scoring = "auto"
    @Option(help: "Films from which unfiltered queries by vector go through the lists (SQLite; default: the store's).")
    var approximateFrom: Int?
    @Flag(help: "Measure the queries on a store (--db) this bench already built for the same --movies, --models and --seed.")
    var reuse = false
    @OptionGroup var store: StoreOptions

    func log(_ text: String) {
        if !json { FileHandle.standardError.write(Data((text + "\n").utf8)) }
    }

    func run() async throws {
        let work = workDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("postersim-scale-\(getpid())").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let given = store.store != nil || store.db != nil
        let location = given ? store.location : .sqlite(path: work + "/scale-\(movies).sqlite")
        if case .sqlite(let path) = location, !given {
            for suffix in ["", "-wal", "-shm", ".index"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
        let names = try ModelName.parseList(models)
        var catalogue = SyntheticCatalogue(seed: seed, movies: movies)
        let method: NeighbourScoringMethod?
        if scoring == "auto" {
            method = nil
        } else if let m = NeighbourScoringMethod(rawValue: scoring) {
            method = m
        } else {
            throw ValidationError("--scoring must be auto, scan or gemm")
        }
        let opened: any CatalogueStore
        if case .sqlite(let path) = location, method != nil || approximateFrom != nil {
            opened = try SQLiteVectorStore(
                path: path, neighbourScoring: method,
                approximateSearchFrom: approximateFrom ?? SQLiteVectorStore.defaultApproximateSearchFrom)
        } else {
            opened = try await location.open()
        }
        guard let sqlite = opened as? SQLiteVectorStore else {
            throw ValidationError("bench-scale measures the SQLite store; the PostgreSQL store keeps no lists yet")
        }
        var report = ScaleReport(movies: movies)
        report.scoring = scoring

        // Build: movies, then each space's vectors, batch by batch (the lists are maintained in the same writes).
        let started = ContinuousClock.now
        var spaces: [VectorSpace] = []
        for name in names {
            let space = VectorSpace(name: name.rawValue, dimension: name.embeddingDimension, metric: name.metric)
            try await sqlite.registerSpace(space, identity: catalogue.identity(space))
            spaces.append(space)
        }
        // `--reuse` on a store this bench already built with the same size, models and seed: measure the queries again
        // without rebuilding (build figures are then left at 0).
        let stats = try await sqlite.stats()
        let built = reuse && stats.movies == movies
            && spaces.allSatisfy { s in stats.spaces.contains { $0.space.name == s.name && $0.vectors == movies } }
        if reuse && !built { throw ValidationError("--reuse: the store does not hold this catalogue") }
        for start in stride(from: 0, to: built ? 0 : movies, by: batch) {
            let ids = Array(start..<min(movies, start + batch)).map { $0 + 1 }
            try await sqlite.upsertMovies(ids.map { catalogue.movie($0) })
            for space in spaces {
                let inputs = ids.map { EmbeddingInput(movieID: $0, vector: catalogue.vector($0, in: space)) }
                try await sqlite.upsertEmbeddings(inputs, space: space.name, identity: catalogue.identity(space))
            }
            if (start / batch) % 10 == 0 { log("built \(ids.last!) / \(movies) films") }
        }
        if !built { report.buildSeconds = (ContinuousClock.now - started).seconds }
        report.listsSeconds = sqlite.neighbourListSeconds
        report.listsMsPerInsert = report.listsSeconds * 1000 / Double(movies)
        let pairs = sqlite.neighbourListPairs
        report.listsRescoredFraction = Double(pairs.rescored) / Double(max(1, pairs.scored))
        report.diskBytes = try await sqlite.stats().bytesOnDisk ?? 0
        log("built in \(report.buildSeconds) s, lists \(report.listsSeconds) s")

        // Queries: sampled films, by id (from the lists), by vector (exact scan), filtered by id.
        var sampler = SplitMix64(seed: seed ^ 0x5ca1e)
        let sample = (0..<queries).map { _ in MovieID(Int.random(in: 1...movies, using: &sampler)) }
        var byID: [Double] = []
        var byVector: [Double] = []
        var byVectorExact: [Double] = []
        var vectorHits = 0
        var vectorAsked = 0
        var farHits = 0
        var farAsked = 0
        var exactMatches = 0
        var checked = 0
        var filtered: [String: [Double]] = ["1%": [], "50%": []]
        var filteredByVector: [String: [Double]] = ["1%": [], "50%": []]
        var filteredByVectorExact: [String: [Double]] = ["1%": [], "50%": []]
        var filteredHits: [String: Int] = [:]
        var filteredAsked: [String: Int] = [:]
        let filters = catalogue.voteFilters()
        for space in spaces {
            let vectors = try await sqlite.fetchVectors(ids: sample, space: space.name)
            for id in sample {
                let t0 = ContinuousClock.now
                let listed = try await sqlite.query(space: space.name, movieID: id, k: 10, filter: .none, excludeSelf: false)
                byID.append((ContinuousClock.now - t0).milliseconds)
                // The exact answer: the film itself first, then the scan by its vector without it.
                let v = vectors[id]!
                let scan = try await sqlite.query(space: space.name, vector: v, k: 11, filter: .none)
                let expected = [id] + scan.map(\.movieID).filter { $0 != id }.prefix(9)
                checked += 1
                if listed.map(\.movieID) == expected { exactMatches += 1 }
                for (label, filter) in filters {
                    let t1 = ContinuousClock.now
                    _ = try await sqlite.query(space: space.name, movieID: id, k: 10, filter: filter, excludeSelf: false)
                    filtered[label]!.append((ContinuousClock.now - t1).milliseconds)
                }
            }
            for id in sample.prefix(max(1, queries / 2)) {
                let q = catalogue.perturbed(vectors[id]!)
                let t0 = ContinuousClock.now
                let answer = try await sqlite.query(space: space.name, vector: q, k: 10, filter: .none)
                byVector.append((ContinuousClock.now - t0).milliseconds)
                let t1 = ContinuousClock.now
                let exact = try await sqlite.query(space: space.name, vector: q, k: 10, filter: .none, exact: true)
                byVectorExact.append((ContinuousClock.now - t1).milliseconds)
                vectorHits += Set(answer.map(\.movieID)).intersection(exact.map(\.movieID)).count
                vectorAsked += exact.count
                // The same query with each filter (a Pinecone query with a metadata filter), against the filtered scan.
                for (label, filter) in filters {
                    let t2 = ContinuousClock.now
                    let answer = try await sqlite.query(space: space.name, vector: q, k: 10, filter: filter)
                    filteredByVector[label]!.append((ContinuousClock.now - t2).milliseconds)
                    let t3 = ContinuousClock.now
                    let exact = try await sqlite.query(space: space.name, vector: q, k: 10, filter: filter, exact: true)
                    filteredByVectorExact[label]!.append((ContinuousClock.now - t3).milliseconds)
                    filteredHits[label, default: 0] += Set(answer.map(\.movieID)).intersection(exact.map(\.movieID)).count
                    filteredAsked[label, default: 0] += exact.count
                }
            }
            // Queries far from every film, as a text query or an unrelated upload can be: the midpoint of two
            // sampled films (usually of different clusters). Recall only; the latency is the same search's.
            let far = Array(sample.prefix(max(2, queries / 2)))
            for (a, b) in zip(far, far.reversed()).prefix(far.count / 2) where a != b {
                let q = zip(vectors[a]!, vectors[b]!).map { ($0 + $1) / 2 }
                let answer = try await sqlite.query(space: space.name, vector: q, k: 10, filter: .none)
                let exact = try await sqlite.query(space: space.name, vector: q, k: 10, filter: .none, exact: true)
                farHits += Set(answer.map(\.movieID)).intersection(exact.map(\.movieID)).count
                farAsked += exact.count
            }
        }
        report.byIDp50 = percentile(byID, 0.5)
        report.byIDp99 = percentile(byID, 0.99)
        report.byIDExactMatch = Double(exactMatches) / Double(max(1, checked))
        report.byVectorp50 = percentile(byVector, 0.5)
        report.byVectorp99 = percentile(byVector, 0.99)
        report.byVectorExactp50 = percentile(byVectorExact, 0.5)
        report.byVectorExactp99 = percentile(byVectorExact, 0.99)
        report.recallAt10VsScan = Double(vectorHits) / Double(max(1, vectorAsked))
        report.recallAt10FarVsScan = Double(farHits) / Double(max(1, farAsked))
        report.byVectorApproximate = sqlite.approximateQueryCount > 0
        report.filteredp99 = percentile(filtered["1%"]! + filtered["50%"]!, 0.99)
        report.filteredp99By = filtered.mapValues { percentile($0, 0.99) }
        report.filteredByVectorp50By = filteredByVector.mapValues { percentile($0, 0.5) }
        report.filteredByVectorp99By = filteredByVector.mapValues { percentile($0, 0.99) }
        report.filteredByVectorExactp99By = filteredByVectorExact.mapValues { percentile($0, 0.99) }
        for (label, asked) in filteredAsked {
            report.filteredRecallAt10VsScanBy[label] = Double(filteredHits[label] ?? 0) / Double(max(1, asked))
        }
        report.listChecks = try await spaces.asyncMap { try await sqlite.checkNeighbourLists(space: $0.name, sample: 200) }

        // Start-up, memory and whole-request latency of `postersim serve` on this store (no models: the store's part
        // of the figure). Twice: without the index file (serve decodes every row), then with the file ingest and sync
        // leave behind (serve maps it): `startup_s` and `serve_rss_bytes` are that second, usual start.
        if case .sqlite(let path) = location {
            let binary = postersim ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("postersim").path
            try? FileManager.default.removeItem(atPath: sqlite.indexFilePath)
            let rows = try ServeProbe.measure(
                binary: binary, store: path, ids: sample, apiModel: names.first?.apiName ?? "CLIP")
            report.startupRowsSeconds = rows.startup
            report.serveRowsRSSBytes = rows.rss
            log("serve (rows decoded) ready in \(rows.startup) s, \(rows.rss / (1 << 20)) MiB resident")
            // The first serve may have been stopped while writing the file in the background: time a whole write.
            try? FileManager.default.removeItem(atPath: sqlite.indexFilePath)
            let writing = ContinuousClock.now
            try await sqlite.writeIndexFile()
            report.indexWriteSeconds = (ContinuousClock.now - writing).seconds
            report.indexBytes = (try? FileManager.default.attributesOfItem(atPath: sqlite.indexFilePath)[.size] as? Int) ?? 0
            let serve = try ServeProbe.measure(
                binary: binary, store: path, ids: sample, apiModel: names.first?.apiName ?? "CLIP")
            report.startupSeconds = serve.startup
            report.serveRSSBytes = serve.rss
            report.httpByIDp50 = percentile(serve.similarMs, 0.5)
            report.httpByIDp99 = percentile(serve.similarMs, 0.99)
            log("serve (index file mapped) ready in \(serve.startup) s, \(serve.rss / (1 << 20)) MiB resident")

            // A small write to a freshly mapped instance: one film's vector rewritten (the same values, so the
            // catalogue is unchanged) in each space. List upkeep scores it against the whole space, which reads every
            // mapped page (file pages: `RssFile`); allocated memory (`RssAnon`) grows by the rows written and the
            // per-row arrays, not by a copy of the space (`MatrixStorage`'s tail).
            let mapped = try SQLiteVectorStore(path: path, indexFile: .mapIfCurrent)
            let me = getpid()
            let before = (anon: ServeProbe.residentBytes(pid: me, field: "RssAnon"), file: ServeProbe.residentBytes(pid: me, field: "RssFile"))
            for space in spaces {
                let one = try await mapped.fetchVectors(ids: [sample[0]], space: space.name)
                try await mapped.upsertEmbeddings(
                    one.map { EmbeddingInput(movieID: $0.key, vector: $0.value) }, space: space.name,
                    identity: catalogue.identity(space))
            }
            report.mappedWriteAnonGrowthBytes = ServeProbe.residentBytes(pid: me, field: "RssAnon") - before.anon
            report.mappedWriteFileGrowthBytes = ServeProbe.residentBytes(pid: me, field: "RssFile") - before.file
            report.mappedWriteStillMapped = mapped.indexLoad == .mapped
            log("a one-film write to the mapped store: +\(report.mappedWriteAnonGrowthBytes / (1 << 20)) MiB allocated, "
                + "+\(report.mappedWriteFileGrowthBytes / (1 << 20)) MiB of mapped file pages")
            try await mapped.writeIndexFile()
        }

        if python != "none" {
            report.faiss = try await runFaiss(spaces: spaces, catalogue: &catalogue, sample: sample, store: sqlite, work: work)
            // Recall@10 of our by-vector answers against faiss's exact (flat) search of the same queries, over all spaces.
            let recalls = report.faiss.values.compactMap { result -> Double? in
                if case .object(let o) = result, case .number(let r)? = o["postersim_recall_at_10"] { return r }
                return nil
            }
            report.recallAt10 = recalls.isEmpty ? nil : recalls.reduce(0, +) / Double(recalls.count)
        }
        print(try encodeJSON(report))
    }

    /// Writes each space's vectors and the sampled queries as .npy, runs the faiss script, returns its JSON.
    func runFaiss(
        spaces: [VectorSpace], catalogue: inout SyntheticCatalogue, sample: [MovieID], store: SQLiteVectorStore,
        work: String
    ) async throws -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for space in spaces {
            let base = work + "/\(space.name)-base.npy"
            let queriesPath = work + "/\(space.name)-queries.npy"
            let ours = work + "/\(space.name)-ours.json"
            try NPYWriter.write(rows: movies, dimension: space.dimension, to: base) { row in
                catalogue.vector(MovieID(row + 1), in: space)
            }
            let qs = sample.prefix(max(1, queries / 2)).map { catalogue.perturbed(catalogue.vector($0, in: space)) }
            try NPYWriter.write(rows: qs.count, dimension: space.dimension, to: queriesPath) { qs[$0] }
            // Our top-10 row ids (movie id - 1) for the same queries, for faiss to compare.
            var ids: [[Int]] = []
            for q in qs { ids.append(try await store.query(space: space.name, vector: q, k: 10).map { $0.movieID - 1 }) }
            try JSONEncoder().encode(ids).write(to: URL(fileURLWithPath: ours))
            let result = work + "/\(space.name)-faiss.json"
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                python, faissScript, "--base", base, "--queries", queriesPath, "--metric", space.metric.rawValue,
                "--ours", ours, "--out", result,
            ]
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw ValidationError("faiss script failed for \(space.name)") }
            out[space.name] = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: URL(fileURLWithPath: result)))
            for p in [base, queriesPath] { try? FileManager.default.removeItem(atPath: p) }
        }
        return out
    }
}

/// The figures `make bench-scale` collects for one size (field names as the issue lists them).
struct ScaleReport: Encodable {
    var movies: Int
    /// `--scoring`: how list upkeep scored the writes.
    var scoring = "auto"
    var buildSeconds = 0.0
    var listsSeconds = 0.0
    var listsMsPerInsert = 0.0
    /// Of the pairs list upkeep scored, the fraction the GEMM's bound left to an exact rescoring.
    var listsRescoredFraction = 0.0
    var diskBytes = 0
    /// `postersim serve` mapping the index file (the usual start).
    var serveRSSBytes = 0
    var startupSeconds = 0.0
    /// `postersim serve` without an index file: every vector row decoded.
    var serveRowsRSSBytes = 0
    var startupRowsSeconds = 0.0
    /// Writing the index file (`writeIndexFile`, what ingest and sync do at their end) and its size.
    var indexWriteSeconds = 0.0
    var indexBytes = 0
    /// Resident memory a one-film write (one vector per space) adds to a freshly mapped store, in this process:
    /// allocated (`RssAnon`) and mapped file pages (`RssFile`).
    var mappedWriteAnonGrowthBytes = 0
    var mappedWriteFileGrowthBytes = 0
    var mappedWriteStillMapped = false
    var byIDp50 = 0.0
    var byIDp99 = 0.0
    var byIDExactMatch = 0.0
    /// `/api/get-similar-movies` through `postersim serve` (response cache off), the first model.
    var httpByIDp50 = 0.0
    var httpByIDp99 = 0.0
    var byVectorp50 = 0.0
    var byVectorp99 = 0.0
    /// The same queries with `exact: true` (the scan), and the default answers' recall@10 against them.
    var byVectorExactp50 = 0.0
    var byVectorExactp99 = 0.0
    var recallAt10VsScan = 0.0
    /// The same for queries between two films (far from both), against the scan.
    var recallAt10FarVsScan = 0.0
    /// Whether the default by-vector answers came through the lists (`ListGraphSearch`) rather than a scan.
    var byVectorApproximate = false
    /// Against faiss flat on the same queries; nil when faiss was not run.
    var recallAt10: Double?
    var filteredp99 = 0.0
    var filteredp99By: [String: Double] = [:]
    /// Queries by vector with each vote filter (default answer, its latency and recall@10 against the filtered scan,
    /// and the scan's own latency), by selectivity.
    var filteredByVectorp50By: [String: Double] = [:]
    var filteredByVectorp99By: [String: Double] = [:]
    var filteredByVectorExactp99By: [String: Double] = [:]
    var filteredRecallAt10VsScanBy: [String: Double] = [:]
    var listChecks: [NeighbourListCheck] = []
    var faiss: [String: JSONValue] = [:]

    enum CodingKeys: String, CodingKey {
        case movies, faiss, scoring
        case buildSeconds = "build_s", listsSeconds = "lists_s", listsMsPerInsert = "lists_ms_per_insert"
        case listsRescoredFraction = "lists_rescored_fraction"
        case diskBytes = "disk_bytes", serveRSSBytes = "serve_rss_bytes", startupSeconds = "startup_s"
        case serveRowsRSSBytes = "serve_rows_rss_bytes", startupRowsSeconds = "startup_rows_s"
        case indexWriteSeconds = "index_write_s", indexBytes = "index_bytes"
        case mappedWriteAnonGrowthBytes = "mapped_write_anon_growth_bytes"
        case mappedWriteFileGrowthBytes = "mapped_write_file_growth_bytes", mappedWriteStillMapped = "mapped_write_still_mapped"
        case byIDp50 = "by_id_p50_ms", byIDp99 = "by_id_p99_ms", byIDExactMatch = "by_id_exact_match"
        case httpByIDp50 = "http_by_id_p50_ms", httpByIDp99 = "http_by_id_p99_ms"
        case byVectorp50 = "by_vector_p50_ms", byVectorp99 = "by_vector_p99_ms", recallAt10 = "recall_at_10"
        case byVectorExactp50 = "by_vector_exact_p50_ms", byVectorExactp99 = "by_vector_exact_p99_ms"
        case recallAt10VsScan = "recall_at_10_vs_scan", recallAt10FarVsScan = "recall_at_10_far_vs_scan"
        case byVectorApproximate = "by_vector_approximate"
        case filteredp99 = "filtered_p99_ms", filteredp99By = "filtered_p99_ms_by_selectivity"
        case filteredByVectorp50By = "by_vector_filtered_p50_ms_by_selectivity"
        case filteredByVectorp99By = "by_vector_filtered_p99_ms_by_selectivity"
        case filteredByVectorExactp99By = "by_vector_filtered_exact_p99_ms_by_selectivity"
        case filteredRecallAt10VsScanBy = "recall_at_10_filtered_vs_scan_by_selectivity"
        case listChecks = "list_checks"
    }
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Double { seconds * 1000 }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await transform(e)) }
        return out
    }
}
