// The commands that build and query the embedded store: `ingest`, `similar`, `search`, `stats`.
import CommandSupport
import PosterSimCore
import ArgumentParser
import Foundation
import Imaging
import Ingest
import ModelHub
import Models
import Store

/// Options shared by the query commands.
struct QueryOptions: ParsableArguments {
    @Option(name: .short, help: "How many matches.")
    var k = 10

    @Flag(help: "Print the matches as JSON, in the shape of the HTTP API (a Pinecone query response).")
    var json = false

    @Option(help: "Only movies released in or after this year.") var minYear: Int?
    @Option(help: "Only movies released in or before this year.") var maxYear: Int?
    @Option(help: "Only movies with this TMDB genre id.") var genre: Int?
    @Option(help: "Only movies in this original language (e.g. en, fr, ja).") var language: String?
    @Option(help: "Only movies with at least this many votes.") var minVotes: Int?

    var filter: SearchFilter {
        SearchFilter(minYear: minYear, maxYear: maxYear, genreID: genre, originalLanguage: language, minVoteCount: minVotes)
    }

    func validate() throws {
        guard (1...1000).contains(k) else { throw ValidationError("-k must be between 1 and 1000") }
    }

    /// Prints `matches` as a table (rank, score, year, title) or as JSON.
    func show(_ matches: [SearchMatch], space: String, store: any VectorStore) async throws {
        let fetched = try await store.fetchMovies(ids: matches.map(\.movieID))
        let movies = Dictionary(fetched.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let rows = matches.compactMap { match in movies[match.movieID].map { (match, $0) } }
        if json {
            let output = MatchesOutput(matches: matches, movies: fetched, namespace: space)
            print(try encodeJSON(output))
            return
        }
        print("rank  score       year  title")
        for (rank, (match, movie)) in rows.enumerated() {
            let year = movie.releaseYear.map(String.init) ?? "    "
            print(String(format: "%4d  %-10.6g  ", rank + 1, Double(match.score)) + "\(year)  \(movie.title)")
        }
    }
}

// MARK: ingest

struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Build the similarity index: movies, posters, and each model's vectors.",
        discussion: """
            Resumable: a second run skips what is done, and a run killed at any moment loses nothing and \
            duplicates nothing when started again. A poster that cannot be fetched or decoded is skipped with \
            its reason, recorded in the store (see `postersim skipped`) and summed up at the end; the run fails \
            only if nothing could be done. Later runs retry transient skips (timeouts, network errors, 5xx, \
            429) and leave permanent ones alone unless the movie's poster_path changed or --retry-skipped is given.
            """,
        subcommands: [TMDB.self, JSON.self])

    struct Common: ParsableArguments {
        @Option(help: "Comma-separated models to run (default: all three).", transform: { text in
            try text.split(separator: ",").map { try ModelName.parseArgument(String($0)) }
        })
        var models: [ModelName] = ModelName.allCases

        @Option(help: "Stop after this many movies.") var limit: Int?
        @Option(help: "TMDB image size of the posters (original, w780, w500, ...).") var posterSize = "original"
        @Option(help: "Posters downloaded at once.") var concurrency = 8
        @OptionGroup var batching: BatchOptions
        @Flag(help: """
            Also retry posters an earlier run skipped for a permanent reason (no poster_path, 404, undecodable, \
            too large...). Transient skips (timeouts, network errors, 5xx, 429) are always retried.
            """)
        var retrySkipped = false
        @Option(help: "Where downloaded posters are cached.") var posterCache = ".cache/posters"
        @Flag(help: "Print the summary as JSON on standard output.") var json = false
        @OptionGroup var store: StoreOptions
        @OptionGroup var location: ModelLocationOptions

        func run(source: IngestConfiguration.Source, pages: Int?, postersDirectory: String?,
                 tmdb: TMDBSettings, language: String? = nil) async throws {
            var configuration = IngestConfiguration(source: source)
            if let pages { configuration.pages = pages }
            let opened = try await store.open()
            var tmdb = tmdb
            // The catalogue's language unless the flag names one (the pipeline refuses a different one).
            if let language {
                tmdb.language = language
            } else if let stored = try await opened.catalogueState().language {
                tmdb.language = stored
            }
            configuration.limit = limit
            configuration.models = models.map(\.rawValue)
            configuration.posterSize = posterSize
            configuration.postersDirectory = postersDirectory
            configuration.posterCacheDirectory = posterCache
            configuration.concurrency = concurrency
            batching.apply(to: &configuration)
            configuration.retrySkipped = retrySkipped
            configuration.tmdb = tmdb
            let embedders = try models.map { try location.load($0) }
            let pipeline = IngestPipeline(configuration: configuration, store: opened, embedders: embedders)
            let renderer = ProgressRenderer()
            let summary = try await pipeline.run { renderer.handle($0) }
            await StoreOptions.writeIndexFile(of: opened)
            if json { print(try encodeJSON(summary)) }
            if summary.nothingDone { throw ExitCode(1) }
        }
    }

    struct TMDB: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tmdb",
            abstract: "Ingest movies from TMDB: a list, trending, discover or explicit ids (default: the popular list).",
            discussion: """
                One source per run: --list popular|top_rated|now_playing|upcoming or --trending day|week (with \
                --pages), --discover with its filters, or --ids. The store records the source and the language, so \
                `postersim sync` can bring them up to date later, and records per movie which sources listed it and \
                when. Needs a TMDB credential: TMDB_API_TOKEN (a read-access token, sent as a Bearer token) or \
                TMDB_API_KEY. Endpoints: --base-url / TMDB_BASE_URL and --image-base-url / TMDB_IMAGE_BASE_URL.
                """)

        @OptionGroup var source: SourceOptions
        @Option(help: "TMDB API base URL (default TMDB_BASE_URL, else TMDB's public v3 API).") var baseURL: String?
        @Option(help: "TMDB image base URL (default TMDB_IMAGE_BASE_URL, else TMDB's image CDN).") var imageBaseURL: String?
        @OptionGroup var common: Common

        func run() async throws {
            let sources = try source.sources()
            guard sources.count <= 1 else {
                throw ValidationError("one source per ingest (--list, --trending, --discover or --ids); run ingest once for each")
            }
            let chosen = sources.first ?? .list(.popular, pages: source.pages ?? 5)
            try await common.run(
                source: .catalogue(chosen), pages: nil, postersDirectory: nil,
                tmdb: TMDBSettings.resolve(baseURL: baseURL, imageBaseURL: imageBaseURL), language: source.language)
        }
    }

    struct JSON: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "json",
            abstract: "Ingest movies from a JSON file of TMDB result objects.")

        @Argument(help: "A JSON array of TMDB movie objects (the `results` of /movie/popular).") var file: String
        @Option(help: "Read posters from this folder by poster_path instead of downloading them.") var posters: String?
        @Option(help: "TMDB image base URL for posters not found locally.") var imageBaseURL: String?
        @OptionGroup var common: Common

        func run() async throws {
            try await common.run(
                source: .jsonFile(file), pages: nil, postersDirectory: posters,
                tmdb: TMDBSettings.resolve(imageBaseURL: imageBaseURL))
        }
    }
}

// MARK: similar

struct SimilarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "similar",
        abstract: "The posters most similar to a movie's poster under one model.",
        discussion: """
            The movie itself comes first (score 1 for CLIP, 0 for the euclidean models), as in the original \
            service, unless --exclude-self. Scores: cosine similarity for CLIP (higher is closer), squared \
            euclidean distance for ResNet-50 and VGG16 (lower is closer).
            """)

    @Option(help: "TMDB id of the movie.") var id: Int?
    @Option(help: "Title to look up (case- and accent-insensitive; may include the year).") var title: String?
    @Option(help: "Model: clip, resnet50 or vgg16.", transform: ModelName.parseArgument) var model: ModelName
    @Flag(help: "Leave the movie itself out of the results.") var excludeSelf = false
    @OptionGroup var query: QueryOptions
    @OptionGroup var store: StoreOptions

    func validate() throws {
        guard (id == nil) != (title == nil) else { throw ValidationError("give exactly one of --id and --title") }
    }

    func run() async throws {
        let store = try await store.open()
        var movieID = id
        if let title {
            let candidates = try await store.searchTitles(title, limit: 20)
            let exact = candidates.filter { $0.title.compare(title, options: [.caseInsensitive, .diacriticInsensitive]) == .orderedSame }
            let chosen = exact.count == 1 ? exact : candidates
            guard chosen.count == 1 else {
                if chosen.isEmpty { throw ValidationError("no movie matches \"\(title)\"") }
                let list = chosen.map { "  \($0.id)  \($0.label)" }.joined(separator: "\n")
                throw ValidationError("\"\(title)\" matches several movies; pick one with --id:\n\(list)")
            }
            movieID = chosen[0].id
        }
        guard let movieID else { return }
        let matches = try await store.query(
            space: model.rawValue, movieID: movieID, k: query.k, filter: query.filter, excludeSelf: excludeSelf)
        try await query.show(matches, space: model.rawValue, store: store)
    }
}

// MARK: search

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search the posters by an image or by a text description.",
        subcommands: [Image.self, Text.self])

    struct Image: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Posters that look like an image file.")
        @Argument(help: "An image file (JPEG, PNG or WebP).") var file: String
        @Option(help: "Model: clip, resnet50 or vgg16.", transform: ModelName.parseArgument) var model: ModelName
        @OptionGroup var query: QueryOptions
        @Flag(help: "Always scan (spaces of 100,000+ films otherwise answer through the neighbour lists).")
        var exact = false
        @OptionGroup var store: StoreOptions
        @OptionGroup var location: ModelLocationOptions

        func run() async throws {
            let loaded = try location.load(model)
            let image = try PosterDecoder().decode(contentsOf: URL(fileURLWithPath: file))
            let vector = try loaded.embed(images: [image])[0]
            let store = try await store.open()
            let matches = try await store.query(
                space: model.rawValue, vector: vector, k: query.k, filter: query.filter, exact: exact)
            try await query.show(matches, space: model.rawValue, store: store)
        }
    }

    struct Text: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Posters that match a description (CLIP's text tower).")
        @Argument(help: "The description, e.g. \"a lone astronaut on a red planet\".") var text: String
        @OptionGroup var query: QueryOptions
        @Flag(help: "Always scan (spaces of 100,000+ films otherwise answer through the neighbour lists).")
        var exact = false
        @OptionGroup var store: StoreOptions
        @OptionGroup var location: ModelLocationOptions

        func run() async throws {
            let loaded = try location.load(.clip)
            let vector = try loaded.embed(texts: [text])[0]
            let store = try await store.open()
            let matches = try await store.query(
                space: ModelName.clip.rawValue, vector: vector, k: query.k, filter: query.filter, exact: exact)
            try await query.show(matches, space: ModelName.clip.rawValue, store: store)
        }
    }
}

// MARK: stats

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Movies and vectors per model in the store, and the checkpoints they came from.")
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let opened = try await store.open()
        let stats = try await opened.stats()
        if json {
            print(try encodeJSON(stats))
            return
        }
        print("\(stats.movies) movies in \(store.location)")
        let catalogue = try await opened.catalogueState()
        if let language = catalogue.language { print("language: \(language)") }
        for source in catalogue.sources { print("source: \(source.spec)") }
        if let watermark = catalogue.syncWatermark {
            print("synced with TMDB's changes up to \(ISO8601DateFormatter().string(from: watermark))")
        }
        for space in stats.spaces {
            print("  \(space.space): \(space.vectors) vectors" + (space.staleVectors > 0 ? ", \(space.staleVectors) stale" : "")
                  + "  (\(space.identity))")
        }
        let skips = stats.skips
        guard skips.records > 0 else { return }
        print("\(skips.movies) movies with skipped posters (\(skips.records) records; `postersim skipped` lists them)")
        for (reason, n) in skips.byReason.sorted(by: { $0.key < $1.key }) {
            let kind = SkipReason(rawValue: reason).map { $0.isTransient ? "transient" : "permanent" } ?? "unknown"
            print("  \(reason): \(n)  (\(kind))")
        }
    }
}

// MARK: skipped

struct SkippedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skipped",
        abstract: "The posters ingest runs could not fetch, decode or embed, with the reason of the last failure.",
        discussion: """
            One line per record: a movie's poster (model "-") or one model's embedding of it. Transient \
            reasons (server_error, timeout, network_error, download_failed) are retried by the next ingest; \
            permanent ones only with `postersim ingest … --retry-skipped` or when the movie's poster_path \
            changed. A record disappears when the poster is later embedded.
            """)

    @Option(help: "Only this reason (e.g. poster_not_found, undecodable, server_error).") var reason: String?
    @Flag(help: "Print JSON: an array of records with the movie's title.") var json = false
    @OptionGroup var store: StoreOptions

    func validate() throws {
        if let reason, SkipReason(rawValue: reason) == nil {
            let names = SkipReason.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("unknown reason '\(reason)'; one of: \(names)")
        }
    }

    /// A record with its movie's title, as `--json` prints it.
    struct Entry: Encodable {
        let title: String?
        let record: SkipRecord
        let retriedByNextRun: Bool
    }

    func run() async throws {
        let store = try await store.open()
        let records = try await store.skipRecords(movieIDs: nil).filter { reason == nil || $0.skip.reason.rawValue == reason }
        let titles = Dictionary(
            try await store.fetchMovies(ids: Array(Set(records.map(\.skip.movieID)))).map { ($0.id, $0.title) },
            uniquingKeysWith: { first, _ in first })
        if json {
            let entries = records.map {
                Entry(title: titles[$0.skip.movieID], record: $0, retriedByNextRun: $0.skip.reason.isTransient)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            print(String(decoding: try encoder.encode(entries), as: UTF8.self))
            return
        }
        guard !records.isEmpty else {
            print("no skipped posters in \(self.store.location)")
            return
        }
        func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
        }
        let time = ISO8601DateFormatter()
        print("movie     model     reason              status  attempts  last attempt          title")
        for r in records {
            let s = r.skip
            print(
                pad(String(s.movieID), 10) + pad(s.space ?? "-", 10) + pad(s.reason.rawValue, 20)
                    + pad(s.httpStatus.map(String.init) ?? "-", 8) + pad(String(r.attempts), 10)
                    + pad(time.string(from: r.lastAttemptAt), 22) + (titles[s.movieID] ?? "?"))
            print("          \(s.message)" + (s.source.map { " [\($0)]" } ?? ""))
        }
    }
}
