import Foundation
import Prometheus
import Synchronization
import Store

/// The server's Prometheus metrics, in a registry of its own (no process-wide bootstrap, so several servers can run in
/// one test process): request counts and latency histograms per route, embedding time per model, pool and cache
/// state, and the store's size (refreshed at each scrape).
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    static func descriptor(_ name: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "postersim", metricName: name, unitName: unit, helpText: help)
    }

    public init() {}

    struct RequestKey: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    /// The collectors of each (route, method, status) seen, so a request costs one dictionary lookup rather than the
    /// registry's name building and lookups.
    private let requestCollectors = Mutex<[RequestKey: (Counter, DurationHistogram)]>([:])

    func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        let key = RequestKey(route: route, method: method, status: status)
        let collectors = requestCollectors.withLock { cache in
            if let found = cache[key] { return found }
            let made = (
                registry.makeCounter(
                    descriptor: Self.descriptor("http_requests", unit: "total", help: "HTTP requests by route, method and status."),
                    labels: [("route", route), ("method", method), ("status", String(status))]),
                registry.makeDurationHistogram(
                    descriptor: Self.descriptor("http_request_duration", unit: "seconds", help: "HTTP request latency by route."),
                    labels: [("route", route), ("method", method)], buckets: Self.latencyBuckets)
            )
            cache[key] = made
            return made
        }
        collectors.0.increment()
        collectors.1.record(duration)
    }

    func recordEmbedding(model: String, kind: String, duration: Duration) {
        registry.makeDurationHistogram(
            descriptor: Self.descriptor(
                "embedding_duration", unit: "seconds", help: "Decode, preprocess and forward pass time per request."),
            labels: [("model", model), ("input", kind)], buckets: Self.latencyBuckets
        ).record(duration)
    }

    func recordPoolRejection() {
        registry.makeCounter(
            descriptor: Self.descriptor("embedding_rejected", unit: "total", help: "Embedding requests refused (queue full)."),
            labels: []
        ).increment()
    }


    /// Refreshes the gauges that describe state rather than events.
    func updateGauges(stats: StoreStats?, pool: EmbeddingPool, cache: ResponseCache) {
        if let stats {
            registry.makeGauge(descriptor: Self.descriptor("store_movies", help: "Movies in the store."), labels: [])
                .set(Double(stats.movies))
            for space in stats.spaces {
                registry.makeGauge(
                    descriptor: Self.descriptor("store_vectors", help: "Current vectors per model space."),
                    labels: [("space", space.space.name)]
                ).set(Double(space.vectors))
            }
            // Every reason is set, so one whose records are gone reads 0 instead of its last count.
            for reason in SkipReason.allCases {
                registry.makeGauge(
                    descriptor: Self.descriptor("store_skips", help: "Skip records left by ingest runs, per reason."),
                    labels: [("reason", reason.rawValue)]
                ).set(Double(stats.skips.byReason[reason.rawValue] ?? 0))
            }
            registry.makeGauge(
                descriptor: Self.descriptor("store_skipped_movies", help: "Movies with at least one skip record."),
                labels: []
            ).set(Double(stats.skips.movies))
            if let bytes = stats.bytesOnDisk {
                registry.makeGauge(descriptor: Self.descriptor("store_size", unit: "bytes", help: "Store size on disk."), labels: [])
                    .set(Double(bytes))
            }
        }
        let load = pool.load
        registry.makeGauge(descriptor: Self.descriptor("embedding_running", help: "Embedding jobs running."), labels: [])
            .set(Double(load.running))
        registry.makeGauge(descriptor: Self.descriptor("embedding_queued", help: "Embedding jobs waiting."), labels: [])
            .set(Double(load.queued))
        let counts = cache.counts
        registry.makeGauge(descriptor: Self.descriptor("response_cache_entries", help: "Cached responses."), labels: [])
            .set(Double(counts.entries))
        registry.makeGauge(descriptor: Self.descriptor("response_cache_size", unit: "bytes", help: "Cached response bytes."), labels: [])
            .set(Double(counts.bytes))
        for (result, value) in [("hit", counts.hits), ("miss", counts.misses)] {
            registry.makeGauge(
                descriptor: Self.descriptor("response_cache_lookups", help: "Response cache lookups since the start."),
                labels: [("result", result)]
            ).set(Double(value))
        }
    }
}
