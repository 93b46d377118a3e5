import Foundation
@testable import PostgresStore
import PosterSimCore
import Store
import TestSupport
import Testing

enum PostgresTestStore {
    /// The contract factory for the PostgreSQL store: a new schema per case, and reopening it as a new instance.
    static let factory: VectorStoreContract.Factory = {
        var config = try PostgresStoreConfiguration(url: try TestPostgres.requireURL())
        config.schema = TestPostgres.freshSchema()
        let opened = config
        let store = try await PostgresVectorStore.open(configuration: opened)
        return (store, { try await PostgresVectorStore.open(configuration: opened) })
    }
}

/// The `VectorStore` contract run against `PostgresVectorStore` on a real PostgreSQL + pgvector server.
@Suite(.enabled(if: TestPostgres.shouldRun, Comment(rawValue: TestPostgres.skipMessage)))
struct PostgresContractTests {
    let contract = VectorStoreContract(makeStore: PostgresTestStore.factory)

    @Test func upsertFetchDeleteCount() async throws { try await contract.upsertFetchDeleteCount() }
    @Test func tmdbJSONRoundTrip() async throws { try await contract.tmdbJSONRoundTrip() }
    @Test func titleSearchIgnoresCaseAndAccentsPopularFirst() async throws {
        try await contract.titleSearchIgnoresCaseAndAccentsPopularFirst()
    }
    @Test func batchIsAllOrNothing() async throws { try await contract.batchIsAllOrNothing() }
    @Test func identityChangeMakesStale() async throws { try await contract.identityChangeMakesStale() }
    @Test func precisionIsPartOfIdentity() async throws { try await contract.precisionIsPartOfIdentity() }
    @Test func filters() async throws { try await contract.filters() }
    @Test func excludeSelfAndTieOrder() async throws { try await contract.excludeSelfAndTieOrder() }
    @Test func typedErrors() async throws { try await contract.typedErrors() }
    @Test func reopenGivesSameResults() async throws { try await contract.reopenGivesSameResults() }
    @Test func concurrentReadersSeeWholeBatches() async throws { try await contract.concurrentReadersSeeWholeBatches() }
    @Test func revisionChangesOnWrite() async throws { try await contract.revisionChangesOnWrite() }
    @Test func storedVectorsComeBack() async throws { try await contract.storedVectorsComeBack() }
    @Test func skipRecordsLifecycle() async throws { try await contract.skipRecordsLifecycle() }
    @Test func importedSkipRecordsAreKeptAsGiven() async throws { try await contract.importedSkipRecordsAreKeptAsGiven() }
}

/// The neighbour-list contract on `PostgresVectorStore`.
@Suite(.enabled(if: TestPostgres.shouldRun, Comment(rawValue: TestPostgres.skipMessage)))
struct PostgresNeighbourListTests {
    static let factory = NeighbourListContract.factory(from: PostgresTestStore.factory)
    let contract = NeighbourListContract(makeStore: PostgresNeighbourListTests.factory)

    @Test func listsFollowInsertsReplacementsAndDeletes() async throws {
        try await contract.listsFollowInsertsReplacementsAndDeletes()
    }
    @Test func identityChangeStartsNewLists() async throws { try await contract.identityChangeStartsNewLists() }
    @Test func listsFollowPosterChanges() async throws { try await contract.listsFollowPosterChanges() }
    @Test func missingListsAreBuilt() async throws { try await contract.missingListsAreBuilt() }
    @Test func listsStayExactWithRealValuedVectors() async throws {
        try await contract.listsStayExactWithRealValuedVectors()
    }

    /// Queries by id really come from the lists: the list path answers, and answers what the scan answers.
    @Test func queriesByIDAreAnsweredFromTheList() async throws {
        let (made, _) = try await Self.factory()
        let store = try #require(made as? PostgresVectorStore)
        let space = NeighbourListContract.cosine
        try await store.registerSpace(space, identity: NeighbourListContract.idA)
        var rng = SplitMix64(seed: 19)
        try await store.upsertMovies((1...150).map(NeighbourListContract.movie))
        try await store.upsertEmbeddings(
            (1...150).map { EmbeddingInput(movieID: $0, vector: NeighbourListContract.vector(&rng, dimension: 8)) },
            space: space.name, identity: NeighbourListContract.idA)
        let info = try await store.spaceInfo(space.name)
        let vectors = try await store.fetchVectors(ids: Array(1...150), space: space.name)
        for id in stride(from: 1, through: 150, by: 7) {
            let listed = try await store.listedQuery(info, movieID: id, k: 10, filter: .none, excludeSelf: true)
            let scan = try await store.query(space: space.name, vector: vectors[id]!, k: 11, filter: .none)
            #expect(listed == Array(scan.filter { $0.movieID != id }.prefix(10)))
        }
        // Beyond the list's length: the caller scans.
        #expect(try await store.listedQuery(info, movieID: 1, k: 101, filter: .none, excludeSelf: true) == nil)
    }
}
