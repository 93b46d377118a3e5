// What `postersim export` reads and writes: paging through movies and vectors, COPY bulk loads.
import PosterSimCore
import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Store
import Synchronization


extension PostgresVectorStore {
    // MARK: - Export support

    /// Movie ids in ascending order after `after`, at most `limit` (for paging through the whole store).
    public func movieIDs(after: MovieID, limit: Int) async throws -> [MovieID] {
        try await read { conn in
            var q = SQL("SELECT id FROM movie WHERE id > ")
            q.bind(after)
            q.append("::int8 ORDER BY id LIMIT ")
            q.bind(limit)
            return try await Self.all(conn, q).map { try $0.decode(Int.self) }
        }
    }

    /// Each space with its current identity.
    public func spacesWithIdentity() async throws -> [(VectorSpace, ModelIdentity)] {
        try await stats().spaces.map { ($0.space, $0.identity) }
    }

    /// Current-identity embeddings of `space` for movie ids after `after`, ascending, at most `limit`.
    public func currentEmbeddings(space name: String, after: MovieID, limit: Int) async throws -> [EmbeddingInput] {
        let info = try await spaceInfo(name)
        return try await read { conn in
            var q = SQL("SELECT e.movie_id, e.embedding::real[] FROM \(info.table) e WHERE e.movie_id > ")
            q.bind(after)
            q.append("::int8 AND e.identity = (SELECT identity FROM vector_space WHERE name = ")
            q.bind(name)
            q.append(") ORDER BY e.movie_id LIMIT ")
            q.bind(limit)
            return try await Self.all(conn, q).map {
                let (id, v) = try $0.decode((Int, [Float]).self)
                return EmbeddingInput(movieID: id, vector: v)
            }
        }
    }

    /// The current-identity vectors of these movies in `space` (the HTTP API's `includeValues`).
    public func fetchVectors(ids: [MovieID], space name: String) async throws -> [MovieID: [Float]] {
        guard !ids.isEmpty else { return [:] }
        let info = try await spaceInfo(name)
        return try await read { conn in
            var q = SQL("SELECT e.movie_id, e.embedding::real[] FROM \(info.table) e WHERE e.movie_id = ANY(")
            q.bind(ids)
            q.append("::int8[]) AND e.identity = (SELECT identity FROM vector_space WHERE name = ")
            q.bind(name)
            q.append(")")
            var out: [MovieID: [Float]] = [:]
            for row in try await Self.all(conn, q) {
                let (id, v) = try row.decode((Int, [Float]).self)
                out[id] = v
            }
            return out
        }
    }

    /// Runs `ANALYZE` on the store's tables, so the planner's row estimates (which choose exact or approximate
    /// search) follow a bulk load at once instead of after autovacuum.
    public func analyze() async throws {
        try await read { conn in
            try await Self.run(conn, SQL("ANALYZE movie"))
            for table in try await Self.all(conn, SQL("SELECT name, table_name FROM vector_space")).map({
                let (space, table) = try $0.decode((String, String).self)
                return try PostgresStoreConfiguration.checkedTableName(table, space: space)
            }) {
                try await Self.run(conn, SQL("ANALYZE \(table)"))
            }
        }
        estimates.withLock { $0 = [:] }
    }

    /// Whole movies with ids after `after`, ascending, at most `limit` (for export).
    public func movies(after: MovieID, limit: Int) async throws -> [Movie] {
        try await read { conn in
            var q = SQL("SELECT \(Self.movieColumns) FROM movie WHERE id > ")
            q.bind(after)
            q.append("::int8 ORDER BY id LIMIT ")
            q.bind(limit)
            return try await Self.all(conn, q).map(Self.decodeMovie)
        }
    }

    /// The batch checked against the space (dimension, finite values) and with duplicate movies reduced to their last
    /// vector, as one write applies it.
    func checkedBatch(_ embeddings: [EmbeddingInput], space name: String) async throws
        -> (SpaceInfo, [EmbeddingInput])
    {
        let info = try await spaceInfo(name)
        for e in embeddings { try info.space.validate(e.vector) }
        var last: [MovieID: Int] = [:]
        for (i, e) in embeddings.enumerated() { last[e.movieID] = i }
        return (info, embeddings.enumerated().filter { last[$0.element.movieID] == $0.offset }.map(\.element))
    }

    /// Every movie of the batch must exist: the first missing one (in batch order) fails it. KEY SHARE locks keep a
    /// concurrent delete from removing them before the insert.
    static func lockMovies(of embeddings: [EmbeddingInput], _ conn: PostgresConnection) async throws {
        var check = SQL("SELECT id FROM movie WHERE id = ANY(")
        check.bind(Array(Set(embeddings.map(\.movieID))))
        check.append("::int8[]) FOR KEY SHARE")
        let present = Set(try await all(conn, check).map { try $0.decode(Int.self) })
        if let missing = embeddings.first(where: { !present.contains($0.movieID) }) {
            throw StoreError.unknownMovie(missing.movieID)
        }
    }

    /// Throws unless `identity` is the space's current one (read inside the write's transaction).
    static func requireIdentity(_ identity: ModelIdentity, space name: String, _ conn: PostgresConnection) async throws {
        var q = SQL("SELECT identity FROM vector_space WHERE name = ")
        q.bind(name)
        guard let row = try await all(conn, q).first else { throw StoreError.unknownSpace(name) }
        let currentText = try row.decode(String.self)
        guard let current = ModelIdentity(storedForm: currentText) else {
            throw StoreError.corrupt("space '\(name)' has unparsable identity '\(currentText)'")
        }
        guard current == identity else {
            throw StoreError.identityMismatch(space: name, current: current, given: identity)
        }
    }

    /// `upsertEmbeddings` for bulk loads: the batch streams in with `COPY … FROM STDIN` (text format) into a temporary
    /// table, then one `INSERT … SELECT … ON CONFLICT` moves it into the space, all in one transaction with the same
    /// checks (identity, existing movies, dimension, finite values) and the same all-or-nothing guarantee.
    public func copyEmbeddings(_ embeddings: [EmbeddingInput], space name: String, identity: ModelIdentity)
        async throws
    {
        guard !embeddings.isEmpty else { return }
        let (info, unique) = try await checkedBatch(embeddings, space: name)
        let logger = Self.disabledLogger
        try await write { conn in
            try await Self.requireIdentity(identity, space: name, conn)
            try await Self.lockMovies(of: embeddings, conn)
            let replaced = try await Self.currentVectors(conn, info, among: unique.map(\.movieID))
            try await Self.run(conn, SQL("""
                CREATE TEMP TABLE IF NOT EXISTS postersim_load (movie_id bigint, embedding vector) ON COMMIT DELETE ROWS
                """))
            try await ClosedConnectionGuard.shared.run(on: conn) {
                try await conn.copyFrom(table: "postersim_load", columns: ["movie_id", "embedding"], logger: logger) {
                    writer in
                    var buffer = ByteBuffer()
                    for e in unique {
                        buffer.writeString("\(e.movieID)\t[")
                        for (j, x) in e.vector.enumerated() {
                            if j > 0 { buffer.writeString(",") }
                            buffer.writeString(x.description)
                        }
                        buffer.writeString("]\n")
                        if buffer.readableBytes > 1 << 20 {
                            try await writer.write(buffer)
                            buffer.clear()
                        }
                    }
                    if buffer.readableBytes > 0 { try await writer.write(buffer) }
                }
            }
            var ins = SQL("INSERT INTO \(info.table) (movie_id, identity, embedding) SELECT movie_id, ")
            ins.bind(identity.storedForm)
            ins.append("::text, embedding::vector(\(info.space.dimension)) FROM postersim_load")
            ins.append(" ON CONFLICT (movie_id) DO UPDATE SET identity = EXCLUDED.identity, embedding = EXCLUDED.embedding")
            try await Self.run(conn, ins)
            try await Self.maintainNeighbours(conn, info: info, added: unique.map(\.movieID), removed: replaced)
            try await Self.settleSkips(of: unique, space: name, conn)
        }
    }

    /// Inside an embedding write: a stored vector settles the pair's skip record and the poster's own one.
    static func settleSkips(of embeddings: [EmbeddingInput], space name: String, _ conn: PostgresConnection)
        async throws
    {
        var q = SQL("DELETE FROM poster_skip WHERE movie_id = ANY(")
        q.bind(embeddings.map(\.movieID))
        q.append("::int8[]) AND space IN (")
        q.bind(name)
        q.append("::text, ")
        q.bind(SkipKey.posterSpaceColumn)
        q.append("::text)")
        try await run(conn, q)
    }
}
