// `make bench-sync`: a sync of a 10,000-movie catalogue against the stand-in where 1% of the posters changed, next to
// a full re-ingest of the same catalogue, in the same run: wall time and model runs. Runs only when
// POSTERSIM_BENCH_SYNC_TITLES names the shared title list (real TMDB ids and titles; not committed); the posters are
// generated. The models are the tests' projection embedders (cheap), so the times show everything but the model;
// the model runs show what real models would add.
import Foundation
import HTTPSupport
import Ingest
import PosterSimCore
import Store
import TestSupport
import Testing

@Suite(.enabled(if: ProcessInfo.processInfo.environment["POSTERSIM_BENCH_SYNC_TITLES"] != nil))
struct SyncBenchmark {
    @Test func syncNextToFullReingest() async throws {
        let env = ProcessInfo.processInfo.environment
        let titlesPath = try #require(env["POSTERSIM_BENCH_SYNC_TITLES"])
        let size = Int(env["POSTERSIM_BENCH_SYNC_MOVIES"] ?? "") ?? 10_000
        let rate = Double(env["POSTERSIM_BENCH_SYNC_RPS"] ?? "") ?? 40
        struct Title: Decodable { let label: String; let id: String }
        let titles = try JSONDecoder().decode([Title].self, from: Data(contentsOf: URL(fileURLWithPath: titlesPath)))

        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Day one was yesterday: the sync runs on the real clock (so the rate limit really waits) and reads a one-day
        // change window.
        let dayOne = Date().addingTimeInterval(-86_400)
        let fakeClock = VirtualClock(date: dayOne)
        let fake = FakeTMDB(clock: fakeClock)
        var ids: [Int] = []
        var seen = Set<Int>()
        for t in titles {
            guard let id = Int(t.id), seen.insert(id).inserted else { continue }
            ids.append(id)
        }
        var next = (ids.max() ?? 0) + 1
        while ids.count < size + size / 100 {
            ids.append(next)
            next += 1
        }
        let labels = Dictionary(titles.compactMap { t in Int(t.id).map { ($0, t.label) } }, uniquingKeysWith: { a, _ in a })
        func movie(_ id: Int, rank: Int) -> FakeMovie {
            let label = labels[id] ?? "Film \(id) - 2020-01-01"
            let parts = label.components(separatedBy: " - ")
            return FakeMovie(
                id: id, title: parts.dropLast().joined(separator: " - "), posterPath: "/b\(id)v1.png",
                releaseDate: parts.last ?? "2020-01-01", popularity: Double(100_000 - rank), voteCount: 100,
                originalLanguage: "en", adult: false, genres: [18])
        }
        let dayOneIDs = Array(ids.prefix(size))
        fake.addMovies(dayOneIDs.enumerated().map { movie($0.element, rank: $0.offset) })
        for id in dayOneIDs { fake.setPoster("b\(id)v1.png", generatedPoster(seed: UInt64(id))) }
        fake.setList("popular", ids: dayOneIDs)

        func configuration() -> IngestConfiguration {
            var c = IngestConfiguration(source: .catalogue(.list(.popular, pages: 500)))
            // Built once the fake runs (its port).
            c.tmdb = testSettings(fake)
            c.tmdb.requestsPerSecond = rate
            c.tmdb.burst = 1
            c.clock = SystemHTTPClock()
            c.posterCacheDirectory = dir.appendingPathComponent("posters").path
            c.batchSize = 8
            return c
        }
        let embedders = testEmbedders()
        let report = try await withFakeTMDB(fake) { () -> String in
            let store = try SQLiteVectorStore(path: dir.appendingPathComponent("synced.sqlite").path)
            var first = configuration()
            first.clock = VirtualClock(date: dayOne)
            first.tmdb.requestsPerSecond = 1e6
            first.tmdb.burst = 1000
            try await IngestPipeline(configuration: first, store: store, embedders: embedders).run()

            // Day two: 1% of the posters replaced, 1% of the titles changed, 1% new films, one film removed.
            fakeClock.advance(by: .seconds(86_400))
            let step = 100
            for id in dayOneIDs.enumerated().filter({ $0.offset % step == 1 }).map(\.element) {
                fake.setPoster("b\(id)v2.png", generatedPoster(seed: UInt64(id) &+ 1_000_000))
                fake.change(id) { $0.posterPath = "/b\(id)v2.png" }
            }
            for id in dayOneIDs.enumerated().filter({ $0.offset % step == 2 }).map(\.element) {
                fake.change(id) { $0.title += " (Director's Cut)" }
            }
            let newIDs = Array(ids.suffix(size / 100))
            fake.addMovies(newIDs.enumerated().map { movie($0.element, rank: size + $0.offset) })
            for id in newIDs { fake.setPoster("b\(id)v1.png", generatedPoster(seed: UInt64(id))) }
            fake.remove(dayOneIDs[3])
            // The list keeps 10,000 films (TMDB's cap): the new ones enter at the top, the last ones drop out.
            let dayTwoList = Array((newIDs + dayOneIDs.filter { $0 != dayOneIDs[3] }).prefix(size))
            fake.setList("popular", ids: dayTwoList)

            var lines: [String] = []
            // Sync of the day-one store.
            let before = embedders.map(\.log.images)
            let requestsBefore = fake.requests.count
            var syncConfig = SyncConfiguration(ingest: configuration())
            syncConfig.ingest.clock = SystemHTTPClock()
            let syncStart = ContinuousClock.now
            let summary = try await CatalogueSync(configuration: syncConfig, store: store, embedders: embedders).run()
            let syncTime = ContinuousClock.now - syncStart
            let syncRuns = zip(embedders, before).map { $0.log.images - $1 }
            lines.append(
                "sync:          \(fmt(syncTime)) s wall, model runs per model \(syncRuns), requests \(fake.requests.count - requestsBefore), "
                    + "added \(summary.added), posters changed \(summary.postersChanged), metadata updated "
                    + "\(summary.metadataUpdated), gone \(summary.goneIDs.count); stages "
                    + summary.stages.map { "\($0.name) \(String(format: "%.1f", $0.seconds))" }.joined(separator: ", "))

            // A full re-ingest of the day-two list into a new store (posters already in the cache, as for a rerun).
            let fresh = try SQLiteVectorStore(path: dir.appendingPathComponent("full.sqlite").path)
            let before2 = embedders.map(\.log.images)
            let requestsBefore2 = fake.requests.count
            let fullStart = ContinuousClock.now
            try await IngestPipeline(configuration: configuration(), store: fresh, embedders: embedders).run()
            let fullTime = ContinuousClock.now - fullStart
            let fullRuns = zip(embedders, before2).map { $0.log.images - $1 }
            lines.append(
                "full ingest:   \(fmt(fullTime)) s wall, model runs per model \(fullRuns), requests \(fake.requests.count - requestsBefore2)")
            #expect(syncRuns.allSatisfy { $0 == size / 100 + size / 100 })
            #expect(fullRuns.allSatisfy { $0 == size })
            return lines.joined(separator: "\n")
        }
        print("bench-sync: \(size) movies, \(rate) requests/s to the stand-in, projection models (\(embedders.count))\n" + report)
    }

    private func fmt(_ d: Duration) -> String {
        String(format: "%.1f", Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
    }
}
