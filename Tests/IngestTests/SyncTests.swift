// Day one: ingest from the stand-in. Day two: the stand-in renames some films, replaces some posters, adds films and
// removes one. Sync: exactly the new films and the new posters go through the models (counted by the models
// themselves), every stored vector is the current poster's, and a sync killed anywhere then run again leaves the
// same store as one that ran through. On SQLite here, on PostgreSQL in PostgresSyncTests.
import Foundation
import HTTPSupport
import Ingest
import PosterSimCore
import Store
import Synchronization
import TestSupport
import Testing

/// The stand-in's catalogue for sync tests and the clocks around it.
final class SyncWorld: Sendable {
    static let dayOne = Date(timeIntervalSince1970: 1_793_534_400)  // 2026-11-01 12:00 UTC
    static let dayTwo = dayOne.addingTimeInterval(86_400)

    let fake: FakeTMDB
    /// The stand-in's "today": its changes are stamped with this clock's day.
    let fakeClock = VirtualClock(date: SyncWorld.dayOne)
    let dir: URL

    init() throws {
        fake = FakeTMDB(clock: fakeClock)
        dir = try temporaryFolder()
        fake.configureCatalogue(pageSize: 5)
        for id in 1...30 { addMovie(id) }
        fake.setList("popular", ids: Array(1...24))
        fake.setList("top_rated", ids: Array(25...30) + [2, 4])
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    static func posterName(_ id: Int, _ version: Int) -> String { "p\(id)v\(version).png" }

    static func posterBytes(_ id: Int, _ version: Int) -> [UInt8] {
        generatedPoster(seed: UInt64(id * 100 + version), width: 30 + id % 7, height: 45 + version)
    }

    func addMovie(_ id: Int, year: Int = 2020) {
        fake.setPoster(Self.posterName(id, 1), Self.posterBytes(id, 1))
        fake.addMovies([
            FakeMovie(
                id: id, title: "Film \(id)", posterPath: "/" + Self.posterName(id, 1),
                releaseDate: String(format: "%04d-%02d-%02d", year, 1 + id % 12, 1 + id % 28), popularity: 1000 - Double(id),
                voteCount: 50 + id, originalLanguage: id % 3 == 0 ? "fr" : "en", adult: false, genres: [18, 35])
        ])
    }

    /// Replaces a movie's poster (a new `poster_path`, as TMDB does) and records the change.
    func replacePoster(_ id: Int, version: Int) {
        fake.setPoster(Self.posterName(id, version), Self.posterBytes(id, version))
        fake.change(id) { $0.posterPath = "/" + Self.posterName(id, version) }
    }

    /// Day two: 3 and 24 renamed, 5 and 23 get new posters, 23 and 24 leave the popular list (so only the change feed
    /// names them), 31 and 32 enter it, 10 is removed from TMDB, 7's votes move.
    func dayTwo() {
        fakeClock.advance(by: .seconds(86_400))
        fake.change(3) { $0.title = "Film 3, Director's Cut" }
        fake.change(24) { $0.title = "Film 24 (Restored)" }
        replacePoster(5, version: 2)
        replacePoster(23, version: 2)
        fake.change(7) { $0.voteCount += 1000 }
        addMovie(31)
        addMovie(32)
        fake.setList("popular", ids: Array(1...22) + [31, 32])
        fake.remove(10)
    }

    /// The poster bytes each movie has now on the stand-in (removed movies: their last poster).
    func currentPosters(_ ids: [MovieID], fallback: [MovieID: [UInt8]] = [:]) -> [MovieID: [UInt8]] {
        var out: [MovieID: [UInt8]] = [:]
        for id in ids {
            if let path = fake.movie(id)?.posterPath, let version = Int(path.split(separator: "v").last?.dropLast(4) ?? "") {
                out[id] = Self.posterBytes(id, version)
            } else if let bytes = fallback[id] {
                out[id] = bytes
            }
        }
        return out
    }

    /// Ingest settings at `date`, on a clock of their own (so two runs at the same date record the same times).
    func ingestConfiguration(_ source: CatalogueSource, at date: Date, cache: String) -> IngestConfiguration {
        var c = IngestConfiguration(source: .catalogue(source))
        c.tmdb = testSettings(fake)
        c.clock = VirtualClock(date: date)
        c.posterCacheDirectory = dir.appendingPathComponent(cache).path
        c.concurrency = 4
        c.batchSize = 3
        return c
    }

    func syncConfiguration(at date: Date, cache: String, prune: PrunePolicy = .keep) -> SyncConfiguration {
        var c = SyncConfiguration(ingest: ingestConfiguration(.list(.popular, pages: 1), at: date, cache: cache))
        c.prune = prune
        return c
    }

    /// Day one's two ingests (popular and top rated) into `store`.
    func ingestDayOne(into store: any CatalogueStore, embedders: [ProjectionEmbedder], cache: String) async throws {
        for source in [CatalogueSource.list(.popular, pages: 10), .list(.topRated, pages: 10)] {
            try await IngestPipeline(
                configuration: ingestConfiguration(source, at: Self.dayOne, cache: cache), store: store,
                embedders: embedders
            ).run()
        }
    }
}

/// Everything a store holds, for comparing two stores.
struct StoreContents: Equatable {
    var movies: [Movie]
    var vectors: [String: [MovieID: [Float]]]
    var entries: [CatalogueEntry]
    var state: CatalogueState
    var skips: [SkipRecord]

    init(_ store: any CatalogueStore, spaces: [String]) async throws {
        let ids = try await store.allMovieIDs()
        movies = try await store.fetchMovies(ids: ids)
        vectors = [:]
        for s in spaces { vectors[s] = try await store.fetchVectors(ids: ids, space: s) }
        entries = try await store.catalogueEntries(movieIDs: nil)
        state = try await store.catalogueState()
        skips = try await store.skipRecords(movieIDs: nil)
    }
}

/// The movies whose current posters the model ran on, from its log entries after `from`.
func embeddedMovies(_ embedder: ProjectionEmbedder, from: Int, posters: [MovieID: [UInt8]]) throws -> [MovieID] {
    var byDigest: [Int: MovieID] = [:]
    for (id, bytes) in posters { byDigest[try embedder.digest(posterBytes: bytes)] = id }
    return try embedder.log.digests.dropFirst(from).map { digest in
        guard let id = byDigest[digest] else { throw TestFailure("\(embedder.space.name) ran on an image that is no current poster") }
        return id
    }.sorted()
}

/// Runs `sync`, cancelling it at the first event `stopAt` accepts (as a kill at that moment would stop it).
func runSyncCancelled(_ sync: CatalogueSync, stopAt: @escaping @Sendable (SyncEvent) -> Bool) async -> Bool {
    let handle = Mutex<Task<SyncSummary, any Error>?>(nil)
    let hit = Mutex(false)
    let task = Task {
        try await sync.run { event in
            if stopAt(event), !hit.withLock({ $0 }) {
                hit.withLock { $0 = true }
                handle.withLock { $0?.cancel() }
            }
        }
    }
    handle.withLock { $0 = task }
    if hit.withLock({ $0 }) { task.cancel() }
    let finished = (try? await task.value) != nil
    return hit.withLock { $0 } && !finished
}

/// The checks of a day-one ingest and a day-two sync, on any store.
enum SyncScenario {
    static func dayTwoSyncEmbedsOnlyNewFilmsAndPosters(_ makeStore: @Sendable () async throws -> any CatalogueStore)
        async throws
    {
        let world = try SyncWorld()
        let embedders = testEmbedders()
        try await withFakeTMDB(world.fake) {
            let store = try await makeStore()
            try await world.ingestDayOne(into: store, embedders: embedders, cache: "a")
            let dayOnePosters = world.currentPosters(Array(1...30))
            #expect(try embedders.map { try embeddedMovies($0, from: 0, posters: dayOnePosters) } == [Array(1...30), Array(1...30)])
            let state = try await store.catalogueState()
            #expect(state.language == "en-US")
            #expect(state.sources.map(\.key) == ["list:popular", "list:top_rated"])
            #expect(state.syncWatermark == SyncWorld.dayOne)
            #expect(try await store.catalogueEntries(movieIDs: [2]).first?.sources == ["list:popular", "list:top_rated"])

            world.dayTwo()
            // Faults the sync must ride out: 429 with Retry-After on the change feed, 5xx on a list page and on a
            // details call, a dropped answer on a new poster.
            world.fake.inject([.status(429, retryAfter: "1")], for: "/3/movie/changes:1")
            world.fake.inject([.status(500, retryAfter: nil)], for: "/3/movie/popular:2")
            world.fake.inject([.status(503, retryAfter: nil), .status(502, retryAfter: nil)], for: "/3/movie/24")
            world.fake.inject([.cut], for: "poster:p31v1.png")
            let before = embedders.map(\.log.digests.count)
            let summary = try await CatalogueSync(
                configuration: world.syncConfiguration(at: SyncWorld.dayTwo, cache: "a"), store: store,
                embedders: embedders
            ).run()

            #expect(world.fake.state.withLock { $0.faults.values.allSatisfy(\.isEmpty) }, "every injected fault was met")
            // Exactly the two new films and the two new posters went through each model, once.
            let posters = world.currentPosters(Array(1...32), fallback: dayOnePosters)
            for (e, start) in zip(embedders, before) {
                #expect(try embeddedMovies(e, from: start, posters: posters) == [5, 23, 31, 32])
            }
            // Every stored vector is what the model gives the movie's current poster; the removed film is kept.
            try await expectStoredVectors(store: store, embedders: embedders, posters: posters, count: 32)
            let movies = Dictionary(uniqueKeysWithValues: try await store.fetchMovies(ids: [3, 7, 10, 23, 24]).map { ($0.id, $0) })
            #expect(movies[3]?.title == "Film 3, Director's Cut")
            #expect(movies[24]?.title == "Film 24 (Restored)")
            #expect(movies[23]?.posterPath == "/p23v2.png")
            #expect(movies[7]?.voteCount == 1057)
            #expect(movies[10] != nil)
            #expect(try await store.catalogueState().syncWatermark == SyncWorld.dayTwo)
            #expect(try await store.catalogueEntries(movieIDs: [24]).first?.sources == ["changes", "list:popular"])
            // The changed films outside the lists were looked up; nothing else was.
            let details = world.fake.requests.filter { $0.path.range(of: #"^/3/movie/\d+$"#, options: .regularExpression) != nil }
            #expect(Set(details.map(\.path)) == ["/3/movie/10", "/3/movie/23", "/3/movie/24"])

            #expect(summary.added == 2 && summary.postersChanged == 2)
            #expect(summary.goneIDs == [10] && summary.skipped["gone_kept"] == 1 && summary.pruned == 0)
            #expect(summary.embedded == ["clip": 2, "resnet50": 2] && summary.reembedded == ["clip": 2, "resnet50": 2])
            #expect(summary.changeFeed.hasPrefix("changes since \(CalendarDay(SyncWorld.dayOne)): "))

            // Synced again the same day: nothing to embed.
            let again = embedders.map(\.log.digests.count)
            try await CatalogueSync(
                configuration: world.syncConfiguration(at: SyncWorld.dayTwo, cache: "a"), store: store,
                embedders: embedders
            ).run()
            #expect(embedders.map(\.log.digests.count) == again)
        }
    }

    /// Stops a sync at `stopAt`, runs it again, and compares the store with one whose sync ran through.
    static func killedSyncRerunEqualsUninterrupted(
        _ makeStore: @Sendable () async throws -> any CatalogueStore, stopAt: @escaping @Sendable (SyncEvent) -> Bool
    ) async throws {
        let world = try SyncWorld()
        try await withFakeTMDB(world.fake) {
            let reference = try await makeStore()
            let interrupted = try await makeStore()
            let embedders = testEmbedders()
            try await world.ingestDayOne(into: reference, embedders: embedders, cache: "ref")
            try await world.ingestDayOne(into: interrupted, embedders: embedders, cache: "cut")
            world.dayTwo()
            try await CatalogueSync(
                configuration: world.syncConfiguration(at: SyncWorld.dayTwo, cache: "ref"), store: reference,
                embedders: embedders
            ).run()
            let stopped = await runSyncCancelled(
                CatalogueSync(
                    configuration: world.syncConfiguration(at: SyncWorld.dayTwo, cache: "cut"), store: interrupted,
                    embedders: embedders),
                stopAt: stopAt)
            #expect(stopped, "the sync was not stopped where asked")
            #expect(try await interrupted.catalogueState().syncWatermark == SyncWorld.dayOne)
            try await CatalogueSync(
                configuration: world.syncConfiguration(at: SyncWorld.dayTwo, cache: "cut"), store: interrupted,
                embedders: embedders
            ).run()
            let spaces = embedders.map(\.space.name)
            let a = try await StoreContents(reference, spaces: spaces)
            let b = try await StoreContents(interrupted, spaces: spaces)
            #expect(a == b)
        }
    }
}

/// Where the kill tests stop a sync.
enum StopPoint: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case afterFirstSource, changes, prune, embed, firstBatch, commit

    var testDescription: String { rawValue }

    var matches: @Sendable (SyncEvent) -> Bool {
        switch self {
        case .afterFirstSource: { if case .sourceRead = $0 { true } else { false } }
        case .changes: { if case .stage("changes") = $0 { true } else { false } }
        case .prune: { if case .stage("prune") = $0 { true } else { false } }
        case .embed: { if case .stage("embed") = $0 { true } else { false } }
        case .firstBatch: { if case .ingest(.batchStored) = $0 { true } else { false } }
        case .commit: { if case .stage("commit") = $0 { true } else { false } }
        }
    }
}

@Suite(.timeLimit(.minutes(3))) struct SyncTests {
    static func sqlite(_ dir: URL) -> @Sendable () async throws -> any CatalogueStore {
        { try SQLiteVectorStore(path: dir.appendingPathComponent("\(UUID().uuidString).sqlite").path) }
    }

    @Test func dayTwoSyncEmbedsOnlyNewFilmsAndPosters() async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try await SyncScenario.dayTwoSyncEmbedsOnlyNewFilmsAndPosters(Self.sqlite(dir))
    }

    @Test(arguments: StopPoint.allCases) func killedSyncRerunEqualsUninterrupted(_ stop: StopPoint) async throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try await SyncScenario.killedSyncRerunEqualsUninterrupted(Self.sqlite(dir), stopAt: stop.matches)
    }

    @Test func pruneRemovesGoneAndAdultFilms() async throws {
        let world = try SyncWorld()
        let store = try await Self.sqlite(world.dir)()
        let embedders = testEmbedders()
        try await withFakeTMDB(world.fake) {
            try await world.ingestDayOne(into: store, embedders: embedders, cache: "a")
            world.fakeClock.advance(by: .seconds(86_400))
            world.fake.remove(10)
            // 25 turns adult and leaves the top-rated list (lists leave adult films out).
            world.fake.change(25) { $0.adult = true }
            world.fake.setList("top_rated", ids: Array(26...30) + [2, 4])
            let kept = try await CatalogueSync(
                configuration: world.syncConfiguration(at: SyncWorld.dayTwo, cache: "a"), store: store,
                embedders: embedders
            ).run()
            #expect(kept.goneIDs == [10] && kept.adultIDs == [25] && kept.pruned == 0)
            #expect(kept.skipped["gone_kept"] == 1 && kept.skipped["adult_kept"] == 1)
            #expect(try await store.fetchMovie(id: 25)?.adult == true)
            #expect(try await store.movieCount() == 30)

            var config = world.syncConfiguration(at: SyncWorld.dayTwo.addingTimeInterval(60), cache: "a", prune: .remove)
            config.detailsConcurrency = 2
            let pruned = try await CatalogueSync(configuration: config, store: store, embedders: embedders).run()
            #expect(pruned.pruned == 2 && pruned.skipped["gone_kept"] == nil)
            #expect(try await store.fetchMovies(ids: [10, 25]).isEmpty)
            #expect(try await store.movieCount() == 28)
        }
    }

    @Test func windowBeyondTMDBsLimitRefreshesTheSourcesInstead() async throws {
        let world = try SyncWorld()
        let store = try await Self.sqlite(world.dir)()
        let embedders = testEmbedders()
        try await withFakeTMDB(world.fake) {
            try await world.ingestDayOne(into: store, embedders: embedders, cache: "a")
            world.fakeClock.advance(by: .seconds(20 * 86_400))
            world.fake.change(3) { $0.title = "Film 3 renamed" }
            let summary = try await CatalogueSync(
                configuration: world.syncConfiguration(at: SyncWorld.dayOne.addingTimeInterval(20 * 86_400), cache: "a"),
                store: store, embedders: embedders
            ).run()
            #expect(world.fake.requests(prefix: "/3/movie/changes").isEmpty)
            #expect(summary.changeFeed.contains("exceeds TMDB's 14"))
            #expect(try await store.fetchMovie(id: 3)?.title == "Film 3 renamed")
            #expect(try await store.catalogueState().syncWatermark == SyncWorld.dayOne.addingTimeInterval(20 * 86_400))
        }
    }

    @Test func syncWithSourceFlagsAddsThemAndLanguageIsOnePerStore() async throws {
        let world = try SyncWorld()
        let store = try await Self.sqlite(world.dir)()
        let embedders = testEmbedders()
        world.fake.setList("trending:week", ids: [30, 2])
        world.fake.setList("upcoming", ids: [29])
        try await withFakeTMDB(world.fake) {
            // Nothing recorded and no flags: a typed error, nothing written.
            await #expect(throws: IngestError.self) {
                try await CatalogueSync(
                    configuration: world.syncConfiguration(at: SyncWorld.dayOne, cache: "a"), store: store,
                    embedders: embedders
                ).run()
            }
            var config = world.syncConfiguration(at: SyncWorld.dayOne, cache: "a")
            config.sources = [.trending(.week, pages: 1), .ids([29, 28])]
            let summary = try await CatalogueSync(configuration: config, store: store, embedders: embedders).run()
            #expect(summary.added == 4 && summary.changeFeed.hasPrefix("no watermark"))
            #expect(try await store.catalogueState().sources.map(\.spec) == ["ids 29,28", "trending week pages=1"])
            #expect(try await store.allMovieIDs() == [2, 28, 29, 30])

            // Another language for the same store is refused before anything is read.
            var french = world.ingestConfiguration(.list(.upcoming, pages: 1), at: SyncWorld.dayOne, cache: "a")
            french.tmdb.language = "fr-FR"
            let requests = world.fake.requests.count
            await #expect(throws: IngestError.self) {
                try await IngestPipeline(configuration: french, store: store, embedders: embedders).run()
            }
            #expect(world.fake.requests.count == requests)
            // A later --ids adds to the recorded ids.
            var more = world.ingestConfiguration(.ids([27]), at: SyncWorld.dayOne, cache: "a")
            more.models = ["clip"]
            try await IngestPipeline(configuration: more, store: store, embedders: embedders).run()
            #expect(try await store.catalogueState().sources.first?.spec == "ids 29,28,27")
        }
    }
}
