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
