import PosterSimCore
import Foundation
import PostgresStore
import Store
import TestSupport
import Testing

/// `postersim export`: SQLite -> PostgreSQL (interrupted, then resumed) -> SQLite, with equal contents and results.
@Suite(.enabled(if: TestPostgres.shouldRun, Comment(rawValue: TestPostgres.skipMessage)))
struct PostgresExportTests {
    @Test func exportIsResumableAndRoundTrips() async throws {
        let path = try TempStore.newPath()
        let sqlite = try SQLiteVectorStore(path: path)
        let clip = VectorSpace(name: "clip", dimension: 6, metric: .cosine)
        let resnet = VectorSpace(name: "resnet50", dimension: 5, metric: .euclidean)
        let old = ModelIdentity(repo: "openai/clip", weightsSHA256: "01")
        let idC = ModelIdentity(repo: "openai/clip", weightsSHA256: "02")
        let idR = ModelIdentity(repo: "microsoft/resnet-50", weightsSHA256: "03")
        let movies = (1...38).map { VectorStoreContract.movie($0, year: 1960 + $0, genres: [$0 % 4]) }
        try await sqlite.upsertMovies(movies)
        var gen = SplitMix64(seed: 3)
        func vec(_ d: Int) -> [Float] { (0..<d).map { _ in gen.nextFloat() } }
        try await sqlite.registerSpace(clip, identity: old)
        try await sqlite.upsertEmbeddings((1...5).map { EmbeddingInput(movieID: $0, vector: vec(6)) }, space: "clip",
                                          identity: old)
        try await sqlite.registerSpace(clip, identity: idC)  // those 5 are now stale: not exported
        try await sqlite.upsertEmbeddings((3...37).map { EmbeddingInput(movieID: $0, vector: vec(6)) }, space: "clip",
                                          identity: idC)
        try await sqlite.registerSpace(resnet, identity: idR)
        try await sqlite.upsertEmbeddings((1...30).map { EmbeddingInput(movieID: $0, vector: vec(5)) },
                                          space: "resnet50", identity: idR)
        // Skip records: movie 38's poster (it has no vector anywhere), movie 33's resnet50 embedding, and one whose
        // pair holds a vector (written after it), which the export leaves out as settled.
        let t0 = Date(timeIntervalSince1970: 1_700_000_000)
        let skips = [
            SkipRecord(skip: PosterSkip(movieID: 38, space: nil, reason: .posterNotFound, httpStatus: 404,
                                        message: "404", posterPath: movies[37].posterPath, source: "http://i/38.jpg"),
                       attempts: 3, firstFailedAt: t0, lastAttemptAt: t0.addingTimeInterval(7200)),
            SkipRecord(skip: PosterSkip(movieID: 33, space: "resnet50", reason: .invalidEmbedding,
                                        message: "non-finite component", posterPath: movies[32].posterPath,
                                        source: nil, identity: idR),
                       attempts: 1, firstFailedAt: t0, lastAttemptAt: t0),
        ]
        try await sqlite.importSkipRecords(skips)
        try await sqlite.recordSkips([PosterSkip(movieID: 10, space: "resnet50", reason: .invalidEmbedding,
                                                 message: "old", posterPath: nil, source: nil, identity: idR)],
                                     at: t0)
        func expectSkips(_ store: any VectorStore) async throws {
            let records = try await store.skipRecords(movieIDs: nil)
            #expect(records.map(\.skip) == [skips[1].skip, skips[0].skip])
            #expect(records.map(\.attempts) == [1, 3])
            #expect(records.map(\.lastAttemptAt) == [skips[1].lastAttemptAt, skips[0].lastAttemptAt])
        }

        var config = try PostgresStoreConfiguration(url: try TestPostgres.requireURL())
        config.schema = TestPostgres.freshSchema("export")
        let pg = try await PostgresVectorStore.open(configuration: config)
        let toPG = StoreExport(source: .sqlite(try SQLiteExportReader(path: path)), destination: pg, batchSize: 8)
        // Interrupted after 7 batches (5 of movies, 2 of vectors), as a crash would.
        await #expect(throws: CancellationError.self) { _ = try await toPG.run(stopAfterBatches: 7) }
        let resumed = try await toPG.run()
        #expect(resumed.skipRecords == 2 && resumed.skipRecordsSettled == 1)
        // The second run finds the first two vector batches (16 clip vectors) done and copies the rest.
        #expect(resumed.alreadyThere["clip"] == 16 && resumed.copied["clip"] == 19)
        #expect(resumed.copied["resnet50"] == 30)
        let again = try await toPG.run()
        #expect(again.copied.values.reduce(0, +) == 0)
        #expect(again.skipRecords == 2)  // written again, unchanged

        let back = try TempStore.newPath()
        let sqlite2 = try SQLiteVectorStore(path: back)
        _ = try await StoreExport(source: .postgres(pg), destination: sqlite2, batchSize: 10).run()

        for store in [pg as any VectorStore, sqlite2] {
            try await expectSkips(store)
            let stats = try await store.stats()
            #expect(stats.movies == 38)
            #expect(stats.spaces.map(\.space) == [clip, resnet])
            #expect(stats.spaces.map(\.vectors) == [35, 30])
            #expect(stats.spaces.map(\.identity) == [idC, idR])
            #expect(try await store.fetchMovies(ids: Array(1...38)) == movies)
            for probe in [3, 20, 30] {
                for space in ["clip", "resnet50"] {
                    let want = try await sqlite.query(space: space, movieID: probe, k: 8)
                    let got = try await store.query(space: space, movieID: probe, k: 8)
                    #expect(got.map(\.movieID) == want.map(\.movieID))
                    for (a, b) in zip(got, want) { #expect(abs(a.score - b.score) < 1e-5) }
                }
            }
        }
        await pg.shutdown()
    }
}
