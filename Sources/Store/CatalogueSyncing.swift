import Foundation

/// One run of `postersim sync`, as the server's scheduler sees it (`serve --sync-every`): the HTTP API may not import
/// the ingest module (see the README's layout), so it depends on this protocol and the command line wires in
/// Ingest's `CatalogueSync`.
///
/// Guarantees an implementation gives: a run either completes, advancing the store's sync watermark after all its
/// writes committed, or throws and leaves the watermark where it was (a rerun then redoes what is missing);
/// cancelling the calling task stops it promptly. Callers must not start two runs on one store at once (the
/// scheduler never does).
public protocol CatalogueSyncing: Sendable {
    func syncOnce() async throws -> SyncSummary
}

/// What a sync did: counts of movies and model runs, requests, and time per stage. Printed by `postersim sync`
/// (text or `--json`) and exported as metrics by the server.
public struct SyncSummary: Sendable, Codable, Equatable {
    /// Distinct movies the sources listed plus the changed ones looked up.
    public var seen: Int = 0
    /// Movies new to the store.
    public var added: Int = 0
    /// Movies held before whose metadata changed (poster changes included).
    public var metadataUpdated: Int = 0
    /// Movies held before whose poster changed.
    public var postersChanged: Int = 0
    /// Vectors written for movies new to the store, per space.
    public var embedded: [String: Int] = [:]
    /// Vectors written again for movies held before (a new poster, or a run that had been cut short), per space.
    public var reembedded: [String: Int] = [:]
    /// Movies deleted because TMDB no longer has them (404) or they turned adult (`--prune`).
    public var pruned: Int = 0
    /// Movies (or posters) left alone, by reason: `gone_kept`, `adult_kept` (without `--prune`), and the poster
    /// skip reasons of the embedding stage.
    public var skipped: [String: Int] = [:]
    /// Ids behind `gone_kept`/`adult_kept` and `pruned`, so nothing happens silently.
    public var goneIDs: [Int] = []
    public var adultIDs: [Int] = []
    /// TMDB requests made (pages, details, change feed, posters; retries included).
    public var requests: Int = 0
    /// How the change feed was used: `changes`, or why it was not (`first sync`, `window of N days > 14`).
    public var changeFeed: String = ""
    /// The source keys synced.
    public var sources: [String] = []
    /// Seconds per stage, in order: sources, changes, prune, embed, commit.
    public var stages: [Stage] = []
    public var seconds: Double = 0
    /// The new watermark.
    public var watermark: Date?

    public struct Stage: Sendable, Codable, Equatable {
        public var name: String
        public var seconds: Double

        public init(name: String, seconds: Double) {
            self.name = name
            self.seconds = seconds
        }
    }

    public init() {}

    /// Vectors written in all, per space.
    public var vectorsWritten: [String: Int] {
        embedded.merging(reembedded, uniquingKeysWith: +)
    }
}
