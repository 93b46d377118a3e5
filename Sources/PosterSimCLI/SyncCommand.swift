// `postersim sync`: brings the store up to date with TMDB (new films, changed metadata and posters, removed films).
import ArgumentParser
import CommandSupport
import Foundation
import Ingest
import PosterSimCore
import Store

/// What a sync does, apart from where the store and models are: `postersim sync` reads it from its flags and
/// `serve --sync-args "…"` from that string.
struct SyncOptions: ParsableArguments {
    @OptionGroup var source: SourceOptions
    @Flag(help: """
        Delete movies TMDB no longer returns (404) or that turned adult. Without it they are kept, and the summary \
        counts and names them.
        """)
    var prune = false
    @Option(help: "Comma-separated models to keep current (default: all three).", transform: ModelName.parseList)
    var models: [ModelName] = ModelName.allCases
    @Option(help: "TMDB image size of the posters (as the ingest used).") var posterSize = "original"
    @Option(help: "Where downloaded posters are cached.") var posterCache = ".cache/posters"
    @Option(help: "Posters downloaded at once.") var concurrency = 8
    @OptionGroup var batching: BatchOptions
    @Flag(help: "Also retry posters an earlier run skipped for a permanent reason.") var retrySkipped = false
    @Option(help: "TMDB API base URL (default TMDB_BASE_URL, else TMDB's public v3 API).") var baseURL: String?
    @Option(help: "TMDB image base URL (default TMDB_IMAGE_BASE_URL, else TMDB's image CDN).") var imageBaseURL: String?

    func configuration() throws -> SyncConfiguration {
        var ingest = IngestConfiguration(source: .tmdb)
        ingest.models = models.map(\.rawValue)
        ingest.posterSize = posterSize
        ingest.posterCacheDirectory = posterCache
        ingest.concurrency = concurrency
        batching.apply(to: &ingest)
        ingest.retrySkipped = retrySkipped
        ingest.tmdb = TMDBSettings.resolve(baseURL: baseURL, imageBaseURL: imageBaseURL)
        var c = SyncConfiguration(ingest: ingest)
        c.sources = try source.sources()
        c.prune = prune ? .remove : .keep
        c.language = source.language
        return c
    }
}

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Bring the store up to date with TMDB, embedding only new films and changed posters.",
        discussion: """
            Without source flags it syncs the sources earlier ingests into this store used (the store records \
            them); with flags it adds those sources. Stages: the sources are read again (new films added, \
            metadata refreshed); TMDB's change feed since the last successful sync names the other changed films \
            the store holds, which are read with /movie/{id}; films TMDB no longer has (404) or that turned adult \
            are kept or, with --prune, deleted; then every film missing a vector is embedded: a new film or a new \
            poster costs a model run, changed metadata alone does not. The sync's watermark moves only after all \
            its writes committed, so a sync killed at any moment can simply be run again. A change feed window \
            longer than TMDB's 14 days is not read: the sources' refresh stands in for it.
            """)

    @OptionGroup var options: SyncOptions
    @Flag(help: "Print the summary as JSON on standard output.") var json = false
    @OptionGroup var store: StoreOptions
    @OptionGroup var location: ModelLocationOptions

    func run() async throws {
        let configuration = try options.configuration()
        let embedders = try options.models.map { try location.load($0) }
        let opened = try await store.open()
        let sync = CatalogueSync(configuration: configuration, store: opened, embedders: embedders)
        let renderer = ProgressRenderer()
        let summary = try await sync.run { event in
            switch event {
            case .stage(let name): FileHandle.standardError.write(Data("sync: \(name)\n".utf8))
            case .sourceRead(let key, let n): FileHandle.standardError.write(Data("  \(key): \(n) movies\n".utf8))
            case .changesWritten: break
            case .ingest(let e): renderer.handle(e)
            }
        }
        await StoreOptions.writeIndexFile(of: opened)
        if json {
            print(try encodeJSON(summary))
        } else {
            print(Self.describe(summary))
        }
    }

    /// The text summary.
    static func describe(_ s: SyncSummary) -> String {
        var lines = [
            "synced \(s.sources.joined(separator: ", ")) in \(String(format: "%.1f", s.seconds)) s; \(s.changeFeed)",
            "movies: \(s.seen) seen, \(s.added) added, \(s.metadataUpdated) metadata updated, "
                + "\(s.postersChanged) posters changed, \(s.pruned) pruned",
        ]
        for space in Set(s.embedded.keys).union(s.reembedded.keys).sorted() {
            lines.append(
                "  \(space): \(s.embedded[space] ?? 0) embedded (new films), \(s.reembedded[space] ?? 0) re-embedded")
        }
        if !s.skipped.isEmpty {
            lines.append("skipped: " + s.skipped.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if !s.goneIDs.isEmpty { lines.append("no longer on TMDB (404): " + s.goneIDs.map(String.init).joined(separator: " ")) }
        if !s.adultIDs.isEmpty { lines.append("turned adult: " + s.adultIDs.map(String.init).joined(separator: " ")) }
        lines.append("requests: \(s.requests)")
        lines.append("time: " + s.stages.map { "\($0.name) \(String(format: "%.2f", $0.seconds)) s" }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }
}
