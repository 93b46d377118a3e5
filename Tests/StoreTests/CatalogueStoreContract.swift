import Foundation
import PosterSimCore
import TestSupport
import Testing

@testable import Store

/// The behaviour every `CatalogueStore` must have (sightings, sources, language, watermark, and the vectors of a
/// replaced poster dropped with it), run on SQLite and on PostgreSQL from the same factories as the vector contract.
struct CatalogueStoreContract: Sendable {
    let makeStore: VectorStoreContract.Factory

    typealias C = VectorStoreContract
    static let t1 = Date(timeIntervalSince1970: 1_762_000_000.25)
    static let t2 = Date(timeIntervalSince1970: 1_762_086_400.5)

    func prepared() async throws -> (store: any CatalogueStore, reopen: @Sendable () async throws -> any CatalogueStore) {
        let made = try await makeStore()
        let store = try #require(made.store as? any CatalogueStore)
        try await store.registerSpace(C.clip, identity: C.idA)
        try await store.registerSpace(C.resnet, identity: C.idR)
        let reopen = made.reopen
        return (store, { try #require(try await reopen() as? any CatalogueStore) })
    }

    func refreshSortsAddedChangedAndReplacedPosters() async throws {
        let (store, reopen) = try await prepared()
        let first = try await store.refreshMovies([C.movie(1), C.movie(2), C.movie(3)], source: "list:popular", at: Self.t1)
        #expect(first == CatalogueRefresh(added: [1, 2, 3]))
        for id in 1...3 {
            try await store.upsertEmbeddings(
                [EmbeddingInput(movieID: id, vector: [Float(id), 1, 0, 0])], space: "clip", identity: C.idA)
            try await store.upsertEmbeddings(
                [EmbeddingInput(movieID: id, vector: [Float(id), 2, 0])], space: "resnet50", identity: C.idR)
        }
        var renamed = C.movie(2)
        renamed.title = "Renamed"
        var reposted = C.movie(3)
        reposted.posterPath = "/new3.jpg"
        let second = try await store.refreshMovies(
            [C.movie(1), renamed, reposted, C.movie(4)], source: "changes", at: Self.t2)
        #expect(second == CatalogueRefresh(added: [4], metadataChanged: [2, 3], posterChanged: [3]))
        #expect(try await store.fetchMovies(ids: [2, 3]) == [renamed, reposted])

        // Movie 3's vectors described its old poster: gone in both spaces, not searchable, not done.
        for s in [store, try await reopen()] {
            let done = try await s.completedPairs(movieIDs: [1, 2, 3, 4], spaces: ["clip", "resnet50"])
            #expect(done == Set([1, 2].flatMap { [EmbeddingKey(movieID: $0, space: "clip"), EmbeddingKey(movieID: $0, space: "resnet50")] }))
            let matches = try await s.query(space: "clip", vector: [3, 1, 0, 0], k: 10)
            #expect(!matches.contains { $0.movieID == 3 })
            #expect(try await s.fetchVectors(ids: [1, 3], space: "resnet50") == [1: [1, 2, 0]])
        }

        // Sightings: both sources for movies seen twice, first and last times kept.
        let entries = try await store.catalogueEntries(movieIDs: nil)
        #expect(entries.map(\.movieID) == [1, 2, 3, 4])
        #expect(entries[0] == CatalogueEntry(movieID: 1, sources: ["changes", "list:popular"], firstSeenAt: Self.t1, lastSeenAt: Self.t2))
        #expect(entries[3] == CatalogueEntry(movieID: 4, sources: ["changes"], firstSeenAt: Self.t2, lastSeenAt: Self.t2))
        #expect(try await reopen().catalogueEntries(movieIDs: [4, 99]) == [entries[3]])
        #expect(try await store.allMovieIDs() == [1, 2, 3, 4])

        // Deleting a movie deletes its sightings.
        try await store.deleteMovies(ids: [1])
        #expect(try await store.catalogueEntries(movieIDs: [1]).isEmpty)
    }

    func refreshKeepsStoredRankWhenNoneGiven() async throws {
        let (store, _) = try await prepared()
        try await store.refreshMovies([C.movie(7)], source: "list:popular", at: Self.t1)
        var unranked = C.movie(7)
        unranked.popularityRank = nil
        let kept = try await store.refreshMovies([unranked], source: "discover:x", at: Self.t2)
        #expect(kept == CatalogueRefresh())
        #expect(try await store.fetchMovie(id: 7)?.popularityRank == 7)
        var reranked = C.movie(7)
        reranked.popularityRank = 2
        #expect(try await store.refreshMovies([reranked], source: "list:popular", at: Self.t2) == CatalogueRefresh())
        #expect(try await store.fetchMovie(id: 7)?.popularityRank == 2)
    }

    func stateLanguageSourcesAndWatermark() async throws {
        let (store, reopen) = try await prepared()
        #expect(try await store.catalogueState() == CatalogueState())
        let a = CatalogueSourceRecord(key: "list:popular", spec: "list popular pages=5")
        let a2 = CatalogueSourceRecord(key: "list:popular", spec: "list popular pages=20")
        let b = CatalogueSourceRecord(key: "trending:week", spec: "trending week pages=1")
        #expect(try await store.adoptCatalogue(language: "fr-FR", sources: [a]) == CatalogueState(language: "fr-FR", sources: [a]))
        try await store.adoptCatalogue(language: "fr-FR", sources: [b, a2])
        await #expect(throws: StoreError.languageMismatch(stored: "fr-FR", requested: "en-US")) {
            try await store.adoptCatalogue(language: "en-US", sources: [])
        }
        try await store.setSyncWatermark(Self.t2)
        let expected = CatalogueState(language: "fr-FR", sources: [a2, b], syncWatermark: Self.t2)
        #expect(try await store.catalogueState() == expected)
        #expect(try await reopen().catalogueState() == expected)
    }

    func badCatalogueInputIsRefused() async throws {
        let (store, _) = try await prepared()
        await #expect(throws: StoreError.invalidMovie(-1, reason: "TMDB ids are non-negative")) {
            try await store.refreshMovies([C.movie(-1)], source: "x", at: Self.t1)
        }
        await #expect(throws: StoreError.invalidCatalogue("a sighting needs a source")) {
            try await store.refreshMovies([C.movie(1)], source: "", at: Self.t1)
        }
        await #expect(throws: StoreError.invalidCatalogue("empty language")) {
            try await store.adoptCatalogue(language: "", sources: [])
        }
        #expect(try await store.movieCount() == 0)
        #expect(try await store.refreshMovies([], source: "x", at: Self.t1) == CatalogueRefresh())
    }
}

@Suite struct SQLiteCatalogueContractTests {
    let contract = CatalogueStoreContract(makeStore: TempStore.sqliteFactory)

    @Test func refreshSortsAddedChangedAndReplacedPosters() async throws {
        try await contract.refreshSortsAddedChangedAndReplacedPosters()
    }
    @Test func refreshKeepsStoredRankWhenNoneGiven() async throws { try await contract.refreshKeepsStoredRankWhenNoneGiven() }
    @Test func stateLanguageSourcesAndWatermark() async throws { try await contract.stateLanguageSourcesAndWatermark() }
    @Test func badCatalogueInputIsRefused() async throws { try await contract.badCatalogueInputIsRefused() }
}

@Suite(.enabled(if: TestPostgres.shouldRun, Comment(rawValue: TestPostgres.skipMessage)))
struct PostgresCatalogueContractTests {
    let contract = CatalogueStoreContract(makeStore: PostgresTestStore.factory)

    @Test func refreshSortsAddedChangedAndReplacedPosters() async throws {
        try await contract.refreshSortsAddedChangedAndReplacedPosters()
    }
    @Test func refreshKeepsStoredRankWhenNoneGiven() async throws { try await contract.refreshKeepsStoredRankWhenNoneGiven() }
    @Test func stateLanguageSourcesAndWatermark() async throws { try await contract.stateLanguageSourcesAndWatermark() }
    @Test func badCatalogueInputIsRefused() async throws { try await contract.badCatalogueInputIsRefused() }
}
