// Blocking work stays off the cooperative pool. Synchronised on the fake store's own counters, never on elapsed time.
import Dispatch
import Foundation
import PosterSimCore
import Server
import Store
import Testing

extension AllServerTests {
    @Suite struct BlockingWorkTests {
        /// A burst of similarity requests stuck in a scan that blocks its thread does not stop `/healthz` from
        /// answering. The fake store blocks like the exact scan does (synchronously, on the calling thread) until the
        /// test opens the gate, which it does only after `/healthz` answered; if it never answers the fake gives up
        /// after a while (so a failing run ends) and says so.
        @Test func blockingScansDoNotStallHealth() async throws {
            let base = try await Fixtures.populatedStore(count: 12)
            let store = BlockingQueryStore(base: base)
            let burst = 8
            try await withServer(store: store) { server in
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for i in 0..<burst {
                        group.addTask {
                            try await server.get("/api/get-similar-movies?movieId=\(i + 1)&model=CLIP").status
                        }
                    }
                    let cores = ProcessInfo.processInfo.activeProcessorCount
                    #expect(await eventually { store.blocked >= min(burst, cores) })
                    let health = try await server.get("/healthz")
                    #expect(health.status == 200)
                    #expect(!store.gaveUp, "/healthz answered only once the blocked scans gave up")
                    store.open()
                    for try await status in group { #expect(status == 200) }
                }
            }
        }
    }
}

/// A store whose by-movie query blocks its thread until `open()`, as a long exact scan would.
final class BlockingQueryStore: VectorStore, @unchecked Sendable {
    let base: any VectorStore
    private let gate = DispatchSemaphore(value: 0)
    private let state = Shared<(blocked: Int, gaveUp: Bool, open: Bool)>((0, false, false))

    init(base: any VectorStore) { self.base = base }

    var blocked: Int { state.value.blocked }
    var gaveUp: Bool { state.value.gaveUp }

    func open() {
        let waiting = state.withLock { s in
            s.open = true
            return s.blocked
        }
        for _ in 0..<waiting { gate.signal() }
    }

    func query(space: String, movieID id: MovieID, k: Int, filter: SearchFilter, excludeSelf: Bool) async throws
        -> [SearchMatch]
    {
        let mustWait = state.withLock { s in
            if !s.open { s.blocked += 1 }
            return !s.open
        }
        if mustWait, gate.wait(timeout: .now() + 20) == .timedOut {
            state.withLock { $0.gaveUp = true }
        }
        return try await base.query(space: space, movieID: id, k: k, filter: filter, excludeSelf: excludeSelf)
    }

    // The rest as the base store does it.
    func registerSpace(_ space: VectorSpace, identity: ModelIdentity) async throws -> SpaceStats {
        try await base.registerSpace(space, identity: identity)
    }
    func upsertMovies(_ movies: [Movie]) async throws { try await base.upsertMovies(movies) }
    func upsertEmbeddings(_ embeddings: [EmbeddingInput], space: String, identity: ModelIdentity) async throws {
        try await base.upsertEmbeddings(embeddings, space: space, identity: identity)
    }
    func fetchMovies(ids: [MovieID]) async throws -> [Movie] { try await base.fetchMovies(ids: ids) }
    func deleteMovies(ids: [MovieID]) async throws -> Int { try await base.deleteMovies(ids: ids) }
    func query(space: String, vector: [Float], k: Int, filter: SearchFilter) async throws -> [SearchMatch] {
        try await base.query(space: space, vector: vector, k: k, filter: filter)
    }
    func movieCount() async throws -> Int { try await base.movieCount() }
    func stats() async throws -> StoreStats { try await base.stats() }
    func searchTitles(_ text: String, limit: Int) async throws -> [Movie] { try await base.searchTitles(text, limit: limit) }
    func completedPairs(movieIDs: [MovieID], spaces: [String]) async throws -> Set<EmbeddingKey> {
        try await base.completedPairs(movieIDs: movieIDs, spaces: spaces)
    }
    func recordSkips(_ skips: [PosterSkip], at time: Date) async throws { try await base.recordSkips(skips, at: time) }
    func importSkipRecords(_ records: [SkipRecord]) async throws { try await base.importSkipRecords(records) }
    func skipRecords(movieIDs: [MovieID]?) async throws -> [SkipRecord] { try await base.skipRecords(movieIDs: movieIDs) }
    func revision() async throws -> UInt64 { try await base.revision() }
    func fetchVectors(ids: [MovieID], space: String) async throws -> [MovieID: [Float]] {
        try await base.fetchVectors(ids: ids, space: space)
    }
}
