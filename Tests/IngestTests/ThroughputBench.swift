// Ingest throughput, a measurement rather than a test: runs only when POSTERSIM_INGEST_BENCH=N is set, e.g.
//   POSTERSIM_INGEST_BENCH=200 swift test -c release --filter IngestThroughput
// It ingests N generated 500x750 PNG posters from a local folder with a CLIP-like preprocessing (224 crop) and
// compares the end-to-end rate with the time the same embedder spends on the same batches alone.
import Foundation
import Imaging
import Ingest
import Store
import Testing

@Suite struct IngestThroughput {
    static let count = ProcessInfo.processInfo.environment["POSTERSIM_INGEST_BENCH"].flatMap { Int($0) }

    @Test(.enabled(if: count != nil)) func endToEndVersusPureEmbedding() async throws {
        let n = Self.count ?? 0
        let dir = try temporaryFolder("ingest-bench")
        defer { try? FileManager.default.removeItem(at: dir) }
        let posters = dir.appendingPathComponent("posters")
        try FileManager.default.createDirectory(at: posters, withIntermediateDirectories: true)
        var list: [[String: Any]] = []
        for id in 1...n {
            try Data(generatedPoster(seed: UInt64(id), width: 500, height: 750))
                .write(to: posters.appendingPathComponent("t\(id).png"))
            list.append(movieJSON(id: id, title: "T\(id)", posterPath: "/t\(id).png"))
        }
        let jsonURL = dir.appendingPathComponent("movies.json")
        try JSONSerialization.data(withJSONObject: list).write(to: jsonURL)
        let embedder = ProjectionEmbedder(name: "clip", dimension: 32, metric: .cosine, seed: 5, clipLikeInput: true)
        var config = IngestConfiguration(source: .jsonFile(jsonURL.path))
        config.postersDirectory = posters.path
        config.posterCacheDirectory = nil
        let store = try SQLiteVectorStore(path: dir.appendingPathComponent("db.sqlite").path)

        let started = ContinuousClock.now
        let summary = try await IngestPipeline(configuration: config, store: store, embedders: [embedder]).run()
        let endToEnd = (ContinuousClock.now - started)
        #expect(summary.embedded == n)

        // The same batches, prepared beforehand, through the embedder alone.
        var pure = Duration.zero
        var prepare = Duration.zero
        for start in stride(from: 1, through: n, by: config.batchSize) {
            let ids = start...min(n, start + config.batchSize - 1)
            let t0 = ContinuousClock.now
            let images = try ids.map { try PosterDecoder().decode(contentsOf: posters.appendingPathComponent("t\($0).png")) }
            let batch = try embedder.preprocessor.batch(images)
            let t1 = ContinuousClock.now
            _ = try embedder.embed(batch)
            pure += ContinuousClock.now - t1
            prepare += t1 - t0
        }
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
        let e2e = seconds(endToEnd), embed = seconds(pure), prep = seconds(prepare)
        print(
            String(
                format: "ingest throughput, %d posters 500x750 PNG, batch %d, concurrency %d:\n"
                    + "  end to end (list, decode, preprocess, embed, store): %.3f s = %.1f images/s\n"
                    + "  embedder alone on the same batches:                 %.3f s = %.1f images/s\n"
                    + "  decode + preprocess alone (serial):                  %.3f s = %.1f images/s\n"
                    + "  pipeline overhead over pure embedding:              %+.1f%%",
                n, config.batchSize, config.concurrency, e2e, Double(n) / e2e, embed, Double(n) / embed, prep,
                Double(n) / prep, (e2e / embed - 1) * 100))
    }
}
