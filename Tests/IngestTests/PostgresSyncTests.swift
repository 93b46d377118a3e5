// The sync scenarios of SyncTests on PostgreSQL (scripts/pgserver sets POSTERSIM_TEST_PG_URL).
import Foundation
import PostgresStore
import Store
import TestSupport
import Testing

@Suite(.enabled(if: TestPostgres.shouldRun, Comment(rawValue: TestPostgres.skipMessage)), .timeLimit(.minutes(3)))
struct PostgresSyncTests {
    /// A new schema per store.
    static let store: @Sendable () async throws -> any CatalogueStore = {
        var config = try PostgresStoreConfiguration(url: try TestPostgres.requireURL())
        config.schema = TestPostgres.freshSchema("sync")
        return try await PostgresVectorStore.open(configuration: config)
    }

    @Test func dayTwoSyncEmbedsOnlyNewFilmsAndPosters() async throws {
        try await SyncScenario.dayTwoSyncEmbedsOnlyNewFilmsAndPosters(Self.store)
    }

    @Test(arguments: [StopPoint.changes, .firstBatch, .commit])
    func killedSyncRerunEqualsUninterrupted(_ stop: StopPoint) async throws {
        try await SyncScenario.killedSyncRerunEqualsUninterrupted(Self.store, stopAt: stop.matches)
    }
}
