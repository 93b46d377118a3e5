// Skipped posters in the store across runs: recorded with their reason, permanent ones left alone on a rerun,
// transient ones retried, records cleared by a later success, `--retry-skipped`, a changed poster_path, a model's
// own failure tied to its checkpoint, and kill-and-resume with skips. Against the fake TMDB, on SQLite and PostgreSQL.
import Embedding
import PosterSimCore
import Foundation
import Imaging
import Ingest
import PostgresStore
import Store
import Synchronization
import TestSupport
import Testing

/// The catalogue of the rerun scenario: four good posters and one of each kind of failure.
struct SkipScenario {
    static let good = [1, 2, 3, 4]
    /// No poster_path, 404, truncated PNG: permanent.
    static let noPoster = 10, missing = 11, truncated = 12
    /// 503 on every attempt of the first run only; a read timeout on every attempt of the first run only.
    static let flakyServer = 13, slow = 14
    /// 403 once (permanent, until --retry-skipped).
    static let forbidden = 15
    /// 404 under its first poster_path; its second one works.
    static let moved = 16
    /// 500 on every request: transient, failing run after run.
    static let down = 17

    var posters: [MovieID: [UInt8]] = [:]

    /// Serves the first run's catalogue. `movedFixed` serves movie 16 under its new poster_path.
    static func serve(_ fake: FakeTMDB, movedFixed: Bool) throws -> SkipScenario {
        var scenario = SkipScenario()
        var list: [[String: Any]] = []
        for id in good + [flakyServer, slow, forbidden, down] {
            let bytes = generatedPoster(seed: UInt64(300 + id))
            fake.setPoster("s\(id).png", bytes)
            scenario.posters[id] = bytes
            list.append(movieJSON(id: id, title: "S\(id)", posterPath: "/s\(id).png"))
        }
        list.append(movieJSON(id: noPoster, title: "No poster", posterPath: nil))
        list.append(movieJSON(id: missing, title: "Gone", posterPath: "/gone.png"))
        let cut = generatedPoster(seed: 12)
        fake.setPoster("half.png", Array(cut[0..<(cut.count / 2)]))
        list.append(movieJSON(id: truncated, title: "Truncated", posterPath: "/half.png"))
        let movedBytes = generatedPoster(seed: 316)
        fake.setPoster("s16-new.png", movedBytes)
        scenario.posters[moved] = movedBytes
        list.append(movieJSON(id: moved, title: "Moved", posterPath: movedFixed ? "/s16-new.png" : "/s16-old.png"))
        try fake.setPage(1, movies: list)
        fake.setTotalPages(1)
        return scenario
    }

    /// Client settings with few attempts and a read timeout short enough that timeouts cost little, yet long enough
    /// that answers the test does not delay arrive in time while the other suites keep both cores busy.
    static func config(_ fake: FakeTMDB, cache: URL) -> IngestConfiguration {
        var config = pipelineConfig(fake, cache: cache)
        config.tmdb.maxAttempts = 2
        config.tmdb.readTimeout = 2
        return config
    }
}

/// The scenario against one store: three runs (plain, plain after fixes, --retry-skipped).
func rerunScenario(store: any VectorStore, dir: URL) async throws {
    let fake = FakeTMDB()
    let scenario = try SkipScenario.serve(fake, movedFixed: false)
    fake.inject([.status(503, retryAfter: "0"), .status(503, retryAfter: "0")], for: "poster:s13.png")
    fake.inject([.delay(6), .delay(6)], for: "poster:s14.png")
    fake.inject([.status(403, retryAfter: nil)], for: "poster:s15.png")
    fake.inject(Array(repeating: .status(500, retryAfter: nil), count: 100), for: "poster:s17.png")
    let embedders = testEmbedders()
    let cache = dir.appendingPathComponent("cache")
    let started = Date()
    try await withFakeTMDB(fake) {
        let config = SkipScenario.config(fake, cache: cache)

        // Run 1: the good posters are embedded, every failure is recorded with its reason.
        let first = try await IngestPipeline(configuration: config, store: store, embedders: embedders).run()
        #expect(first.embedded == 4 && first.notRetried == 0 && first.pending == 12)
        var records = try await store.skipRecords(movieIDs: nil)
        let byMovie = Dictionary(uniqueKeysWithValues: records.map { ($0.skip.movieID, $0) })
        #expect(records.allSatisfy { $0.skip.space == nil && $0.attempts == 1 && !$0.skip.message.isEmpty })
        #expect(records.map(\.skip.movieID) == [10, 11, 12, 13, 14, 15, 16, 17])
        #expect(byMovie[10]?.skip.reason == .noPosterPath && byMovie[10]?.skip.source == nil)
        #expect(byMovie[11]?.skip.reason == .posterNotFound && byMovie[11]?.skip.httpStatus == 404)
        #expect(byMovie[11]?.skip.source == "\(fake.imageBaseURL)/original/gone.png")
        #expect(byMovie[11]?.skip.posterPath == "/gone.png")
        #expect(byMovie[12]?.skip.reason == .undecodable)
        #expect(byMovie[13]?.skip.reason == .serverError && byMovie[13]?.skip.httpStatus == 503)
        #expect(byMovie[14]?.skip.reason == .timeout)
        #expect(byMovie[15]?.skip.reason == .httpError && byMovie[15]?.skip.httpStatus == 403)
        #expect(byMovie[16]?.skip.reason == .posterNotFound)
        #expect(byMovie[17]?.skip.reason == .serverError && byMovie[17]?.skip.httpStatus == 500)
        #expect(records.allSatisfy { $0.lastAttemptAt >= started.addingTimeInterval(-1) })
        // The summary says the same as the store.
        #expect(Set(first.skipped.map(\.movieID)) == Set(records.map(\.skip.movieID)))
        let stats = try await store.stats().skips
        #expect(stats.movies == 8 && stats.transient == 3)
        #expect(stats.byReason == [
            "no_poster_path": 1, "poster_not_found": 2, "undecodable": 1, "server_error": 2, "timeout": 1,
            "http_error": 1,
        ])

        // Run 2, after TMDB gave movie 16 another poster_path: transient skips are retried (13 and 14 now work,
        // 17 fails again), permanent ones are not (not even requested), and 16's new poster is tried.
        _ = try SkipScenario.serve(fake, movedFixed: true)
        let requestsBefore = fake.requests.count
        let second = try await IngestPipeline(configuration: config, store: store, embedders: embedders).run()
        #expect(second.alreadyDone == 4 && second.pending == 4 && second.notRetried == 4)
        #expect(second.embedded == 3 && second.vectorsWritten == ["clip": 3, "resnet50": 3])
        #expect(second.skipped.map(\.movieID) == [17])
        let secondRequests = fake.requests.dropFirst(requestsBefore).map(\.path)
        for name in ["gone.png", "half.png", "s15.png"] {
            #expect(!secondRequests.contains { $0.hasSuffix(name) }, "\(name) was requested again")
        }
        records = try await store.skipRecords(movieIDs: nil)
        #expect(records.map(\.skip.movieID) == [10, 11, 12, 15, 17])
        #expect(records.map(\.attempts) == [1, 1, 1, 1, 2])
        let recovered = [1, 2, 3, 4, 13, 14, 16]
        try await expectStoredVectors(
            store: store, embedders: embedders, posters: scenario.posters.filter { recovered.contains($0.key) },
            count: recovered.count)

        // Run 3 with --retry-skipped: every skip is tried again; the 403 is gone now, the others fail again.
        var retry = config
        retry.retrySkipped = true
        let third = try await IngestPipeline(configuration: retry, store: store, embedders: embedders).run()
        #expect(third.pending == 5 && third.notRetried == 0 && third.embedded == 1)
        records = try await store.skipRecords(movieIDs: nil)
        #expect(records.map(\.skip.movieID) == [10, 11, 12, 17])
        #expect(records.map(\.attempts) == [2, 2, 2, 3])
        #expect(try await store.stats().skips.byReason == [
            "no_poster_path": 1, "poster_not_found": 1, "undecodable": 1, "server_error": 1,
        ])

        // Run 4, plain: only the transient one is tried; nothing else is left to do, which is a success.
        let fourth = try await IngestPipeline(configuration: config, store: store, embedders: embedders).run()
        #expect(fourth.pending == 1 && fourth.notRetried == 3 && fourth.alreadyDone == 8 && !fourth.nothingDone)
    }
}

/// For blank (single-colour) posters, a vector of `fill` in every component, as a model with a degenerate output
/// would give (0: a zero vector; 3e38: finite components whose norm overflows Float32); otherwise the wrapped
/// embedder's vectors.
struct BlankRejectingEmbedder: EmbeddingModel {
    var inner: ProjectionEmbedder
    var fill: Float = 0
    var name: ModelName { inner.name }
    var space: VectorSpace { inner.space }
    var identity: ModelIdentity { inner.identity }
    var preprocessor: ImagePreprocessor { inner.preprocessor }

    func embed(_ batch: ImageTensor) throws -> [[Float]] {
        let vectors = try inner.embed(batch)
        let size = batch.values.count / max(1, batch.shape[0])
        return vectors.enumerated().map { i, v in
            let item = batch.values[(i * size)..<((i + 1) * size)]
            return item.allSatisfy { $0 == item.first } ? [Float](repeating: fill, count: v.count) : v
        }
    }
}

@Suite struct SkipRecordTests {
    /// One vector the store would refuse (finite components, a norm beyond Float32) is an `invalid_embedding` skip
    /// with the store's reason; the run goes on and stores the others.
    @Test func vectorTheStoreRefusesIsASkipNotAnAbort() async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (config, _) = try localCatalogue(in: dir, count: 3)
        let blank = encodePNG(width: 20, height: 30, rgb: [UInt8](repeating: 200, count: 20 * 30 * 3))
        try Data(blank).write(to: dir.appendingPathComponent("posters/l2.png"))
        let store = try SQLiteVectorStore(path: dir.appendingPathComponent("db.sqlite").path)
        let embedder = BlankRejectingEmbedder(
            inner: ProjectionEmbedder(name: "resnet50", dimension: 12, metric: .euclidean, seed: 23), fill: 3e38)
        let summary = try await IngestPipeline(configuration: config, store: store, embedders: [embedder]).run()
        #expect(summary.vectorsWritten == ["resnet50": 2])
        #expect(summary.skipped.map(\.reason) == [.invalidEmbedding])
        let records = try await store.skipRecords(movieIDs: nil)
        #expect(records.map(\.skip.key) == [SkipKey(movieID: 2, space: "resnet50")])
        #expect(records.first?.skip.message.contains("overflows") == true)
    }

    @Test func rerunRetriesTransientSkipsOnlyOnSQLite() async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try await rerunScenario(store: try SQLiteVectorStore(path: dir.appendingPathComponent("db.sqlite").path), dir: dir)
    }

    /// A model's own failure is recorded for that model only, with its checkpoint: the other model's vector is
    /// stored, a rerun leaves the pair alone, and a new checkpoint of the failing model tries again.
    @Test func modelFailureIsPerModelAndPerCheckpoint() async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (config, bytesByID) = try localCatalogue(in: dir, count: 3)
        let blank = encodePNG(
            width: 20, height: 30, rgb: [UInt8](repeating: 128, count: 20 * 30 * 3))
        try Data(blank).write(to: dir.appendingPathComponent("posters/l2.png"))
        let store = try SQLiteVectorStore(path: dir.appendingPathComponent("db.sqlite").path)
        func embedders(clipVersion: Int) -> (BlankRejectingEmbedder, ProjectionEmbedder) {
            (BlankRejectingEmbedder(
                inner: ProjectionEmbedder(name: "clip", dimension: 8, metric: .cosine, seed: 11, weightsVersion: clipVersion)),
             ProjectionEmbedder(name: "resnet50", dimension: 12, metric: .euclidean, seed: 23))
        }

        let (clip1, resnet) = embedders(clipVersion: 1)
        let first = try await IngestPipeline(configuration: config, store: store, embedders: [clip1, resnet]).run()
        #expect(first.vectorsWritten == ["clip": 2, "resnet50": 3])
        #expect(first.skipped.map(\.reason) == [.invalidEmbedding] && first.skipped.first?.space == "clip")
        var records = try await store.skipRecords(movieIDs: nil)
        #expect(records.count == 1)
        #expect(records.first?.skip.key == SkipKey(movieID: 2, space: "clip"))
        #expect(records.first?.skip.identity == clip1.identity && records.first?.skip.posterPath == "/l2.png")
        try await expectStoredVectors(
            store: store, embedders: [resnet], posters: bytesByID.merging([2: blank]) { _, b in b }, count: 3)

        // Same checkpoint: left alone, and the movie's resnet50 vector makes it no failure of the run.
        let second = try await IngestPipeline(configuration: config, store: store, embedders: [clip1, resnet]).run()
        #expect(second.pending == 0 && second.notRetried == 1 && second.alreadyDone == 2 && !second.nothingDone)
        #expect(clip1.inner.log.images == 3)

        // A new CLIP checkpoint re-embeds everything under it, the blank poster included; it fails again.
        let (clip2, _) = embedders(clipVersion: 2)
        let third = try await IngestPipeline(configuration: config, store: store, embedders: [clip2, resnet]).run()
        #expect(third.pending == 3 && third.vectorsWritten == ["clip": 2, "resnet50": 0])
        records = try await store.skipRecords(movieIDs: nil)
        #expect(records.count == 1 && records.first?.attempts == 2 && records.first?.skip.identity == clip2.identity)
    }

    /// Cancelled at many points of runs that meet skipped posters, then finished: every bad poster has exactly one
    /// record with its reason, permanent ones were counted once (never retried after being recorded), no record
    /// sits beside a stored vector, and every good poster is embedded once.
    @Test func cancellationAtManyPointsKeepsSkipsConsistent() async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = FakeTMDB()
        var list: [[String: Any]] = []
        var good: [MovieID: [UInt8]] = [:]
        for id in 1...16 {
            let bytes = generatedPoster(seed: UInt64(2000 + id))
            fake.setPoster("k\(id).png", bytes)
            good[id] = bytes
            list.append(movieJSON(id: id, title: "K\(id)", posterPath: "/k\(id).png"))
        }
        // Bad posters spread through the list, so cancellations land around their records.
        let bad: [MovieID: SkipReason] = [30: .posterNotFound, 31: .noPosterPath, 32: .undecodable, 33: .serverError]
        list.insert(movieJSON(id: 30, title: "Gone", posterPath: "/gone.png"), at: 2)
        list.insert(movieJSON(id: 31, title: "No poster", posterPath: nil), at: 6)
        let cut = generatedPoster(seed: 32)
        fake.setPoster("half.png", Array(cut[0..<(cut.count / 2)]))
        list.insert(movieJSON(id: 32, title: "Truncated", posterPath: "/half.png"), at: 10)
        fake.inject(Array(repeating: .status(500, retryAfter: nil), count: 1000), for: "poster:down.png")
        list.append(movieJSON(id: 33, title: "Down", posterPath: "/down.png"))
        try fake.setPage(1, movies: list)
        fake.setTotalPages(1)
        let dbPath = dir.appendingPathComponent("db.sqlite").path
        try await withFakeTMDB(fake) {
            var config = pipelineConfig(fake, cache: dir.appendingPathComponent("cache"))
            config.batchSize = 2
            config.concurrency = 2
            config.tmdb.maxAttempts = 2
            for cancelAt in [2, 3, 4, 5, 6, 7, 9, 12, 16] {
                var embedders = testEmbedders()
                for i in embedders.indices { embedders[i].delayPerBatch = 0.002 }
                let pipeline = IngestPipeline(
                    configuration: config, store: try SQLiteVectorStore(path: dbPath), embedders: embedders)
                await runCancelled(pipeline, atEvent: cancelAt)
            }
            let embedders = testEmbedders()
            let store = try SQLiteVectorStore(path: dbPath)
            let stored = try await vectorCount(store)
            let last = try await IngestPipeline(configuration: config, store: store, embedders: embedders).run()
            #expect(last.alreadyDone + last.embedded == 16)
            // The last run embeds exactly the pairs the cancelled runs did not commit.
            #expect(embedders.map(\.log.images).reduce(0, +) == 16 * 2 - stored)
            try await expectStoredVectors(store: store, embedders: embedders, posters: good, count: 16)

            let records = try await store.skipRecords(movieIDs: nil)
            #expect(Dictionary(uniqueKeysWithValues: records.map { ($0.skip.movieID, $0.skip.reason) }) == bad)
            #expect(records.allSatisfy { $0.skip.space == nil })
            // A permanent skip, once recorded, is never tried again: one attempt each.
            #expect(records.filter { !$0.skip.reason.isTransient }.allSatisfy { $0.attempts == 1 })
            #expect(try await store.completedPairs(movieIDs: Array(bad.keys), spaces: ["clip", "resnet50"]).isEmpty)
            #expect(try await store.stats().skips.records == 4)
        }
    }
}

@Suite(.enabled(if: TestPostgres.shouldRun, Comment(rawValue: TestPostgres.skipMessage)))
struct PostgresSkipRecordTests {
    @Test func rerunRetriesTransientSkipsOnlyOnPostgreSQL() async throws {
        var config = try PostgresStoreConfiguration(url: try TestPostgres.requireURL())
        config.schema = TestPostgres.freshSchema("skips")
        let store = try await PostgresVectorStore.open(configuration: config)
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try await rerunScenario(store: store, dir: dir)
        await store.shutdown()
    }
}
