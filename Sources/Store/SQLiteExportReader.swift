import PosterSimCore
import Foundation
import GRDB

/// Reads an embedded store file page by page for `postersim export` (movie ids, spaces with their current identity,
/// current vectors), without loading its search indexes. Read-only; each call is one read transaction.
public struct SQLiteExportReader: Sendable {
    private let queue: DatabaseQueue

    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError.database("no store file at \(path)") }
        var config = Configuration()
        config.readonly = true
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
        } catch {
            throw StoreError.database("cannot open \(path): \(error)")
        }
    }

    public func movieIDs(after: MovieID, limit: Int) throws -> [MovieID] {
        try queue.read { db in
            try Int.fetchAll(db, sql: "SELECT id FROM movie WHERE id > ? ORDER BY id LIMIT ?", arguments: [after, limit])
        }
    }

    public func spacesWithIdentity() throws -> [(VectorSpace, ModelIdentity)] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT name, dimension, metric, identity FROM vector_space ORDER BY name").map {
                let name: String = $0["name"]
                let s = try SQLiteVectorStore.space(named: name, from: $0)
                return (s.space, s.identity)
            }
        }
    }

    public func currentEmbeddings(space: VectorSpace, identity: ModelIdentity, after: MovieID, limit: Int) throws
        -> [EmbeddingInput]
    {
        try queue.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT movie_id, vector FROM embedding WHERE space = ? AND identity = ? AND movie_id > ?
                    ORDER BY movie_id LIMIT ?
                    """,
                arguments: [space.name, identity.storedForm, after, limit]
            ).map {
                let id: MovieID = $0["movie_id"]
                let blob: Data = $0["vector"]
                return EmbeddingInput(
                    movieID: id, vector: try VectorBlob.decode(blob, dimension: space.dimension, space: space.name, id: id))
            }
        }
    }
}

extension SQLiteExportReader {
    /// Every skip record (none in a store written before the skip table existed).
    public func skipRecords() throws -> [SkipRecord] {
        try queue.read { db in
            guard try db.tableExists("poster_skip") else { return [] }
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT movie_id, space, reason, http_status, message, poster_path, source, identity, attempts,
                        first_failed_at, last_attempt_at FROM poster_skip ORDER BY movie_id, space
                    """
            ).map(SQLiteVectorStore.skipRecord(from:))
        }
    }

    /// Whole movies with ids after `after`, ascending, at most `limit`.
    public func movies(after: MovieID, limit: Int) throws -> [Movie] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM movie WHERE id > ? ORDER BY id LIMIT ?", arguments: [after, limit])
                .map(SQLiteVectorStore.movie(from:))
        }
    }
}
