import Embedding
import PosterSimCore
import Dispatch
import Foundation
import Imaging
import Logging
import Store

/// Builds the similarity index: lists movies (a TMDB source or a JSON file), stores their metadata, and for every
/// (movie, model) pair the store does not yet have, fetches the poster, decodes it once, preprocesses it per model,
/// embeds it in batches and stores each batch in one transaction.
///
/// Guarantees:
/// - **Resumable and idempotent.** Work is planned from `VectorStore.completedPairs`, so pairs already embedded under
///   the model's current identity are never redone (a second run embeds nothing), and a run killed at any moment
///   (even between the embedding and the commit of a batch) leaves only whole committed batches; a rerun embeds
///   exactly the missing pairs. Vectors are keyed by (space, movie), so nothing can be stored twice.
/// - **Skips are kept.** Each skip is written to the store (`VectorStore.recordSkips`, one transaction per poster or
///   batch) as soon as it happens, and the store deletes a pair's record in the transaction that stores its vector,
///   so a kill at any moment leaves either the record or the vector, never both, never a record counted twice.
///   A rerun retries transient skips (timeouts, network errors, 5xx, 429) and leaves permanent ones alone (no
///   poster, 404, undecodable...) unless the movie's `poster_path` (or, for one model's failure, the model's
///   checkpoint) changed, or `retrySkipped` is set. Those movies are counted in the summary's `notRetried`.
/// - **Movies before vectors.** All listed movies are upserted before any of their embeddings. On a `CatalogueStore`
///   they are written with `refreshMovies` (the source and time are recorded per movie, and a movie whose
///   `poster_path` changed loses its vectors there, so this run embeds the new poster); a TMDB source is recorded
///   with the catalogue's language (another language is refused before listing), and the first one sets the sync
///   watermark.
/// - **Flat memory.** At most `concurrency` posters are being fetched/decoded or waiting (a bounded task group that
///   starts a new poster only when one is handed over), plus one pending batch per model; the movie list itself is
///   metadata only.
/// - **Skips, not failures.** A poster that cannot be fetched, decoded or preprocessed is recorded as a
///   `SkippedPoster` with its reason (in the summary and in the store) and the run goes on; the summary's `nothingDone` tells whether anything at all
///   could be stored. Errors that stop the run (listing, store, embedder contract) are `IngestError`s; whatever was
///   committed before stays.
/// - **One model at a time.** Embedders run on one dedicated serial queue, off the Swift concurrency pool, so a
///   model that uses every core does not starve the downloads. Decoding and preprocessing wait while a model runs
///   and use every core between batches (`CoreGate`): beside a forward pass they would slow it by more than they
///   cost.
/// - Cancellation (of the task calling `run`) stops the run promptly with `CancellationError`; committed batches stay.
public struct IngestPipeline: Sendable {
    public let configuration: IngestConfiguration
    public let store: any VectorStore
    /// Every model available; `configuration.models` selects among them by space name.
    public let embedders: [any EmbeddingModel]
    let logger: Logger

    public init(
        configuration: IngestConfiguration, store: any VectorStore, embedders: [any EmbeddingModel],
        logger: Logger = Logger(label: "postersim.ingest")
    ) {
        self.configuration = configuration
        self.store = store
        self.embedders = embedders
        self.logger = logger
    }

    /// Runs the whole ingest. `onEvent` is called from the run's task, in order (see `IngestEvent`); keep it cheap.
    @discardableResult
    public func run(onEvent: @escaping @Sendable (IngestEvent) -> Void = { _ in }) async throws -> IngestSummary {
        let selected = try selectedEmbedders()
        try validateConfiguration()
        let needsHTTP = configuration.source.catalogueSource(pages: configuration.pages) != nil
            || configuration.postersDirectory == nil
        guard needsHTTP else {
            return try await run(selected, client: nil, onEvent: onEvent)
        }
        let client: TMDBClient
        do {
            client = try TMDBClient(settings: configuration.tmdb, logger: logger, clock: configuration.clock)
        } catch {
            throw IngestError.invalidConfiguration("\(error)")
        }
        do {
            let summary = try await run(selected, client: client, onEvent: onEvent)
            try? await client.shutdown()
            return summary
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// The embedders `configuration.models` names (all when nil), in the order given to the pipeline.
    func selectedEmbedders() throws -> [any EmbeddingModel] {
        var seen = Set<String>()
        for e in embedders where !seen.insert(e.space.name).inserted {
            throw IngestError.duplicateSpace(e.space.name)
        }
        guard let names = configuration.models else {
            guard !embedders.isEmpty else { throw IngestError.invalidConfiguration("no models to run") }
            return embedders
        }
        let wanted = Set(names.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        let unknown = wanted.subtracting(seen)
        guard unknown.isEmpty else {
            throw IngestError.unknownModels(unknown.sorted(), available: embedders.map(\.space.name))
        }
        guard !wanted.isEmpty else { throw IngestError.invalidConfiguration("no models selected") }
        return embedders.filter { wanted.contains($0.space.name) }
    }

    func validateConfiguration() throws {
        let c = configuration
        guard c.concurrency >= 1 else { throw IngestError.invalidConfiguration("concurrency must be at least 1") }
        guard c.batchSize >= 1 else { throw IngestError.invalidConfiguration("batch size must be at least 1") }
        if let w = c.writeBatchSize, w < 1 {
            throw IngestError.invalidConfiguration("write batch size must be at least 1")
        }
        guard c.pages >= 1 else { throw IngestError.invalidConfiguration("pages must be at least 1") }
        if let limit = c.limit, limit < 0 { throw IngestError.invalidConfiguration("limit must not be negative") }
        guard PosterCache.isSafeComponent(c.posterSize) else {
            throw IngestError.invalidConfiguration("poster size '\(c.posterSize)' (expected e.g. original, w500)")
        }
    }

    // MARK: - Run

    private func run(
        _ selected: [any EmbeddingModel], client: TMDBClient?, onEvent: @escaping @Sendable (IngestEvent) -> Void
    ) async throws -> IngestSummary {
        let started = ContinuousClock.now
        let listedAt = configuration.clock.date
        let catalogue = store as? any CatalogueStore
        let source = configuration.source.catalogueSource(pages: configuration.pages)
        if let catalogue, source != nil {
            // Refuse another language before listing anything.
            let stored = try await storeValue { try await catalogue.catalogueState() }
            if let language = stored.language, language != configuration.tmdb.language {
                throw IngestError.store(.languageMismatch(stored: language, requested: configuration.tmdb.language))
            }
        }
        let (movies, malformed) = try await listMovies(client: client, onEvent: onEvent)
        onEvent(.listed(movies: movies.count, malformed: malformed))

        try await storeCall {
            if let catalogue {
                // Sightings, and the vectors of replaced posters dropped with the new metadata.
                let key = source?.key ?? Self.fileSourceKey
                for chunk in movies.chunked(500) { try await catalogue.refreshMovies(Array(chunk), source: key, at: listedAt) }
                if let source {
                    let before = try await catalogue.catalogueState()
                    let merged = before.sources.first { $0.key == source.key }
                        .flatMap { CatalogueSource(spec: $0.spec) }.map { $0.adding(source) } ?? source
                    try await catalogue.adoptCatalogue(language: configuration.tmdb.language, sources: [merged.record])
                    // The first ingest is the catalogue's first look at TMDB: a later sync follows changes from here.
                    if before.syncWatermark == nil { try await catalogue.setSyncWatermark(listedAt) }
                }
            } else {
                for chunk in movies.chunked(500) { try await store.upsertMovies(Array(chunk)) }
            }
        }
        return try await embedPending(
            movies, selected: selected, client: client, listed: (movies.count, malformed), started: started,
            onEvent: onEvent)
    }

    /// The sighting source of movies read from a JSON file (not a TMDB source a sync could ask again).
    static let fileSourceKey = "file"

    /// Plans and embeds what `movies` still need in the selected spaces (registering them first): the part of a run
    /// after listing, also what a sync runs over the whole catalogue. `observer` hears every committed batch.
    func embedPending(
        _ movies: [Movie], selected: [any EmbeddingModel], client: TMDBClient?, listed: (movies: Int, malformed: Int),
        started: ContinuousClock.Instant, observer: (@Sendable (String, [MovieID]) -> Void)? = nil,
        onEvent: @escaping @Sendable (IngestEvent) -> Void
    ) async throws -> IngestSummary {
        let malformed = listed.malformed
        try await storeCall {
            for e in selected { try await store.registerSpace(e.space, identity: e.identity) }
        }

        // Plan: which models each movie still needs, minus what earlier runs skipped for good.
        let spaceNames = selected.map(\.space.name)
        var done = Set<EmbeddingKey>()
        var settled = Set<SkipKey>()
        try await storeCall {
            for chunk in movies.chunked(500) {
                let ids = chunk.map { $0.id }
                done.formUnion(try await store.completedPairs(movieIDs: ids, spaces: spaceNames))
                if !configuration.retrySkipped {
                    settled.formUnion(
                        Self.notToRetry(try await store.skipRecords(movieIDs: ids), movies: chunk, embedders: selected))
                }
            }
        }
        var work: [WorkItem] = []
        var alreadyDone = 0
        var notRetried = 0
        for m in movies {
            let missing = selected.indices.filter { !done.contains(EmbeddingKey(movieID: m.id, space: spaceNames[$0])) }
            if missing.isEmpty {
                alreadyDone += 1
                continue
            }
            let needed =
                settled.contains(SkipKey(movieID: m.id, space: nil))
                ? [] : missing.filter { !settled.contains(SkipKey(movieID: m.id, space: spaceNames[$0])) }
            if needed.isEmpty {
                notRetried += 1
            } else {
                work.append(WorkItem(movie: m, embedders: needed))
            }
        }
        let vectorsBefore = done.count
        done = []
        settled = []
        onEvent(.planned(pending: work.count, alreadyDone: alreadyDone, notRetried: notRetried, models: spaceNames))

        let gate = CoreGate(width: ProcessInfo.processInfo.activeProcessorCount)
        let state = RunState(
            embedders: selected, store: store, batchSize: configuration.batchSize,
            writeBatchSize: configuration.writeBatchSize ?? configuration.batchSize, total: work.count, gate: gate,
            observer: observer, onEvent: onEvent)
        state.register(work)
        let fetcher = PosterFetcher(
            directory: configuration.postersDirectory.map { URL(fileURLWithPath: $0, isDirectory: true) },
            cache: configuration.postersDirectory == nil
                ? configuration.posterCacheDirectory.map { PosterCache(directory: URL(fileURLWithPath: $0)) } : nil,
            client: client, size: configuration.posterSize)
        let decoder = configuration.decoder
        let preprocessors = selected.map(\.preprocessor)
        let concurrency = configuration.concurrency

        try await withThrowingTaskGroup(of: PreparedPoster.self) { group in
            var next = work.makeIterator()
            // Start a poster only when one has been handed over: at most `concurrency` exist at once.
            var launched = 0
            while launched < concurrency, let item = next.next() {
                group.addTask { try await Self.prepare(item, fetcher: fetcher, decoder: decoder, preprocessors: preprocessors, gate: gate) }
                launched += 1
            }
            while let prepared = try await group.next() {
                if let item = next.next() {
                    group.addTask {
                        try await Self.prepare(item, fetcher: fetcher, decoder: decoder, preprocessors: preprocessors, gate: gate)
                    }
                }
                try await state.consume(prepared)
            }
        }
        try await state.flushAll()

        let elapsed = ContinuousClock.now - started
        let summary = IngestSummary(
            listed: listed.movies, malformed: malformed, alreadyDone: alreadyDone, notRetried: notRetried,
            vectorsBefore: vectorsBefore, pending: work.count,
            embedded: state.embeddedMovies, skipped: state.skipped, vectorsWritten: state.vectorsWritten,
            elapsedSeconds: elapsed.seconds)
        onEvent(.finished(summary))
        return summary
    }

    /// The skip records a run leaves alone: permanent ones for the same poster (same `poster_path`) and, for one
    /// model's failure, the same checkpoint. Transient ones, and any whose poster or model changed, are retried.
    static func notToRetry(_ records: [SkipRecord], movies: ArraySlice<Movie>, embedders: [any EmbeddingModel])
        -> Set<SkipKey>
    {
        let posterPaths = Dictionary(movies.map { ($0.id, $0.posterPath) }, uniquingKeysWith: { first, _ in first })
        let identities = Dictionary(embedders.map { ($0.space.name, $0.identity) }, uniquingKeysWith: { a, _ in a })
        var keys = Set<SkipKey>()
        for record in records {
            let skip = record.skip
            guard !skip.reason.isTransient, let posterPath = posterPaths[skip.movieID], posterPath == skip.posterPath
            else { continue }
            if let space = skip.space {
                guard let identity = identities[space], identity == skip.identity else { continue }
            }
            keys.insert(skip.key)
        }
        return keys
    }

    private func storeCall(_ body: () async throws -> Void) async throws {
        try await storeValue(body)
    }

    /// `body`'s value; a store error becomes `IngestError.store`.
    func storeValue<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            throw IngestError.store(error)
        }
    }

    // MARK: - Listing

    private func listMovies(client: TMDBClient?, onEvent: @escaping @Sendable (IngestEvent) -> Void)
        async throws -> (movies: [Movie], malformed: Int)
    {
        switch configuration.source {
        case .tmdb, .catalogue:
            guard let client, let source = configuration.source.catalogueSource(pages: configuration.pages) else {
                throw IngestError.invalidConfiguration("a TMDB source needs an HTTP client")
            }
            do {
                let listing = try await client.list(
                    source, limit: configuration.limit,
                    onPage: { page, last in onEvent(.listingPage(page: page, lastPage: last)) })
                for id in listing.notFound { logger.warning("TMDB has no movie \(id) (404); not ingested") }
                for day in listing.truncatedDays {
                    logger.warning("discover: more results on \(day) than TMDB pages; narrow the filters to read them all")
                }
                return (listing.movies, listing.malformed)
            } catch let error as TMDBError {
                throw IngestError.listing(error)
            }
        case .jsonFile(let path):
            return try Self.readMovies(jsonFile: path, limit: configuration.limit)
        }
    }

    /// Largest JSON source file read (the whole popular list is about 5 MB).
    static let maxSourceFileBytes = 1 << 30

    /// Parses a JSON array of TMDB result objects; entries that are not movies are counted, duplicates merged.
    static func readMovies(jsonFile path: String, limit: Int?) throws -> (movies: [Movie], malformed: Int) {
        let url = URL(fileURLWithPath: path)
        let data: Data
        do {
            let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
            guard size <= maxSourceFileBytes else {
                throw IngestError.sourceFile(path: path, detail: "larger than \(maxSourceFileBytes) bytes")
            }
            data = try Data(contentsOf: url)
        } catch let error as IngestError {
            throw error
        } catch {
            throw IngestError.sourceFile(path: path, detail: error.localizedDescription)
        }
        struct Lenient: Decodable {
            let movie: Movie?
            init(from decoder: any Decoder) throws { movie = try? Movie(from: decoder) }
        }
        let entries: [Lenient]
        do {
            entries = try JSONDecoder().decode([Lenient].self, from: data)
        } catch {
            throw IngestError.sourceFile(path: path, detail: "expected a JSON array of TMDB movie objects (\(error))")
        }
        var merger = MovieMerger()
        let movies = entries.compactMap(\.movie)
        merger.add(movies)
        return (merger.movies(limit: limit), entries.count - movies.count)
    }

    // MARK: - Per poster (runs concurrently)

    /// Fetches, decodes once and preprocesses for each needed model. Per-poster problems become skips; only
    /// cancellation throws.
    static func prepare(
        _ item: WorkItem, fetcher: PosterFetcher, decoder: PosterDecoder, preprocessors: [ImagePreprocessor],
        gate: CoreGate
    ) async throws -> PreparedPoster {
        var prepared = PreparedPoster(item: item)
        let movie = item.movie
        guard let posterPath = movie.posterPath, !posterPath.isEmpty else {
            prepared.failures.append(PosterFailure(.noPosterPath, "the movie has no poster_path", source: nil))
            return prepared
        }
        let fetched = try await fetcher.fetch(posterPath: posterPath)
        let bytes: [UInt8]
        let source: String
        switch fetched {
        case .failure(let failure):
            prepared.failures.append(failure)
            return prepared
        case .bytes(let b, _, let from):
            bytes = b
            source = from
        }
        // Decoding and preprocessing are the pipeline's CPU work: they wait while a model runs (see CoreGate).
        let outcome = try await gate.shared { () throws -> Prepared in
            let image: RGBImage
            do throws(ImageDecodingError) {
                image = try decoder.decode(bytes)
            } catch {
                return .undecodable(error)
            }
            var tensors: [(Int, ImageTensor)] = []
            var failures: [PosterFailure] = []
            for index in item.embedders {
                try Task.checkCancellation()
                do {
                    tensors.append((index, try preprocessors[index].tensor(for: image)))
                } catch {
                    failures.append(PosterFailure(.preprocessingFailed, "\(error)", source: source, embedder: index))
                }
            }
            return .preprocessed(tensors, failures)
        }
        switch outcome {
        case .undecodable(let error):
            // Do not keep bytes that do not decode (downloaded just now or read from the cache): a run that retries
            // asks the server again.
            if fetcher.directory == nil { fetcher.cache?.remove(posterPath: posterPath, size: fetcher.size) }
            prepared.failures.append(PosterFailure(Self.reason(for: error), error.description, source: source))
        case .preprocessed(let tensors, let failures):
            prepared.tensors += tensors
            prepared.failures += failures
        }
        return prepared
    }

    /// What decoding and preprocessing one poster gave.
    private enum Prepared: Sendable {
        case undecodable(ImageDecodingError)
        case preprocessed([(Int, ImageTensor)], [PosterFailure])
    }

    /// The skip reason of a decoding failure.
    static func reason(for error: ImageDecodingError) -> SkipReason {
        switch error {
        case .tooManyPixels, .limitExceeded: return .tooLarge
        case .unknownFormat, .unsupported: return .unsupportedFormat
        case .empty, .truncated, .corrupt, .zeroSize: return .undecodable
        case .unreadable: return .downloadFailed
        }
    }
}

/// What went wrong with a poster: for the whole poster (`embedder` nil) or for one selected embedder.
struct PosterFailure: Sendable {
    var reason: SkipReason
    var detail: String
    var httpStatus: Int? = nil
    /// The URL or file tried.
    var source: String?
    var embedder: Int? = nil

    init(_ reason: SkipReason, _ detail: String, httpStatus: Int? = nil, source: String?, embedder: Int? = nil) {
        self.reason = reason
        self.detail = detail
        self.httpStatus = httpStatus
        self.source = source
        self.embedder = embedder
    }
}

/// One movie and the selected embedders (by index) it still needs.
struct WorkItem: Sendable {
    let movie: Movie
    let embedders: [Int]
}

/// A poster ready for batching: one tensor per needed embedder, and what failed. A failure with a nil embedder is the
/// whole poster's.
struct PreparedPoster: Sendable {
    let item: WorkItem
    var tensors: [(embedder: Int, tensor: ImageTensor)] = []
    var failures: [PosterFailure] = []
}

/// Where poster bytes come from: a local folder (`--posters`), else the cache, else the image host (then cached).
struct PosterFetcher: Sendable {
    enum Outcome: Sendable {
        /// The bytes, and the cache file, folder file or URL they came from.
        case bytes([UInt8], fromCache: Bool, source: String)
        case failure(PosterFailure)
    }

    let directory: URL?
    let cache: PosterCache?
    let client: TMDBClient?
    let size: String

    func fetch(posterPath: String) async throws -> Outcome {
        let name: String
        do {
            name = try PosterCache.fileName(of: posterPath)
        } catch {
            return .failure(PosterFailure(.invalidPosterPath, error.description, source: nil))
        }
        if let directory {
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else {
                return .failure(PosterFailure(.posterNotFound, "no file \(url.path)", source: url.path))
            }
            guard let data = FileManager.default.contents(atPath: url.path) else {
                return .failure(PosterFailure(.downloadFailed, "cannot read \(url.path)", source: url.path))
            }
            return .bytes([UInt8](data), fromCache: false, source: url.path)
        }
        if let cache, let cached = cache.read(posterPath: posterPath, size: size) {
            let file = (try? cache.fileURL(posterPath: posterPath, size: size))?.path
            return .bytes(cached, fromCache: true, source: file ?? posterPath)
        }
        guard let client else {
            return .failure(PosterFailure(.downloadFailed, "no image host configured", source: nil))
        }
        let url = try? client.posterURL(posterPath: posterPath, size: size)
        let bytes: [UInt8]
        do {
            bytes = try await client.fetchPoster(posterPath: posterPath, size: size)
        } catch let error as TMDBError {
            let (reason, status) = Self.classify(error)
            return .failure(PosterFailure(reason, error.description, httpStatus: status, source: url))
        }
        // A cache that cannot be written only costs a download next time.
        try? cache?.write(bytes, posterPath: posterPath, size: size)
        return .bytes(bytes, fromCache: false, source: url ?? posterPath)
    }

    /// The skip reason (and HTTP status, if any) of a failed poster download.
    static func classify(_ error: TMDBError) -> (SkipReason, Int?) {
        switch error {
        case .notFound: return (.posterNotFound, 404)
        case .unauthorized: return (.httpError, 401)
        case .httpStatus(let code, _): return (.httpError, code)
        case .responseTooLarge: return (.tooLarge, nil)
        case .invalidPosterPath: return (.invalidPosterPath, nil)
        case .tooManyRetries(_, _, .status(let code)): return (.serverError, code)
        case .tooManyRetries(_, _, .timeout): return (.timeout, nil)
        case .tooManyRetries(_, _, .transport): return (.networkError, nil)
        case .missingCredentials, .badJSON, .invalidSettings: return (.downloadFailed, nil)
        }
    }
}

/// The consumer side of a run: batches per model, embedding, commits, bookkeeping and events. Used only from the task
/// running the pipeline, one call at a time.
final class RunState {
    private struct Batch {
        var movieIDs: [MovieID] = []
        var values: [Float] = []
        var itemShape: [Int]? = nil
    }

    private let embedders: [any EmbeddingModel]
    private let store: any VectorStore
    private let batchSize: Int
    private let writeBatchSize: Int
    /// Embedded and validated vectors not yet written, by embedder.
    private var unwritten: [[EmbeddingInput]]
    /// Taken exclusively by each forward pass, so poster decoding does not share the cores with it.
    private let gate: CoreGate
    private let onEvent: @Sendable (IngestEvent) -> Void
    private let observer: (@Sendable (String, [MovieID]) -> Void)?
    private let total: Int
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant

    private var batches: [Batch]
    private var movies: [MovieID: Movie] = [:]
    /// Pairs of a movie not yet stored or skipped.
    private var remaining: [MovieID: Int] = [:]
    private var failedMovies = Set<MovieID>()
    private(set) var embeddedMovies = 0
    private(set) var skippedMoviesCount = 0
    private(set) var skipped: [SkippedPoster] = []
    private(set) var vectorsWritten: [String: Int] = [:]

    /// One serial queue for every embedder of every pipeline: models never run concurrently.
    private static let embedQueue = DispatchQueue(label: "postersim.ingest.embed", qos: .userInitiated)

    init(
        embedders: [any EmbeddingModel], store: any VectorStore, batchSize: Int, writeBatchSize: Int, total: Int,
        gate: CoreGate, observer: (@Sendable (String, [MovieID]) -> Void)? = nil,
        onEvent: @escaping @Sendable (IngestEvent) -> Void
    ) {
        self.observer = observer
        self.embedders = embedders
        self.store = store
        self.batchSize = batchSize
        self.writeBatchSize = writeBatchSize
        self.unwritten = Array(repeating: [], count: embedders.count)
        self.gate = gate
        self.total = total
        self.onEvent = onEvent
        self.batches = Array(repeating: Batch(), count: embedders.count)
        self.start = clock.now
        for e in embedders { vectorsWritten[e.space.name] = 0 }
    }

    func register(_ work: [WorkItem]) {
        for item in work {
            remaining[item.movie.id] = item.embedders.count
            movies[item.movie.id] = item.movie
        }
    }

    func consume(_ prepared: PreparedPoster) async throws {
        let movie = prepared.item.movie
        if !prepared.failures.isEmpty {
            let skips = prepared.failures.map { failure in
                SkippedPoster(
                    movieID: movie.id, title: movie.title, posterPath: movie.posterPath,
                    space: failure.embedder.map { embedders[$0].space.name }, reason: failure.reason,
                    detail: failure.detail, httpStatus: failure.httpStatus, source: failure.source)
            }
            try await record(skips)
        }
        for failure in prepared.failures {
            if failure.embedder == nil {
                // The poster itself failed: every pair of this movie is settled as skipped.
                for _ in prepared.item.embedders { resolve(movie.id, failed: true) }
            } else {
                resolve(movie.id, failed: true)
            }
        }
        if !prepared.failures.isEmpty { emitProgress() }
        for (index, tensor) in prepared.tensors {
            if let shape = batches[index].itemShape, shape != tensor.shape {
                // Only same-shaped images can share a batch (configs without a crop keep the aspect ratio).
                try await flush(index)
            }
            batches[index].itemShape = tensor.shape
            batches[index].movieIDs.append(movie.id)
            batches[index].values.append(contentsOf: tensor.values)
            if batches[index].movieIDs.count >= batchSize { try await flush(index) }
        }
    }

    func flushAll() async throws {
        for index in embedders.indices {
            try await flush(index)
            try await write(index)
        }
    }

    private func flush(_ index: Int) async throws {
        let batch = batches[index]
        batches[index] = Batch()
        guard let itemShape = batch.itemShape, !batch.movieIDs.isEmpty else { return }
        try Task.checkCancellation()
        let embedder = embedders[index]
        let space = embedder.space
        let tensor = ImageTensor(shape: [batch.movieIDs.count] + itemShape, values: batch.values)
        let vectors: [[Float]]
        do {
            vectors = try await gate.exclusive { try await Self.embed(embedder, tensor) }
        } catch {
            throw IngestError.embedder(space: space.name, detail: "\(error)")
        }
        guard vectors.count == batch.movieIDs.count else {
            throw IngestError.embedderOutput(
                space: space.name, detail: "\(vectors.count) vectors for a batch of \(batch.movieIDs.count)")
        }
        var inputs: [EmbeddingInput] = []
        var rejected: [(MovieID, String)] = []
        for (id, vector) in zip(batch.movieIDs, vectors) {
            guard vector.count == space.dimension else {
                throw IngestError.embedderOutput(
                    space: space.name, detail: "a vector of \(vector.count) components, the space has \(space.dimension)")
            }
            // The store's own check, so ingest records exactly what the store would refuse (non-finite, zero under
            // cosine, a norm that overflows Float32) as a skip instead of failing the batch's write.
            do {
                try space.validate(vector)
                inputs.append(EmbeddingInput(movieID: id, vector: vector))
            } catch StoreError.invalidVector(_, let reason) {
                rejected.append((id, reason))
            }
        }
        if !rejected.isEmpty {
            try await record(
                rejected.map { id, why in
                    let movie = movies[id]
                    return SkippedPoster(
                        movieID: id, title: movie?.title ?? "", posterPath: movie?.posterPath, space: space.name,
                        reason: .invalidEmbedding, detail: why)
                })
        }
        for (id, _) in rejected { resolve(id, failed: true) }
        if !rejected.isEmpty { emitProgress() }
        unwritten[index].append(contentsOf: inputs)
        if unwritten[index].count >= writeBatchSize { try await write(index) }
    }

    /// Writes embedder `index`'s unwritten vectors in one transaction.
    private func write(_ index: Int) async throws {
        let inputs = unwritten[index]
        unwritten[index] = []
        guard !inputs.isEmpty else { return }
        let embedder = embedders[index]
        let space = embedder.space
        // A cancelled run stops before committing; the batch is redone next time.
        try Task.checkCancellation()
        do {
            try await store.upsertEmbeddings(inputs, space: space.name, identity: embedder.identity)
        } catch let error as StoreError {
            throw IngestError.store(error)
        }
        vectorsWritten[space.name, default: 0] += inputs.count
        observer?(space.name, inputs.map(\.movieID))
        onEvent(.batchStored(space: space.name, count: inputs.count))
        for input in inputs { resolve(input.movieID, failed: false) }
        emitProgress()
    }

    /// Stores the skips (one transaction), then reports them: a skip is in the summary only once it is recorded.
    private func record(_ skips: [SkippedPoster]) async throws {
        let identities = Dictionary(embedders.map { ($0.space.name, $0.identity) }, uniquingKeysWith: { a, _ in a })
        do {
            try await store.recordSkips(skips.map { $0.record(identity: $0.space.flatMap { identities[$0] }) }, at: Date())
        } catch let error as StoreError {
            throw IngestError.store(error)
        }
        for skip in skips {
            skipped.append(skip)
            onEvent(.skipped(skip))
        }
    }

    /// Settles one (movie, model) pair; a movie is finished when all its pairs are.
    private func resolve(_ id: MovieID, failed: Bool) {
        if failed { failedMovies.insert(id) }
        guard let left = remaining[id] else { return }
        if left > 1 {
            remaining[id] = left - 1
            return
        }
        remaining[id] = nil
        movies[id] = nil
        if failedMovies.contains(id) { skippedMoviesCount += 1 } else { embeddedMovies += 1 }
    }

    private func emitProgress() {
        let elapsed = (clock.now - start).seconds
        let completed = embeddedMovies + skippedMoviesCount
        let rate = elapsed > 0 ? Double(completed) / elapsed : 0
        let eta: Double? = rate > 0 ? Double(total - completed) / rate : nil
        onEvent(
            .progress(
                IngestProgress(
                    completed: completed, total: total, embedded: embeddedMovies, skipped: skippedMoviesCount,
                    elapsed: elapsed, rate: rate, eta: eta)))
    }

    /// Why the store would refuse `vector`, or nil.
    static func embed(_ embedder: any EmbeddingModel, _ batch: ImageTensor) async throws -> [[Float]] {
        try await withCheckedThrowingContinuation { continuation in
            embedQueue.async {
                continuation.resume(with: Result { try embedder.embed(batch) })
            }
        }
    }
}

extension Array {
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
