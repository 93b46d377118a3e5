import Foundation
import Ingest
import PostgresStore
import Store
import TestSupport
import Testing

/// Ingest into PostgreSQL while the server restarts: the store retries through the outage and the run ends with every
/// (movie, model) pair stored exactly once.
@Suite(.enabled(if: TestPostgres.shouldRun, Comment(rawValue: TestPostgres.skipMessage)), .timeLimit(.minutes(3)))
struct PostgresIngestFaultTests {
    @Test func serverRestartedDuringIngestLosesAndDuplicatesNothing() async throws {
        _ = try TestPostgres.requireURL()
        let script = try #require(TestPostgres.serverScript, "POSTERSIM_TEST_PGSERVER is not set")
        // A server of its own (restarting the shared one would disturb the other PostgreSQL tests running in parallel).
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("pgserver-\(UUID().uuidString).env").path
        let server = "PGSERVER_STATE='\(state)' '\(script)'"
        let urlFile = state + ".url"
        guard await shell("\(server) start > '\(urlFile)'") == 0,
            let url = try? String(contentsOfFile: urlFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        else { throw TestFailure("cannot start a private PostgreSQL with \(script)") }
        defer {
            _ = system("\(server) stop >/dev/null 2>&1")
            try? FileManager.default.removeItem(atPath: urlFile)
        }
        let restart = "\(server) restart"
        var config = try PostgresStoreConfiguration(url: url)
        config.schema = TestPostgres.freshSchema("ingest")
        config.retryWindow = .seconds(60)
        let store = try await PostgresVectorStore.open(configuration: config)

        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let count = 40
        var (ingest, bytesByID) = try localCatalogue(in: dir, count: count)
        ingest.batchSize = 2
        ingest.concurrency = 2
        var embedders = testEmbedders()
        // Slow batches, so the restart lands in the middle of the run.
        for i in embedders.indices { embedders[i].delayPerBatch = 0.08 }
        let log = EventLog()
        let pipeline = IngestPipeline(configuration: ingest, store: store, embedders: embedders)
        let run = Task { try await pipeline.run(onEvent: log.record) }

        // Wait for the first committed batch, then restart the server under the running ingest.
        let start = ContinuousClock.now
        while !log.all.contains(where: { if case .batchStored = $0 { true } else { false } }) {
            guard ContinuousClock.now - start < .seconds(60) else { throw TestFailure("no batch stored in 60 s") }
            try await Task.sleep(for: .milliseconds(20))
        }
        let storedBefore = log.all.filter { if case .batchStored = $0 { true } else { false } }.count
        let revisionBefore = try await store.revision()
        #expect(await shell(restart + " >/dev/null 2>&1") == 0)

        let summary = try await run.value
        let storedAfter = log.all.filter { if case .batchStored = $0 { true } else { false } }.count
        // The restart happened while batches were still to be stored.
        #expect(storedAfter > storedBefore)
        #expect(summary.skipped.isEmpty)
        #expect(try await store.revision() > revisionBefore)
        // Nothing lost, nothing duplicated: each space holds exactly one current vector per movie, each the one its
        // own poster gives; no stale rows.
        try await expectStoredVectors(store: store, embedders: embedders, posters: bytesByID, count: count)
        let stats = try await store.stats()
        #expect(stats.movies == count)
        #expect(stats.spaces.allSatisfy { $0.vectors == count && $0.staleVectors == 0 })
        // A rerun finds nothing to do.
        let again = try await IngestPipeline(configuration: ingest, store: store, embedders: testEmbedders()).run()
        #expect(again.pending == 0)
        await store.shutdown()
    }
}

/// Runs a shell command with system() on its own thread (waitpid, off the cooperative pool); its exit status.
func shell(_ command: String) async -> Int32 {
    await withCheckedContinuation { (done: CheckedContinuation<Int32, Never>) in
        Thread.detachNewThread { done.resume(returning: system(command)) }
    }
}
