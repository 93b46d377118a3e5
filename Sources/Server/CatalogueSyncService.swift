import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import Store
import Synchronization

/// `serve --sync-every`: which sync to run and how often. The command line wires in Ingest's `CatalogueSync`; the
/// server only knows the `CatalogueSyncing` protocol.
public struct SyncSchedule: Sendable {
    public var sync: any CatalogueSyncing
    /// Time from one run's start to the next (a run that takes longer is followed at once, never overlapped).
    public var interval: Duration
    /// Run once as soon as the server starts, then every `interval`.
    public var runAtStart: Bool
    /// How the service waits (tests pass one they control).
    public var sleep: @Sendable (Duration) async throws -> Void

    public init(
        sync: any CatalogueSyncing, interval: Duration, runAtStart: Bool = false,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.sync = sync
        self.interval = interval
        self.runAtStart = runAtStart
        self.sleep = sleep
    }
}

/// Runs the schedule's sync inside the server, one run at a time, until graceful shutdown (a run in progress is
/// cancelled then; the store's watermark has not moved, so the next run picks up). A failed run is logged and
/// counted, and the schedule goes on. Metrics (in the server's registry): `postersim_sync_runs_total{result}`,
/// `postersim_sync_running`, `postersim_sync_last_success_timestamp_seconds`,
/// `postersim_sync_last_duration_seconds`, `postersim_sync_last_movies{kind}` (seen, added, metadata_updated,
/// posters_changed, pruned) and `postersim_sync_last_vectors{space,kind}` (embedded, reembedded).
final class CatalogueSyncService: Service {
    let schedule: SyncSchedule
    let metrics: ServerMetrics
    let logger: Logger

    init(schedule: SyncSchedule, metrics: ServerMetrics, logger: Logger) {
        self.schedule = schedule
        self.metrics = metrics
        self.logger = logger
    }

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await self.loop() }
        } catch is CancellationError {
            return
        }
    }

    private func loop() async throws {
        if !schedule.runAtStart { try await schedule.sleep(schedule.interval) }
        while !Task.isCancelled {
            let started = ContinuousClock.now
            await runOnce()
            let took = ContinuousClock.now - started
            try Task.checkCancellation()
            if took < schedule.interval { try await schedule.sleep(schedule.interval - took) }
        }
    }

    /// One run, with its metrics. Only the loop calls it, so runs never overlap.
    func runOnce() async {
        let started = ContinuousClock.now
        gauge("sync_running", help: "1 while a catalogue sync runs.").set(1.0)
        defer { gauge("sync_running", help: "1 while a catalogue sync runs.").set(0.0) }
        do {
            let summary = try await schedule.sync.syncOnce()
            let took = ContinuousClock.now - started
            record(summary, duration: took)
            logger.notice(
                "catalogue sync done",
                metadata: [
                    "seen": "\(summary.seen)", "added": "\(summary.added)",
                    "metadata_updated": "\(summary.metadataUpdated)", "posters_changed": "\(summary.postersChanged)",
                    "pruned": "\(summary.pruned)", "seconds": "\(took)",
                ])
        } catch is CancellationError {
            counter(result: "cancelled").increment()
        } catch {
            counter(result: "failure").increment()
            logger.error("catalogue sync failed: \(error)")
        }
    }

    private func record(_ s: SyncSummary, duration: Duration) {
        counter(result: "success").increment()
        gauge("sync_last_success_timestamp", unit: "seconds", help: "When the last successful sync finished (Unix time).")
            .set(Date().timeIntervalSince1970)
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
        gauge("sync_last_duration", unit: "seconds", help: "How long the last successful sync took.").set(seconds)
        for (kind, n) in [
            ("seen", s.seen), ("added", s.added), ("metadata_updated", s.metadataUpdated),
            ("posters_changed", s.postersChanged), ("pruned", s.pruned),
        ] {
            gauge("sync_last_movies", help: "Movies per outcome in the last successful sync.", labels: [("kind", kind)])
                .set(Double(n))
        }
        for (kind, counts) in [("embedded", s.embedded), ("reembedded", s.reembedded)] {
            for (space, n) in counts {
                gauge(
                    "sync_last_vectors", help: "Vectors written by the last successful sync, per space.",
                    labels: [("space", space), ("kind", kind)]
                ).set(Double(n))
            }
        }
    }

    private func counter(result: String) -> Counter {
        metrics.registry.makeCounter(
            descriptor: ServerMetrics.descriptor("sync_runs", unit: "total", help: "Catalogue sync runs by result."),
            labels: [("result", result)])
    }

    private func gauge(_ name: String, unit: String = "", help: String, labels: [(String, String)] = []) -> Gauge {
        metrics.registry.makeGauge(descriptor: ServerMetrics.descriptor(name, unit: unit, help: help), labels: labels)
    }
}
