import Embedding
import Foundation
import Logging
import PosterSimCore
import Store
import Synchronization

/// What to do with a held movie TMDB no longer returns (404) or that turned adult.
public enum PrunePolicy: String, Sendable, CaseIterable {
    /// Keep it, as it was (the summary counts and names it).
    case keep
    /// Delete it with its vectors.
    case remove
}

/// Everything a sync needs besides the store and the models.
public struct SyncConfiguration: Sendable {
    /// Sources to add to those the store recorded (`postersim sync --list …`); empty syncs the recorded ones.
    public var sources: [CatalogueSource] = []
    public var prune: PrunePolicy = .keep
    /// `--language`; nil uses the catalogue's (or `en-US` for a store that has none).
    public var language: String? = nil
    /// Models, poster size and cache, concurrency, batch size, TMDB settings and clock, as for an ingest; its
    /// `source`, `pages` and `limit` are not used.
    public var ingest: IngestConfiguration
    /// `/movie/{id}` requests in flight at once.
    public var detailsConcurrency: Int = 8

    public init(ingest: IngestConfiguration = IngestConfiguration(source: .tmdb)) {
        self.ingest = ingest
    }
}

/// Where a sync is (for progress output, and for tests that stop it at a chosen point).
public enum SyncEvent: Sendable {
    /// A stage begins: `sources`, `changes`, `prune`, `embed`, `commit`.
    case stage(String)
    /// One source was read and its movies written.
    case sourceRead(key: String, movies: Int)
    /// A batch of changed movies was written.
    case changesWritten(Int)
    /// The embedding stage's own events.
    case ingest(IngestEvent)
}

/// `postersim sync`: brings a catalogue up to date with TMDB at the least cost.
///
/// 1. **sources**: each source (those the store recorded, plus `configuration.sources`) is read again and its movies
///    written with `CatalogueStore.refreshMovies`, so new films are added, changed metadata is stored, and a changed
///    `poster_path` deletes the movie's vectors in the same transaction.
/// 2. **changes**: TMDB's change feed from the watermark's day to today; each changed id the store holds (and the
///    sources did not just list) is read with `/movie/{id}` and refreshed the same way. A 404 or an `adult` movie is
///    set aside for the prune stage. Without a watermark, or when it is older than TMDB's 14-day window, the feed is
///    not read and the sources' refresh stands in for it (the summary says which).
/// 3. **prune**: movies set aside are deleted (`--prune`) or kept, and named in the summary either way.
/// 4. **embed**: every held movie missing a vector in a selected space is embedded (`IngestPipeline`'s plan:
///    new films, replaced posters, transient skips). A film whose metadata alone changed costs no model run.
/// 5. **commit**: the sources and language are recorded and the watermark moves to the sync's start, only now.
///
/// Every write is one of the store's transactions and the plan is derived from the store's contents, never from
/// memory of an earlier run: a sync killed at any moment and run again ends in the same state as one that ran
/// through (the watermark had not moved, so the rerun reads the same window).
public struct CatalogueSync: CatalogueSyncing {
    public let configuration: SyncConfiguration
    public let store: any CatalogueStore
    public let embedders: [any EmbeddingModel]
    let logger: Logger

    public init(
        configuration: SyncConfiguration, store: any CatalogueStore, embedders: [any EmbeddingModel],
        logger: Logger = Logger(label: "postersim.sync")
    ) {
        self.configuration = configuration
        self.store = store
        self.embedders = embedders
        self.logger = logger
    }

    public func syncOnce() async throws -> SyncSummary {
        try await run()
    }

    @discardableResult
    public func run(onEvent: @escaping @Sendable (SyncEvent) -> Void = { _ in }) async throws -> SyncSummary {
        let pipeline = IngestPipeline(
            configuration: configuration.ingest, store: store, embedders: embedders, logger: logger)
        let selected = try pipeline.selectedEmbedders()
        try pipeline.validateConfiguration()
        let state = try await pipeline.storeValue { try await store.catalogueState() }
        let language = configuration.language ?? state.language ?? configuration.ingest.tmdb.language
        if let stored = state.language, stored != language {
            throw IngestError.store(.languageMismatch(stored: stored, requested: language))
        }
        let sources = try Self.sources(recorded: state.sources, added: configuration.sources, logger: logger)
        var settings = configuration.ingest.tmdb
        settings.language = language
        let client: TMDBClient
        do {
            client = try TMDBClient(settings: settings, logger: logger, clock: configuration.ingest.clock)
        } catch {
            throw IngestError.invalidConfiguration("\(error)")
        }
        do {
            let summary = try await run(
                pipeline: pipeline, selected: selected, client: client, state: state, language: language,
                sources: sources, onEvent: onEvent)
            try? await client.shutdown()
            return summary
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// The recorded sources merged with the added ones by key (see `CatalogueSource.adding`).
    static func sources(recorded: [CatalogueSourceRecord], added: [CatalogueSource], logger: Logger) throws
        -> [CatalogueSource]
    {
        var order: [String] = []
        var byKey: [String: CatalogueSource] = [:]
        func add(_ s: CatalogueSource) {
            if let earlier = byKey[s.key] {
                byKey[s.key] = earlier.adding(s)
            } else {
                order.append(s.key)
                byKey[s.key] = s
            }
        }
        for record in recorded {
            guard let source = CatalogueSource(spec: record.spec) else {
                logger.warning("the store records a source this version cannot read, left out: \(record.spec)")
                continue
            }
            add(source)
        }
        for s in added { add(s) }
        guard !order.isEmpty else {
            throw IngestError.invalidConfiguration(
                "nothing to sync: the store records no TMDB source (ingest one first, or give --list, --trending, "
                    + "--discover or --ids)")
        }
        return order.compactMap { byKey[$0] }
    }

    private func run(
        pipeline: IngestPipeline, selected: [any EmbeddingModel], client: TMDBClient, state: CatalogueState,
        language: String, sources: [CatalogueSource], onEvent: @escaping @Sendable (SyncEvent) -> Void
    ) async throws -> SyncSummary {
        let started = ContinuousClock.now
        let now = configuration.ingest.clock.date
        var summary = SyncSummary()
        summary.sources = sources.map(\.key)
        var stageStart = ContinuousClock.now
        func endStage(_ name: String) {
            let t = ContinuousClock.now
            summary.stages.append(.init(name: name, seconds: (t - stageStart).seconds))
            stageStart = t
        }
        var refresh = CatalogueRefresh()
        var seen = Set<MovieID>()
        var gone = Set<MovieID>()
        var adult = Set<MovieID>()

        // 1. Sources.
        onEvent(.stage("sources"))
        for source in sources {
            let listing: SourceListing
            do {
                listing = try await client.list(source, concurrency: 4)
            } catch let error as TMDBError {
                throw IngestError.listing(error)
            }
            for day in listing.truncatedDays {
                logger.warning("discover: more results on \(day) than TMDB pages; narrow the filters to read them all")
            }
            gone.formUnion(listing.notFound)
            try await pipeline.storeValue {
                for chunk in listing.movies.chunked(500) {
                    refresh.merge(try await store.refreshMovies(Array(chunk), source: source.key, at: now))
                }
            }
            seen.formUnion(listing.movies.map(\.id))
            onEvent(.sourceRead(key: source.key, movies: listing.movies.count))
        }
        endStage("sources")

        // 2. The change feed.
        onEvent(.stage("changes"))
        let held = Set(try await pipeline.storeValue { try await store.allMovieIDs() })
        let windowDays = configuration.ingest.tmdb.changeWindowDays
        if let watermark = state.syncWatermark {
            let age = now.timeIntervalSince(watermark)
            if age > Double(windowDays) * 86_400 {
                summary.changeFeed = String(
                    format: "window of %.1f days exceeds TMDB's %d: refreshed the sources instead", age / 86_400,
                    windowDays)
            } else {
                let changed: [ChangedMovie]
                do {
                    changed = try await client.changedMovies(from: CalendarDay(watermark), to: CalendarDay(now))
                } catch let error as TMDBError {
                    throw IngestError.listing(error)
                }
                let toCheck = changed.map(\.id).filter { held.contains($0) && !seen.contains($0) }
                summary.changeFeed = "changes since \(CalendarDay(watermark)): \(changed.count) ids, \(toCheck.count) held"
                for chunk in toCheck.chunked(200) {
                    let lookups: [MovieLookup]
                    do {
                        lookups = try await client.details(Array(chunk), concurrency: configuration.detailsConcurrency)
                    } catch let error as TMDBError {
                        throw IngestError.listing(error)
                    }
                    var found: [Movie] = []
                    for lookup in lookups {
                        switch lookup {
                        case .found(let m):
                            found.append(m)
                            if m.adult == true { adult.insert(m.id) }
                        case .notFound(let id): gone.insert(id)
                        }
                    }
                    try await pipeline.storeValue {
                        refresh.merge(try await store.refreshMovies(found, source: "changes", at: now))
                    }
                    seen.formUnion(found.map(\.id))
                    onEvent(.changesWritten(found.count))
                }
            }
        } else {
            summary.changeFeed = "no watermark (first sync): refreshed the sources only"
        }
        endStage("changes")

        // 3. Prune.
        onEvent(.stage("prune"))
        gone.formIntersection(held)
        adult.subtract(gone)
        summary.goneIDs = gone.sorted()
        summary.adultIDs = adult.sorted()
        if configuration.prune == .remove {
            summary.pruned = try await pipeline.storeValue { try await store.deleteMovies(ids: Array(gone.union(adult)).sorted()) }
        } else {
            if !gone.isEmpty { summary.skipped["gone_kept"] = gone.count }
            if !adult.isEmpty { summary.skipped["adult_kept"] = adult.count }
            if !gone.isEmpty || !adult.isEmpty {
                logger.notice(
                    "kept \(gone.count) movies TMDB no longer has and \(adult.count) that turned adult (--prune removes them)")
            }
        }
        endStage("prune")

        // 4. Embed whatever the catalogue misses.
        onEvent(.stage("embed"))
        let ids = try await pipeline.storeValue { try await store.allMovieIDs() }
        var movies: [Movie] = []
        for chunk in ids.chunked(1000) {
            movies += try await pipeline.storeValue { try await store.fetchMovies(ids: Array(chunk)) }
        }
        let added = Set(refresh.added)
        let counts = Mutex<(new: [String: Int], again: [String: Int])>(([:], [:]))
        let embedding = try await pipeline.embedPending(
            movies, selected: selected, client: client, listed: (movies.count, 0), started: ContinuousClock.now,
            observer: { space, stored in
                counts.withLock { c in
                    for id in stored {
                        if added.contains(id) { c.new[space, default: 0] += 1 } else { c.again[space, default: 0] += 1 }
                    }
                }
            },
            onEvent: { onEvent(.ingest($0)) })
        (summary.embedded, summary.reembedded) = counts.withLock { ($0.new, $0.again) }
        // Every selected space appears in the summary, with 0 when nothing was written to it.
        for e in selected {
            summary.embedded[e.space.name] = summary.embedded[e.space.name] ?? 0
            summary.reembedded[e.space.name] = summary.reembedded[e.space.name] ?? 0
        }
        for (reason, n) in embedding.skippedByReason { summary.skipped[reason, default: 0] += n }
        if embedding.notRetried > 0 { summary.skipped["not_retried", default: 0] += embedding.notRetried }
        endStage("embed")

        // 5. Commit: only now does the watermark move.
        onEvent(.stage("commit"))
        try Task.checkCancellation()
        try await pipeline.storeValue {
            try await store.adoptCatalogue(language: language, sources: sources.map(\.record))
            try await store.setSyncWatermark(now)
        }
        endStage("commit")

        summary.seen = seen.count
        summary.added = added.count
        summary.metadataUpdated = Set(refresh.metadataChanged).count
        summary.postersChanged = Set(refresh.posterChanged).count
        summary.requests = client.requestsSent
        summary.watermark = now
        summary.seconds = (ContinuousClock.now - started).seconds
        return summary
    }
}
