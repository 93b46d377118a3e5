// The whole pipeline with the real client, the real SQLite store in a temp dir and deterministic embedders:
// faults, skips, resumability, kill-and-resume, back-pressure, model subsets, JSON source.
import TestSupport
import PosterSimCore
import Foundation
import Imaging
import Ingest
import Store
import Synchronization
import Testing

/// A catalogue served by the fake: good posters, and one of each fault.
struct Catalogue {
    /// Movies whose poster is good, with the poster bytes.
    var good: [MovieID: [UInt8]] = [:]
    /// Expected skip reason per failing movie.
    var bad: [MovieID: SkipReason] = [:]
    var all: Set<MovieID> { Set(good.keys).union(bad.keys) }
}

func serveFaultyCatalogue(_ fake: FakeTMDB) throws -> Catalogue {
    var c = Catalogue()
    var page1: [[String: Any]] = []
    var page2: [[String: Any]] = []
    var page3: [[String: Any]] = []
    for id in 1...12 {
        let poster = generatedPoster(seed: UInt64(id), width: 30 + id, height: 45 + id)
        fake.setPoster("p\(id).png", poster)
        c.good[id] = poster
        let json = movieJSON(id: id, title: "Movie \(id)", posterPath: "/p\(id).png")
        if id <= 6 { page1.append(json) } else { page2.append(json) }
    }
    // Real encoders' output from the fixtures: a baseline 4:2:0 JPEG and a lossy WebP.
    for (id, name) in [(13, "jpeg_rgb420_120x180.jpg"), (14, "webp_lossy_100x150.webp")] {
        let bytes = try fixtureImage(name)
        fake.setPoster(name, bytes)
        c.good[id] = bytes
        page3.append(movieJSON(id: id, title: "Fixture \(id)", posterPath: "/\(name)"))
    }
    // Faults.
    page2.append(movieJSON(id: 20, title: "No poster", posterPath: nil))
    c.bad[20] = .noPosterPath
    page2.append(movieJSON(id: 21, title: "Gone", posterPath: "/gone.png"))
    c.bad[21] = .posterNotFound
    let cut = generatedPoster(seed: 22)
    fake.setPoster("half.png", Array(cut[0..<(cut.count / 2)]))
    page3.append(movieJSON(id: 22, title: "Truncated PNG", posterPath: "/half.png"))
    c.bad[22] = .undecodable
    fake.setPoster("truncated.jpg", try fixtureImage("truncated.jpg"))
    page3.append(movieJSON(id: 23, title: "Truncated JPEG", posterPath: "/truncated.jpg"))
    c.bad[23] = .undecodable
    page3.append(movieJSON(id: 24, title: "Evil path", posterPath: "/../../etc/passwd"))
    c.bad[24] = .invalidPosterPath
    fake.setPoster("always500.png", generatedPoster(seed: 25))
    fake.inject(Array(repeating: .status(500, retryAfter: nil), count: 100), for: "poster:always500.png")
    page3.append(movieJSON(id: 25, title: "Server down", posterPath: "/always500.png"))
    c.bad[25] = .serverError
    // Transient faults that must not cost the poster.
    fake.inject([.status(429, retryAfter: "0")], for: "poster:p2.png")
    fake.inject([.status(500, retryAfter: nil), .status(503, retryAfter: "0")], for: "poster:p3.png")
    fake.inject([.delay(0.3)], for: "poster:p4.png")
    fake.inject([.cut], for: "poster:p5.png")
    fake.inject([.status(500, retryAfter: nil)], for: "page:2")
    // Duplicates across pages: 3 and 7 again on page 3, 1 again on page 2.
    page3.append(movieJSON(id: 3, title: "Movie 3 (again)", posterPath: "/p3.png"))
    page3.append(movieJSON(id: 7, title: "Movie 7 (again)", posterPath: "/p7.png"))
    page2.insert(movieJSON(id: 1, title: "Movie 1 (again)", posterPath: "/p1.png"), at: 0)
    try fake.setPage(1, movies: page1)
    try fake.setPage(2, movies: page2)
    try fake.setPage(3, movies: page3)
    fake.setTotalPages(3)
    return c
}

func pipelineConfig(_ fake: FakeTMDB, cache: URL, source: IngestConfiguration.Source = .tmdb) -> IngestConfiguration {
    var config = IngestConfiguration(source: source)
    config.pages = 10
    config.tmdb = testSettings(fake)
    config.posterCacheDirectory = cache.path
    config.concurrency = 4
    config.batchSize = 3
    return config
}

@Suite struct PipelineTests {
    @Test func faultyCatalogueIngestsGoodPostersAndRecordsSkips() async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = FakeTMDB()
        let catalogue = try serveFaultyCatalogue(fake)
        let embedders = testEmbedders()
        let dbPath = dir.appendingPathComponent("db.sqlite").path
        let cache = dir.appendingPathComponent("posters")
        let events = EventLog()

        let (first, second) = try await withFakeTMDB(fake) {
            let store = try SQLiteVectorStore(path: dbPath)
            let config = pipelineConfig(fake, cache: cache)
            let first = try await IngestPipeline(configuration: config, store: store, embedders: embedders)
                .run(onEvent: events.record)
            try await expectStoredVectors(store: store, embedders: embedders, posters: catalogue.good, count: catalogue.good.count)
            // Metadata of every listed movie is stored, with the first occurrence's rank and title.
            let stored = try await store.fetchMovies(ids: Array(catalogue.all))
            #expect(stored.count == catalogue.all.count)
            let byID = Dictionary(uniqueKeysWithValues: stored.map { ($0.id, $0) })
            #expect(byID[3]?.title == "Movie 3" && byID[3]?.popularityRank == 3)
            #expect(byID[1]?.popularityRank == 1 && byID[7]?.popularityRank == 7)
            #expect(byID[20]?.posterPath == nil)

            // A second run, with a fresh store object on the same file, embeds nothing.
            let before = embedders.map(\.log.images)
            let reopened = try SQLiteVectorStore(path: dbPath)
            let second = try await IngestPipeline(configuration: config, store: reopened, embedders: embedders).run()
            #expect(embedders.map(\.log.images) == before)
            try await expectStoredVectors(
                store: reopened, embedders: embedders, posters: catalogue.good, count: catalogue.good.count)
            return (first, second)
        }
        #expect(first.listed == catalogue.all.count)
        #expect(first.pending == catalogue.all.count && first.alreadyDone == 0)
        #expect(first.embedded == catalogue.good.count)
        #expect(first.vectorsWritten == ["clip": catalogue.good.count, "resnet50": catalogue.good.count])
        #expect(!first.nothingDone)
        let reasons = Dictionary(uniqueKeysWithValues: first.skipped.map { ($0.movieID, $0.reason) })
        #expect(reasons == catalogue.bad)
        #expect(first.skipped.allSatisfy { $0.space == nil && !$0.detail.isEmpty })
        #expect(first.skippedByReason["undecodable"] == 2)
        // Each good movie was embedded once per model.
        #expect(embedders.allSatisfy { $0.log.images == catalogue.good.count })
        #expect(embedders.allSatisfy { $0.log.batchSizes.allSatisfy { $0 <= 3 } })

        // The rerun retries only the transient failure (the server that answered 500); the permanent ones are left
        // alone.
        #expect(second.alreadyDone == catalogue.good.count)
        #expect(second.pending == 1 && second.notRetried == catalogue.bad.count - 1 && second.embedded == 0)
        #expect(second.skipped.map(\.movieID) == [25])
        #expect(second.vectorsWritten.values.reduce(0, +) == 0)
        // Only unfixable posters were left and the rest was done before: a success, not "nothing could be done".
        #expect(!second.nothingDone)

        // Posters are cached by size and path, complete, with no temporary files left.
        let cached = try FileManager.default.contentsOfDirectory(atPath: cache.appendingPathComponent("original").path)
        #expect(!cached.contains { $0.contains(".tmp-") })
        #expect(FileManager.default.contents(atPath: cache.appendingPathComponent("original/p5.png").path).map { [UInt8]($0) } == catalogue.good[5])
        // Undecodable downloads are not kept.
        #expect(!cached.contains("half.png"))
        // Good posters were downloaded once over both runs (the second run read the cache).
        #expect(fake.requests(prefix: "/t/p/original/p1.png").count == 1)

        // Events: plan, skips and a final progress of pending/pending.
        let all = events.all
        let progress = all.compactMap { if case .progress(let p) = $0 { p } else { nil } }
        #expect(progress.last?.completed == catalogue.all.count && progress.last?.total == catalogue.all.count)
        #expect(progress.last?.skipped == catalogue.bad.count)
        #expect(zip(progress, progress.dropFirst()).allSatisfy { $0.completed <= $1.completed })
        #expect(all.contains { if case .planned(let n, 0, 0, ["clip", "resnet50"]) = $0 { n == catalogue.all.count } else { false } })
        if case .finished(let s)? = all.last { #expect(s == first) } else { Issue.record("no finished event last") }
    }

    @Test func jsonSourceWithPostersDirectoryModelSubsetAndLimit() async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let posters = dir.appendingPathComponent("posters")
        try FileManager.default.createDirectory(at: posters, withIntermediateDirectories: true)
        var list: [[String: Any]] = []
        var bytesByID: [MovieID: [UInt8]] = [:]
        for id in 100..<112 {
            let bytes = generatedPoster(seed: UInt64(id))
            try Data(bytes).write(to: posters.appendingPathComponent("m\(id).png"))
            bytesByID[id] = bytes
            list.append(movieJSON(id: id, title: "Local \(id)", posterPath: "/m\(id).png"))
        }
        list.insert(movieJSON(id: 105, title: "dup", posterPath: "/m105.png"), at: 7)
        list.insert(["title": "not a movie"], at: 2)
        list.append(movieJSON(id: 120, title: "Missing file", posterPath: "/nope.png"))
        let jsonURL = dir.appendingPathComponent("movies.json")
        try JSONSerialization.data(withJSONObject: list).write(to: jsonURL)
        let dbPath = dir.appendingPathComponent("db.sqlite").path
        let embedders = testEmbedders()

        var config = IngestConfiguration(source: .jsonFile(jsonURL.path))
        config.postersDirectory = posters.path
        config.posterCacheDirectory = nil
        config.models = ["resnet50"]
        config.limit = 9
        // Unreachable: a JSON source with local posters must not touch the network.
        config.tmdb = TMDBSettings(baseURL: "http://127.0.0.1:9/3", imageBaseURL: "http://127.0.0.1:9/t/p")
        config.batchSize = 4
        let store = try SQLiteVectorStore(path: dbPath)
        let first = try await IngestPipeline(configuration: config, store: store, embedders: embedders).run()
        #expect(first.listed == 9 && first.malformed == 1 && first.embedded == 9)
        #expect(first.vectorsWritten == ["resnet50": 9])
        #expect(embedders[0].log.images == 0)
        let firstNine = Dictionary(uniqueKeysWithValues: (100..<109).map { ($0, bytesByID[$0]!) })
        try await expectStoredVectors(store: store, embedders: [embedders[1]], posters: firstNine, count: 9)
        #expect(try await store.stats().spaces.map(\.space.name) == ["resnet50"])

        // Now every model and no limit: resnet50 only for the new movies, clip for all; the missing file is skipped.
        config.models = nil
        config.limit = nil
        let second = try await IngestPipeline(configuration: config, store: store, embedders: embedders).run()
        #expect(second.listed == 13 && second.alreadyDone == 0 && second.pending == 13)
        #expect(second.vectorsWritten == ["clip": 12, "resnet50": 3])
        #expect(second.skipped.map(\.reason) == [.posterNotFound] && second.skipped.first?.movieID == 120)
        #expect(embedders[1].log.images == 12 && embedders[0].log.images == 12)
        try await expectStoredVectors(store: store, embedders: embedders, posters: bytesByID, count: 12)

        // Unknown model names are refused before anything happens.
        config.models = ["vgg16"]
        await #expect(throws: IngestError.self) {
            try await IngestPipeline(configuration: config, store: store, embedders: embedders).run()
        }
    }

    @Test func changedCheckpointIsReembedded() async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (config, bytesByID) = try localCatalogue(in: dir, count: 7)
        let store = try SQLiteVectorStore(path: dir.appendingPathComponent("db.sqlite").path)
        let v1 = [ProjectionEmbedder(name: "resnet50", dimension: 12, metric: .euclidean, seed: 23)]
        try await IngestPipeline(configuration: config, store: store, embedders: v1).run()
        let v2 = [ProjectionEmbedder(name: "resnet50", dimension: 12, metric: .euclidean, seed: 23, weightsVersion: 2)]
        let summary = try await IngestPipeline(configuration: config, store: store, embedders: v2).run()
        #expect(summary.vectorsWritten == ["resnet50": 7] && summary.alreadyDone == 0)
        try await expectStoredVectors(store: store, embedders: v2, posters: bytesByID, count: 7)
        #expect(try await store.stats().spaces.first?.staleVectors == 0)
    }

    @Test func nothingDoneOnlyWhenNothingCouldBeStored() async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteVectorStore(path: dir.appendingPathComponent("db.sqlite").path)
        // An empty source.
        let empty = dir.appendingPathComponent("empty.json")
        try Data("[]".utf8).write(to: empty)
        var config = IngestConfiguration(source: .jsonFile(empty.path))
        config.postersDirectory = dir.path
        let none = try await IngestPipeline(configuration: config, store: store, embedders: testEmbedders()).run()
        #expect(none.listed == 0 && none.nothingDone)
        // Every poster missing.
        let missing = dir.appendingPathComponent("missing.json")
        try JSONSerialization.data(withJSONObject: (1...3).map { movieJSON(id: $0, title: "M\($0)", posterPath: "/x\($0).png") })
            .write(to: missing)
        config.source = .jsonFile(missing.path)
        let failed = try await IngestPipeline(configuration: config, store: store, embedders: testEmbedders()).run()
        #expect(failed.nothingDone && failed.skippedByReason == ["poster_not_found": 3])
        // Not JSON at all: a typed error.
        let garbage = dir.appendingPathComponent("garbage.json")
        try Data("{\"results\": 3}".utf8).write(to: garbage)
        config.source = .jsonFile(garbage.path)
        await #expect(throws: IngestError.self) {
            try await IngestPipeline(configuration: config, store: store, embedders: testEmbedders()).run()
        }
    }

    @Test func backPressureBoundsPostersInFlight() async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = FakeTMDB()
        var list: [[String: Any]] = []
        for id in 1...40 {
            fake.setPoster("b\(id).png", generatedPoster(seed: UInt64(id)))
            fake.inject([.delay(0.01)], for: "poster:b\(id).png")
            list.append(movieJSON(id: id, title: "B\(id)", posterPath: "/b\(id).png"))
        }
        let jsonURL = dir.appendingPathComponent("movies.json")
        try JSONSerialization.data(withJSONObject: list).write(to: jsonURL)
        var slow = ProjectionEmbedder(name: "resnet50", dimension: 12, metric: .euclidean, seed: 23)
        slow.delayPerBatch = 0.03
        let store = try SQLiteVectorStore(path: dir.appendingPathComponent("db.sqlite").path)
        let violations = Mutex<[String]>([])
        let summary = try await withFakeTMDB(fake) {
            var config = pipelineConfig(fake, cache: dir.appendingPathComponent("cache"), source: .jsonFile(jsonURL.path))
            config.concurrency = 3
            config.batchSize = 4
            let stored = Mutex(0)
            return try await IngestPipeline(configuration: config, store: store, embedders: [slow]).run { event in
                guard case .batchStored(_, let n) = event else { return }
                let done = stored.withLock { $0 += n; return $0 }
                // Started downloads never run ahead of the consumer by more than one batch plus the in-flight limit.
                let requested = fake.requests(prefix: "/t/p/").count
                if requested > done + 4 + 3 { violations.withLock { $0.append("\(requested) requested, \(done) stored") } }
            }
        }
        #expect(summary.embedded == 40)
        #expect(violations.withLock { $0 } == [])
        #expect(fake.maxConcurrentRequests <= 3)
        #expect(slow.log.batchSizes == Array(repeating: 4, count: 10))
    }

    /// `writeBatchSize` groups forward batches into fewer store transactions; everything is written by the end, and a
    /// crash loses only the forward passes not yet written (they are redone).
    @Test func writeBatchGroupsForwardBatches() async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        var (config, bytesByID) = try localCatalogue(in: dir, count: 23)
        config.batchSize = 3
        config.writeBatchSize = 7
        let dbPath = dir.appendingPathComponent("db.sqlite").path
        let log = EventLog()
        var crashing = testEmbedders()
        crashing[1].failAfterBatches = 4
        do {
            try await IngestPipeline(configuration: config, store: try SQLiteVectorStore(path: dbPath), embedders: crashing)
                .run { log.record($0) }
            Issue.record("expected the injected failure")
        } catch IngestError.embedder(let space, _) {
            #expect(space == "resnet50")
        }
        let written = log.all.compactMap { e -> Int? in
            if case .batchStored("resnet50", let n) = e { return n } else { return nil }
        }
        // Forward batches of 3 are written once 7 or more wait: 9 after the third; the fourth batch failed.
        #expect(written == [9])
        let store = try SQLiteVectorStore(path: dbPath)
        #expect(try await store.stats().spaces.first { $0.space.name == "resnet50" }?.vectors == 9)

        let resumed = EventLog()
        let embedders = testEmbedders()
        _ = try await IngestPipeline(configuration: config, store: store, embedders: embedders).run { resumed.record($0) }
        let resnetWrites = resumed.all.compactMap { e -> Int? in
            if case .batchStored("resnet50", let n) = e { return n } else { return nil }
        }
        // 14 left: 9 written after three batches, then the last 5 (a batch of 3 and one of 2) at the end.
        #expect(resnetWrites == [9, 5])
        try await expectStoredVectors(store: store, embedders: embedders, posters: bytesByID, count: 23)
        var bad = config
        bad.writeBatchSize = 0
        await #expect(throws: IngestError.self) {
            try await IngestPipeline(configuration: bad, store: store, embedders: embedders).run()
        }
    }

    @Test func embedderCrashThenResumeEmbedsEachPairOnce() async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (config, bytesByID) = try localCatalogue(in: dir, count: 23)
        let dbPath = dir.appendingPathComponent("db.sqlite").path
        var totalImages = 0
        // Crash after 1, then 2, then 4 batches (of 3) per model, each time on a fresh store object.
        for crashAfter in [1, 2, 4] {
            var embedders = testEmbedders()
            embedders[1].failAfterBatches = crashAfter
            let store = try SQLiteVectorStore(path: dbPath)
            let before = try await vectorCount(store)
            do {
                try await IngestPipeline(configuration: config, store: store, embedders: embedders).run()
                Issue.record("expected the injected failure")
            } catch IngestError.embedder(let space, _) {
                #expect(space == "resnet50")
            }
            let after = try await vectorCount(store)
            // Everything the embedders produced and returned was committed (the failing call returned nothing).
            #expect(after - before == embedders.map(\.log.images).reduce(0, +))
            totalImages += embedders.map(\.log.images).reduce(0, +)
        }
        let embedders = testEmbedders()
        let store = try SQLiteVectorStore(path: dbPath)
        let last = try await IngestPipeline(configuration: config, store: store, embedders: embedders).run()
        totalImages += embedders.map(\.log.images).reduce(0, +)
        #expect(!last.nothingDone)
        // Over all runs, each (movie, model) pair was embedded exactly once.
        #expect(totalImages == 23 * 2)
        try await expectStoredVectors(store: store, embedders: embedders, posters: bytesByID, count: 23)
    }

    @Test func cancellationAtManyPointsThenResume() async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = FakeTMDB()
        var list: [[String: Any]] = []
        var bytesByID: [MovieID: [UInt8]] = [:]
        for id in 1...30 {
            let bytes = generatedPoster(seed: UInt64(1000 + id))
            fake.setPoster("c\(id).png", bytes)
            bytesByID[id] = bytes
            list.append(movieJSON(id: id, title: "C\(id)", posterPath: "/c\(id).png"))
        }
        try fake.setPage(1, movies: Array(list[0..<20]))
        try fake.setPage(2, movies: Array(list[20...]))
        fake.setTotalPages(2)
        let dbPath = dir.appendingPathComponent("db.sqlite").path
        try await withFakeTMDB(fake) {
            var config = pipelineConfig(fake, cache: dir.appendingPathComponent("cache"))
            config.batchSize = 2
            // Cancel after the k-th event of each run: during listing, planning, downloads, between batches.
            for cancelAt in [1, 2, 3, 5, 8, 13, 21] {
                var embedders = testEmbedders()
                for i in embedders.indices { embedders[i].delayPerBatch = 0.002 }
                let store = try SQLiteVectorStore(path: dbPath)
                let pipeline = IngestPipeline(configuration: config, store: store, embedders: embedders)
                await runCancelled(pipeline, atEvent: cancelAt)
            }
            // The last run completes; every pair exactly once, every vector the right poster's.
            let embedders = testEmbedders()
            let store = try SQLiteVectorStore(path: dbPath)
            let done = try await vectorCount(store)
            let summary = try await IngestPipeline(configuration: config, store: store, embedders: embedders).run()
            #expect(summary.embedded + summary.alreadyDone == 30)
            #expect(embedders.map(\.log.images).reduce(0, +) == 60 - done)
            try await expectStoredVectors(store: store, embedders: embedders, posters: bytesByID, count: 30)
            let cached = try FileManager.default.contentsOfDirectory(
                atPath: dir.appendingPathComponent("cache/original").path)
            // Cache writes are synchronous (write + rename), so a cancellation never leaves a temporary file.
            #expect(!cached.contains { $0.contains(".tmp-") })
            for name in cached where !name.hasPrefix(".") {
                let id = Int(name.dropFirst().dropLast(4))!
                #expect(FileManager.default.contents(atPath: dir.appendingPathComponent("cache/original/\(name)").path).map { [UInt8]($0) } == bytesByID[id])
            }
        }
    }

    @Test func rendererPlainLinesAndSummary() {
        let out = Mutex("")
        let renderer = ProgressRenderer(style: .lines, interval: 3600) { text in out.withLock { $0 += text } }
        renderer.handle(.listed(movies: 10, malformed: 1))
        renderer.handle(.planned(pending: 4, alreadyDone: 6, notRetried: 2, models: ["clip", "resnet50"]))
        renderer.handle(.progress(IngestProgress(completed: 1, total: 4, embedded: 1, skipped: 0, elapsed: 1, rate: 1, eta: 3)))
        // Within the interval: not printed.
        renderer.handle(.progress(IngestProgress(completed: 2, total: 4, embedded: 2, skipped: 0, elapsed: 2, rate: 1, eta: 2)))
        renderer.handle(
            .skipped(SkippedPoster(movieID: 7, title: "Gone", posterPath: "/g.png", space: nil, reason: .posterNotFound, detail: "404")))
        renderer.handle(.progress(IngestProgress(completed: 4, total: 4, embedded: 3, skipped: 1, elapsed: 4, rate: 1, eta: 0)))
        let summary = IngestSummary(
            listed: 10, malformed: 1, alreadyDone: 6, pending: 4, embedded: 3,
            skipped: [SkippedPoster(movieID: 7, title: "Gone", posterPath: "/g.png", space: nil, reason: .posterNotFound, detail: "404")],
            vectorsWritten: ["clip": 3, "resnet50": 3], elapsedSeconds: 75)
        renderer.handle(.finished(summary))
        let text = out.withLock { $0 }
        #expect(text.contains("listed 10 movies (1 malformed entries dropped)"))
        #expect(text.contains("4 movies to embed, 6 already done, 2 skipped before and not retried"))
        #expect(text.contains("1/4 (25%) 1.0 posters/s ETA 3s"))
        #expect(!text.contains("2/4"))
        #expect(text.contains("skipped 7 \"Gone\": poster_not_found: 404"))
        #expect(text.contains("4/4 (100%)"))
        #expect(text.contains("ingest finished in 1m15s") && text.contains("clip: 3 vectors written"))
        #expect(text.contains("skipped (poster_not_found): 1, not retried"))
        #expect(!text.contains("\u{1B}"))
    }
}

/// A JSON source of `count` generated posters in a folder, and the configuration to ingest it.
func localCatalogue(in dir: URL, count: Int) throws -> (IngestConfiguration, [MovieID: [UInt8]]) {
    let posters = dir.appendingPathComponent("posters")
    try FileManager.default.createDirectory(at: posters, withIntermediateDirectories: true)
    var list: [[String: Any]] = []
    var bytesByID: [MovieID: [UInt8]] = [:]
    for id in 1...count {
        let bytes = generatedPoster(seed: UInt64(500 + id))
        try Data(bytes).write(to: posters.appendingPathComponent("l\(id).png"))
        bytesByID[id] = bytes
        list.append(movieJSON(id: id, title: "L\(id)", posterPath: "/l\(id).png"))
    }
    let jsonURL = dir.appendingPathComponent("movies.json")
    try JSONSerialization.data(withJSONObject: list).write(to: jsonURL)
    var config = IngestConfiguration(source: .jsonFile(jsonURL.path))
    config.postersDirectory = posters.path
    config.posterCacheDirectory = nil
    config.batchSize = 3
    config.concurrency = 4
    return (config, bytesByID)
}

func vectorCount(_ store: any VectorStore) async throws -> Int {
    try await store.stats().spaces.map(\.vectors).reduce(0, +)
}
