import PosterSimCore
import TestSupport
import Foundation
import Testing

@testable import Store

/// A temporary directory removed when the test process no longer needs it (each store gets its own file).
enum TempStore {
    static func newPath() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("postersim-store-tests-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent("\(UUID().uuidString).sqlite").path
    }

    /// The contract factory for the SQLite store: a fresh file, and reopening that file as a new instance.
    static let sqliteFactory: VectorStoreContract.Factory = {
        let path = try newPath()
        let store = try SQLiteVectorStore(path: path)
        return (store, { try SQLiteVectorStore(path: path) })
    }
}

/// The `VectorStore` contract run against `SQLiteVectorStore`.
@Suite struct SQLiteContractTests {
    let contract = VectorStoreContract(makeStore: TempStore.sqliteFactory)

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
    @Test func storedVectorsComeBack() async throws { try await contract.storedVectorsComeBack() }
    @Test func revisionChangesOnWrite() async throws { try await contract.revisionChangesOnWrite() }
    @Test func skipRecordsLifecycle() async throws { try await contract.skipRecordsLifecycle() }
    @Test func importedSkipRecordsAreKeptAsGiven() async throws { try await contract.importedSkipRecordsAreKeptAsGiven() }
}

/// The neighbour-list contract on `SQLiteVectorStore`, plus a check that queries by id really come from the lists.
@Suite struct SQLiteNeighbourListTests {
    static let factory = NeighbourListContract.factory(from: TempStore.sqliteFactory)
    let contract = NeighbourListContract(makeStore: SQLiteNeighbourListTests.factory)

    @Test func listsFollowInsertsReplacementsAndDeletes() async throws {
        try await contract.listsFollowInsertsReplacementsAndDeletes()
    }
    @Test func identityChangeStartsNewLists() async throws { try await contract.identityChangeStartsNewLists() }
    @Test func listsFollowPosterChanges() async throws { try await contract.listsFollowPosterChanges() }
    @Test func missingListsAreBuilt() async throws { try await contract.missingListsAreBuilt() }
    @Test func listsStayExactWithRealValuedVectors() async throws {
        try await contract.listsStayExactWithRealValuedVectors()
    }

    @Test func queriesByIDAreAnsweredFromTheList() async throws {
        let store = try SQLiteVectorStore(path: try TempStore.newPath())
        let space = NeighbourListContract.cosine
        try await store.registerSpace(space, identity: NeighbourListContract.idA)
        var rng = SplitMix64(seed: 19)
        try await store.upsertMovies((1...200).map(NeighbourListContract.movie))
        try await store.upsertEmbeddings(
            (1...200).map { EmbeddingInput(movieID: $0, vector: NeighbourListContract.vector(&rng, dimension: 8)) },
            space: space.name, identity: NeighbourListContract.idA)
        let revision = store.loadedRevision.value
        let index = try #require(store.current.value.spaces[space.name])
        for id in 1...200 {
            let listed = try await store.listedNeighbours(of: id, in: index, revision: revision, count: 10, filter: nil)
            let v = try #require(index.vector(of: id))
            let scan = index.search(v, k: 10, filter: nil, excludedRow: index.rowOfMovie[id], maxThreads: 1)
            #expect(listed == scan)
        }
        // A stale revision makes the caller scan rather than mix a newer list with an older snapshot.
        #expect(try await store.listedNeighbours(of: 1, in: index, revision: revision - 1, count: 10, filter: nil) == nil)
        // Beyond the list's length: scan.
        #expect(try await store.listedNeighbours(of: 1, in: index, revision: revision, count: 101, filter: nil) == nil)
    }
}
