import PosterSimCore
import Foundation
import Store

/// Copies one store into another (`postersim export`): movies, then each space's current vectors, page by page in id
/// order, then the skip records. Resumable and idempotent: movies are upserted, (movie, space) pairs the destination
/// already holds under the same model identity are skipped, and skip records are stored as they are (replacing the
/// same key), so an interrupted export just runs again. A skip record whose pair the destination holds a vector for
/// (for a poster's own record: a vector of the movie in any exported space) is left out: the vector settled it. Into PostgreSQL, vectors go in with
/// `COPY … FROM STDIN` (`PostgresVectorStore.copyEmbeddings`), one transaction per batch; into SQLite, with
/// `upsertEmbeddings`.
public struct StoreExport: Sendable {
    /// Paged reads of the store being exported, whichever kind it is.
    public enum Source: Sendable {
        case sqlite(SQLiteExportReader)
        case postgres(PostgresVectorStore)

        func movies(after: MovieID, limit: Int) async throws -> [Movie] {
            switch self {
            case .sqlite(let r): return try r.movies(after: after, limit: limit)
            case .postgres(let s): return try await s.movies(after: after, limit: limit)
            }
        }

        func spaces() async throws -> [(VectorSpace, ModelIdentity)] {
            switch self {
            case .sqlite(let r): return try r.spacesWithIdentity()
            case .postgres(let s): return try await s.spacesWithIdentity()
            }
        }

        func skipRecords() async throws -> [SkipRecord] {
            switch self {
            case .sqlite(let r): return try r.skipRecords()
            case .postgres(let s): return try await s.skipRecords(movieIDs: nil)
            }
        }

        func embeddings(space: VectorSpace, identity: ModelIdentity, after: MovieID, limit: Int) async throws
            -> [EmbeddingInput]
        {
            switch self {
            case .sqlite(let r):
                return try r.currentEmbeddings(space: space, identity: identity, after: after, limit: limit)
            case .postgres(let s): return try await s.currentEmbeddings(space: space.name, after: after, limit: limit)
            }
        }
    }

    public struct Report: Sendable, Equatable {
        public var movies = 0
        /// Vectors written, per space.
        public var copied: [String: Int] = [:]
        /// Vectors the destination already had, per space.
        public var alreadyThere: [String: Int] = [:]
        /// Skip records written, and those left out because the destination holds a vector for their pair.
        public var skipRecords = 0
        public var skipRecordsSettled = 0
    }

    public let source: Source
    public let destination: any VectorStore
    public var batchSize: Int

    public init(source: Source, destination: any VectorStore, batchSize: Int = 1000) {
        self.source = source
        self.destination = destination
        self.batchSize = max(1, batchSize)
    }

    /// Runs the copy; `progress` gets a line per phase. `stopAfterBatches` (tests) stops early, as a crash would.
    public func run(progress: @Sendable (String) -> Void = { _ in }, stopAfterBatches: Int? = nil) async throws
        -> Report
    {
        var report = Report()
        var batches = 0
        func tick() throws {
            batches += 1
            if let stop = stopAfterBatches, batches >= stop { throw CancellationError() }
        }
        // Movies first (vectors reference them).
        var after = -1
        while true {
            let page = try await source.movies(after: after, limit: batchSize)
            guard let last = page.last?.id else { break }
            try await destination.upsertMovies(page)
            report.movies += page.count
            after = last
            try tick()
        }
        progress("\(report.movies) movies")
        let spaces = try await source.spaces()
        for (space, identity) in spaces {
            try await destination.registerSpace(space, identity: identity)
            // Keep a batch's payload near 16 MB whatever the dimension.
            let perBatch = max(1, min(batchSize, 4_000_000 / space.dimension))
            var after = -1
            while true {
                let page = try await source.embeddings(space: space, identity: identity, after: after, limit: perBatch)
                guard let last = page.last?.movieID else { break }
                let done = try await destination.completedPairs(movieIDs: page.map(\.movieID), spaces: [space.name])
                let todo = page.filter { !done.contains(EmbeddingKey(movieID: $0.movieID, space: space.name)) }
                if !todo.isEmpty {
                    if let pg = destination as? PostgresVectorStore {
                        try await pg.copyEmbeddings(todo, space: space.name, identity: identity)
                    } else {
                        try await destination.upsertEmbeddings(todo, space: space.name, identity: identity)
                    }
                }
                report.copied[space.name, default: 0] += todo.count
                report.alreadyThere[space.name, default: 0] += page.count - todo.count
                after = last
                try tick()
            }
            progress("\(space.name): \(report.copied[space.name] ?? 0) vectors copied, "
                + "\(report.alreadyThere[space.name] ?? 0) already there")
        }
        // Skip records last: their movies are there, and so are the vectors that would settle them.
        let records = try await source.skipRecords()
        for start in stride(from: 0, to: records.count, by: batchSize) {
            let page = Array(records[start..<min(start + batchSize, records.count)])
            let done = try await destination.completedPairs(
                movieIDs: Array(Set(page.map(\.skip.movieID))), spaces: spaces.map(\.0.name))
            let moviesWithVectors = Set(done.map(\.movieID))
            let todo = page.filter { record in
                guard let space = record.skip.space else { return !moviesWithVectors.contains(record.skip.movieID) }
                return !done.contains(EmbeddingKey(movieID: record.skip.movieID, space: space))
            }
            try await destination.importSkipRecords(todo)
            report.skipRecords += todo.count
            report.skipRecordsSettled += page.count - todo.count
            try tick()
        }
        progress("skip records: \(report.skipRecords) copied, \(report.skipRecordsSettled) settled by a vector there")
        return report
    }
}
