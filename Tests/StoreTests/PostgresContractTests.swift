import Foundation
import PostgresStore
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
