// `serve --sync-every`: the scheduler runs the sync it is given, one run at a time, and exports its outcome as
// metrics. The schedule's waits are driven by the test (no wall clock).
import Foundation
import Server
import Store
import Synchronization
import Testing

/// A sync that counts its runs and how many ran at once, fails its first run, and reports each end.
final class CountingSync: CatalogueSyncing {
    struct State {
        var runs = 0
        var running = 0
        var maxRunning = 0
    }
    let state = Mutex(State())
    let ended: AsyncStream<Int>
    private let endedContinuation: AsyncStream<Int>.Continuation

    init() { (ended, endedContinuation) = AsyncStream<Int>.makeStream() }

    struct Failure: Error {}

    func syncOnce() async throws -> SyncSummary {
        let run = state.withLock { s in
            s.runs += 1
            s.running += 1
            s.maxRunning = max(s.maxRunning, s.running)
            return s.runs
        }
        defer {
            state.withLock { $0.running -= 1 }
            endedContinuation.yield(run)
        }
        await Task.yield()
        if run == 1 { throw Failure() }
        var s = SyncSummary()
        s.seen = 100 * run
        s.added = run
        s.embedded = ["clip": run]
        s.reembedded = ["clip": 7]
        return s
    }
}

/// The schedule's waits: each one takes the next tick the test sends (none left: the wait ends as cancelled).
final class Ticks: @unchecked Sendable {
    private let lock = NSLock()
    private var iterator: AsyncStream<Void>.Iterator
    let continuation: AsyncStream<Void>.Continuation

    init() {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        iterator = stream.makeAsyncIterator()
        self.continuation = continuation
    }

    func wait() async throws {
        // Only the scheduler's loop waits, one wait at a time.
        var it = lock.withLock { iterator }
        let tick: Void? = await it.next()
        lock.withLock { iterator = it }
        guard tick != nil else { throw CancellationError() }
    }
}

@Suite(.timeLimit(.minutes(1))) struct SyncScheduleTests {
    @Test func runsOneAtATimeAndExportsMetrics() async throws {
        let dir = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteVectorStore(path: dir.appendingPathComponent("s.sqlite").path)
        let sync = CountingSync()
        let ticks = Ticks()
        let schedule = SyncSchedule(sync: sync, interval: .seconds(86_400), sleep: { _ in try await ticks.wait() })
        try await withServer(store: store, models: [], syncSchedule: schedule) { server in
            var ended = sync.ended.makeAsyncIterator()
            #expect(sync.state.withLock { $0.runs } == 0)  // not at start: the first run waits a whole interval
            ticks.continuation.yield()
            #expect(await ended.next() == 1)
            var text = try await server.get("/metrics").text
            #expect(text.contains(#"postersim_sync_runs_total{result="failure"} 1"#))
            #expect(!text.contains("postersim_sync_last_success_timestamp_seconds"))
            ticks.continuation.yield()
            #expect(await ended.next() == 2)
            ticks.continuation.yield()
            #expect(await ended.next() == 3)
            text = try await server.get("/metrics").text
            #expect(text.contains(#"postersim_sync_runs_total{result="success"} 2"#))
            #expect(text.contains(#"postersim_sync_last_movies{kind="added"} 3"#))
            #expect(text.contains(#"postersim_sync_last_movies{kind="seen"} 300"#))
            #expect(text.contains(#"postersim_sync_last_vectors{space="clip",kind="reembedded"} 7"#))
            #expect(text.contains("postersim_sync_last_success_timestamp_seconds"))
            #expect(text.contains("postersim_sync_running 0"))
        }
        #expect(sync.state.withLock { $0.maxRunning } == 1)
        #expect(sync.state.withLock { $0.runs } == 3)
    }
}
