// The `RecordIndexStore` on PostgreSQL: users' Pinecone-style indexes.
import Foundation
import PostgresNIO
import PosterSimCore
import Store

/// Tables: `record_index` (migration 3) and one `rec_<name>` per index (`namespace`, `id text COLLATE "C"` so ids
/// order by bytes, `embedding vector(d)`, `metadata jsonb`, primary key (namespace, id)), with an HNSW index on the
/// embedding where pgvector allows one (d ≤ 2,000; cosine, L2 or inner-product operators by the index's metric).
///
/// Each call is one transaction. Writes first bump the index's `generation`, taking its row lock, so writes to one
/// index apply one after the other. Reads run in one REPEATABLE READ snapshot.
///
/// Search: exact unless the query has no filter, `approximateSearch` is on and the namespace holds at least
/// `exactScanBelow` records; then the HNSW index gives `max(k, rerankCandidates)` candidates (iterative scan, so other
/// namespaces' rows do not shorten the list) re-ranked by the exact score with the id tie-break (recall as measured
/// for the movie spaces in Benchmarks/PGBench). Exact search, and every filtered query, scans the namespace in memory
/// (`RecordNamespaceIndex`, the same kernels as the SQLite store), loaded once per generation of the index; filters
/// are evaluated in Swift by `MetadataFilter`, so both stores answer filters identically.
extension PostgresVectorStore: RecordIndexStore {
    static func recordTable(_ index: String) -> String {
        // Index names are lower-case letters, digits and hyphens; no two differ only by '-' versus '_'.
        "rec_" + index.replacingOccurrences(of: "-", with: "_")
    }

    static func decodeRecordIndex(_ row: PostgresRow) throws -> (RecordIndexDescription, generation: Int64) {
        let (name, dimension, metricText, cloud, region, generation) =
            try row.decode((String, Int, String, String, String, Int64).self)
        guard let metric = RecordMetric(rawValue: metricText) else {
            throw StoreError.corrupt("record index \(name) has unknown metric \(metricText)")
        }
        return (RecordIndexDescription(name: name, dimension: dimension, metric: metric, cloud: cloud, region: region), generation)
    }

    static let recordIndexColumns = "name, dimension::int8, metric, cloud, region, generation::int8"

    static func describeRecordIndex(_ conn: PostgresConnection, _ name: String) async throws
        -> (RecordIndexDescription, generation: Int64)?
    {
        var q = SQL("SELECT \(recordIndexColumns) FROM record_index WHERE name = ")
        q.bind(name)
        return try await all(conn, q).first.map(decodeRecordIndex)
    }

    /// A write to one index: its generation bumped first (row lock), then `body`.
    func recordWrite<T: Sendable>(
        _ index: String, _ body: @escaping @Sendable (PostgresConnection, RecordIndexDescription) async throws -> T
    ) async throws -> T {
        try await transaction("BEGIN") { conn in
            var q = SQL("UPDATE record_index SET generation = generation + 1 WHERE name = ")
            q.bind(index)
            q.append(" RETURNING \(Self.recordIndexColumns)")
            guard let row = try await Self.all(conn, q).first else { throw RecordIndexError.unknownIndex(index) }
            return try await body(conn, try Self.decodeRecordIndex(row).0)
        }
    }

    public func createRecordIndex(_ index: RecordIndexDescription) async throws {
        try index.validate()
        guard index.dimension <= 16_000 else {
            throw RecordIndexError.invalidArgument("dimension \(index.dimension) is above pgvector's limit of 16000")
        }
        let table = Self.recordTable(index.name)
        try await transaction("BEGIN") { conn in
            try await Self.run(conn, SQL("SELECT pg_advisory_xact_lock(727274003)"))
            if try await Self.describeRecordIndex(conn, index.name) != nil { throw RecordIndexError.indexExists(index.name) }
            try await Self.run(conn, SQL("DROP TABLE IF EXISTS \(table)"))
            try await Self.run(conn, SQL("""
                CREATE TABLE \(table) (
                    namespace text COLLATE "C" NOT NULL,
                    id text COLLATE "C" NOT NULL,
                    embedding vector(\(index.dimension)) NOT NULL,
                    metadata jsonb,
                    PRIMARY KEY (namespace, id))
                """))
            if index.dimension <= 2000 {
                let ops = ["cosine": "vector_cosine_ops", "euclidean": "vector_l2_ops", "dotproduct": "vector_ip_ops"][index.metric.rawValue]!
                try await Self.run(conn, SQL("CREATE INDEX \(table)_hnsw ON \(table) USING hnsw (embedding \(ops))"))
            }
            var ins = SQL("INSERT INTO record_index (name, dimension, metric, cloud, region, table_name) VALUES (")
            ins.bind(index.name)
            ins.append(", ")
            ins.bind(index.dimension)
            ins.append("::int4, ")
            ins.bind(index.metric.rawValue)
            ins.append(", ")
            ins.bind(index.cloud)
            ins.append(", ")
            ins.bind(index.region)
            ins.append(", ")
            ins.bind(table)
            ins.append(")")
            try await Self.run(conn, ins)
        }
    }

    public func recordIndexes() async throws -> [RecordIndexDescription] {
        try await read { conn in
            try await Self.all(conn, SQL("SELECT \(Self.recordIndexColumns) FROM record_index ORDER BY name"))
                .map { try Self.decodeRecordIndex($0).0 }
        }
    }

    public func recordIndex(named name: String) async throws -> RecordIndexDescription? {
        try await read { conn in try await Self.describeRecordIndex(conn, name)?.0 }
    }

    public func deleteRecordIndex(named name: String) async throws {
        try await transaction("BEGIN") { conn in
            var q = SQL("DELETE FROM record_index WHERE name = ")
            q.bind(name)
            q.append(" RETURNING name")
            guard try await Self.all(conn, q).first != nil else { throw RecordIndexError.unknownIndex(name) }
            try await Self.run(conn, SQL("DROP TABLE IF EXISTS \(Self.recordTable(name))"))
        }
        recordCache.forget(index: name)
    }

    @discardableResult
    public func upsertRecords(_ records: [Record], index: String, namespace: String) async throws -> Int {
        guard !records.isEmpty else { return 0 }
        // The last of a repeated id wins (one statement cannot touch a row twice).
        var last: [String: Int] = [:]
        for (i, r) in records.enumerated() { last[r.id] = i }
        let unique = records.enumerated().filter { last[$0.element.id] == $0.offset }.map(\.element)
        let pending = try unique.map { r -> (Record, String?) in
            try validateRecordID(r.id)
            return (r, try r.metadata.map { String(decoding: try RecordMetadataCoding.encodeChecked($0, id: r.id), as: UTF8.self) })
        }
        try await recordWrite(index) { conn, description in
            for (r, _) in pending { try description.validate(vector: r.values, id: r.id) }
            let table = Self.recordTable(index)
            let perStatement = max(1, min(1000, 16_000_000 / (description.dimension * 4)))
            for start in stride(from: 0, to: pending.count, by: perStatement) {
                var ins = SQL("INSERT INTO \(table) (namespace, id, embedding, metadata) VALUES ")
                let ns = ins.bindPlaceholder(namespace)
                for (i, (r, meta)) in pending[start..<min(pending.count, start + perStatement)].enumerated() {
                    ins.append(i == 0 ? "(\(ns), " : ", (\(ns), ")
                    ins.bind(r.id)
                    ins.append(", ")
                    ins.bind(r.values)
                    ins.append("::real[]::vector, ")
                    ins.bindOptional(meta)
                    ins.append("::jsonb)")
                }
                ins.append(" ON CONFLICT (namespace, id) DO UPDATE SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata")
                try await Self.run(conn, ins)
            }
        }
        return records.count
    }

    @discardableResult
    public func updateRecord(
        index: String, namespace: String, id: String, values: [Float]?, setMetadata: RecordMetadata?
    ) async throws -> Bool {
        try validateRecordID(id)
        return try await recordWrite(index) { conn, description in
            if let values { try description.validate(vector: values, id: id) }
            let table = Self.recordTable(index)
            var q = SQL("SELECT metadata::text FROM \(table) WHERE namespace = ")
            q.bind(namespace)
            q.append(" AND id = ")
            q.bind(id)
            q.append(" FOR UPDATE")
            guard let row = try await Self.all(conn, q).first else { return false }
            var merged = try (try row.decode(String?.self)).map { try RecordMetadataCoding.decode(Data($0.utf8)) }
            if let setMetadata {
                var base = merged ?? [:]
                base.merge(setMetadata) { _, new in new }
                merged = base
            }
            let metaText = try merged.map { String(decoding: try RecordMetadataCoding.encodeChecked($0, id: id), as: UTF8.self) }
            var u = SQL("UPDATE \(table) SET metadata = ")
            u.bindOptional(metaText)
            u.append("::jsonb")
            if let values {
                u.append(", embedding = ")
                u.bind(values)
                u.append("::real[]::vector")
            }
            u.append(" WHERE namespace = ")
            u.bind(namespace)
            u.append(" AND id = ")
            u.bind(id)
            try await Self.run(conn, u)
            return true
        }
    }

    @discardableResult
    public func deleteRecords(index: String, namespace: String, _ selection: RecordSelection) async throws -> Int {
        try await recordWrite(index) { conn, _ in
            let table = Self.recordTable(index)
            var ids: [String]
            switch selection {
            case .all:
                var q = SQL("DELETE FROM \(table) WHERE namespace = ")
                q.bind(namespace)
                q.append(" RETURNING 1")
                return try await Self.all(conn, q).count
            case .ids(let given): ids = Array(Set(given))
            case .matching(let filter):
                var q = SQL("SELECT id, metadata::text FROM \(table) WHERE namespace = ")
                q.bind(namespace)
                ids = []
                for row in try await Self.all(conn, q) {
                    let (id, text) = try row.decode((String, String?).self)
                    if filter.matches(try text.map { try RecordMetadataCoding.decode(Data($0.utf8)) }) { ids.append(id) }
                }
            }
            guard !ids.isEmpty else { return 0 }
            var q = SQL("DELETE FROM \(table) WHERE namespace = ")
            q.bind(namespace)
            q.append(" AND id = ANY(")
            q.bind(ids)
            q.append("::text[]) RETURNING 1")
            return try await Self.all(conn, q).count
        }
    }

    // MARK: Reads

    public func queryRecords(index: String, namespace: String, vector: [Float], query: RecordQuery) async throws
        -> [RecordMatch]
    {
        try StoreError.validateRecordTopK(query.topK)
        return try await search(index: index, namespace: namespace, query: query) { description, _ in
            try description.validate(vector: vector, id: "query")
            return vector
        }
    }

    public func queryRecords(index: String, namespace: String, id: String, query: RecordQuery) async throws
        -> [RecordMatch]
    {
        try StoreError.validateRecordTopK(query.topK)
        return try await search(index: index, namespace: namespace, query: query) { description, conn in
            var q = SQL("SELECT embedding::real[] FROM \(Self.recordTable(index)) WHERE namespace = ")
            q.bind(namespace)
            q.append(" AND id = ")
            q.bind(id)
            return try await Self.all(conn, q).first?.decode([Float].self)
        }
    }

    /// One snapshot: the index, the query vector (nil: no matches), then the approximate or the exact path.
    func search(
        index: String, namespace: String, query: RecordQuery,
        vector: @escaping @Sendable (RecordIndexDescription, PostgresConnection) async throws -> [Float]?
    ) async throws -> [RecordMatch] {
        let cache = recordCache
        let configuration = configuration
        let threads = ExactSearch.defaultThreads
        let counter = self
        return try await readSnapshot { conn in
            guard let (description, generation) = try await Self.describeRecordIndex(conn, index) else {
                throw RecordIndexError.unknownIndex(index)
            }
            guard let q = try await vector(description, conn) else { return [] }
            let table = Self.recordTable(index)
            let key = RecordNamespaceCache.Key(index: index, namespace: namespace)
            if query.filter == nil, configuration.approximateSearch, description.dimension <= 2000,
                cache.lookup(key, generation: generation) == nil
            {
                var c = SQL("SELECT count(*)::int8 FROM \(table) WHERE namespace = ")
                c.bind(namespace)
                let count = try await Self.all(conn, c).first?.decode(Int.self) ?? 0
                if count >= configuration.exactScanBelow {
                    counter.approximateRecordQueries.withLock { $0 += 1 }
                    return try await Self.approximate(conn, description, table: table, namespace: namespace, vector: q,
                                                      query: query, candidates: max(query.topK, configuration.rerankCandidates))
                }
            }
            let loaded: RecordNamespaceIndex
            if let hit = cache.lookup(key, generation: generation) {
                loaded = hit
            } else {
                loaded = try await Self.loadNamespace(conn, description, table: table, namespace: namespace)
                cache.insert(loaded, for: key, generation: generation)
            }
            return loaded.search(q, k: query.topK, filter: query.filter, threads: threads).map { hit in
                RecordMatch(
                    id: loaded.ids[hit.row], score: hit.score, values: query.includeValues ? loaded.vector(row: hit.row) : nil,
                    metadata: query.includeMetadata ? loaded.metadata[hit.row] : nil)
            }
        }
    }

    static func loadNamespace(
        _ conn: PostgresConnection, _ d: RecordIndexDescription, table: String, namespace: String
    ) async throws -> RecordNamespaceIndex {
        var q = SQL("SELECT id, embedding::real[], metadata::text FROM \(table) WHERE namespace = ")
        q.bind(namespace)
        q.append(" ORDER BY id")
        let rows = try await all(conn, q)
        var builder = RecordNamespaceIndex.Builder(dimension: d.dimension, metric: d.metric, expectedRows: rows.count)
        for row in rows {
            let (id, values, text) = try row.decode((String, [Float], String?).self)
            guard values.count == d.dimension else { throw StoreError.corrupt("record \(id) has \(values.count) components") }
            try builder.append(id: id, metadata: try text.map { try RecordMetadataCoding.decode(Data($0.utf8)) }) { dst in
                values.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: d.dimension) }
            }
        }
        return builder.build()
    }

    /// HNSW candidates re-ranked by the exact Float32 score, ties by id.
    static func approximate(
        _ conn: PostgresConnection, _ d: RecordIndexDescription, table: String, namespace: String, vector: [Float],
        query: RecordQuery, candidates: Int
    ) async throws -> [RecordMatch] {
        var q = SQL("")
        let v = q.bindPlaceholder(vector)
        let qv = "\(v)::real[]::vector"
        let (op, score, direction): (String, String, String)
        switch d.metric {
        case .cosine: (op, score, direction) = ("<=>", "(1 - (c.embedding <=> \(qv)))::real", "DESC")
        case .euclidean: (op, score, direction) = ("<->", "vector_l2_squared_distance(c.embedding, \(qv))::real", "ASC")
        case .dotproduct: (op, score, direction) = ("<#>", "(-(c.embedding <#> \(qv)))::real", "DESC")
        }
        let ns = q.bindPlaceholder(namespace)
        let limit = q.bindPlaceholder(candidates)
        let k = q.bindPlaceholder(query.topK)
        q.append("""
            SELECT c.id, \(score) AS score, c.embedding::real[], c.metadata::text FROM (
                SELECT id, embedding, metadata FROM \(table) WHERE namespace = \(ns) ORDER BY embedding \(op) \(qv) LIMIT \(limit)) c
            ORDER BY score \(direction), c.id LIMIT \(k)
            """)
        return try await all(conn, q).map { row in
            let (id, s, values, text) = try row.decode((String, Float, [Float], String?).self)
            return RecordMatch(
                id: id, score: s, values: query.includeValues ? values : nil,
                metadata: query.includeMetadata ? try text.map { try RecordMetadataCoding.decode(Data($0.utf8)) } : nil)
        }
    }

    public func fetchRecords(index: String, namespace: String, ids: [String]) async throws -> [Record] {
        guard !ids.isEmpty else { return [] }
        return try await readSnapshot { conn in
            guard try await Self.describeRecordIndex(conn, index) != nil else { throw RecordIndexError.unknownIndex(index) }
            var q = SQL("SELECT id, embedding::real[], metadata::text FROM \(Self.recordTable(index)) WHERE namespace = ")
            q.bind(namespace)
            q.append(" AND id = ANY(")
            q.bind(ids)
            q.append("::text[])")
            var found: [String: Record] = [:]
            for row in try await Self.all(conn, q) {
                let (id, values, text) = try row.decode((String, [Float], String?).self)
                found[id] = Record(id: id, values: values, metadata: try text.map { try RecordMetadataCoding.decode(Data($0.utf8)) })
            }
            var seen = Set<String>()
            return ids.compactMap { id in seen.insert(id).inserted ? found[id] : nil }
        }
    }

    public func listRecordIDs(index: String, namespace: String, prefix: String, after: String?, limit: Int) async throws
        -> RecordIDPage
    {
        guard limit >= 1 else { throw RecordIndexError.invalidArgument("limit must be at least 1, got \(limit)") }
        return try await readSnapshot { conn in
            guard try await Self.describeRecordIndex(conn, index) != nil else { throw RecordIndexError.unknownIndex(index) }
            var q = SQL("SELECT id FROM \(Self.recordTable(index)) WHERE namespace = ")
            q.bind(namespace)
            q.append(" AND starts_with(id, ")
            q.bind(prefix)
            q.append(")")
            if let after {
                q.append(" AND id > ")
                q.bind(after)
            }
            q.append(" AND id >= ")
            q.bind(prefix)
            q.append(" ORDER BY id LIMIT ")
            q.bind(limit + 1)
            var ids = try await Self.all(conn, q).map { try $0.decode(String.self) }
            let more = ids.count > limit
            if more { ids.removeLast() }
            return RecordIDPage(ids: ids, continueAfter: more ? ids.last : nil)
        }
    }

    public func recordCounts(index: String, filter: MetadataFilter?) async throws -> [String: Int] {
        try await readSnapshot { conn in
            guard try await Self.describeRecordIndex(conn, index) != nil else { throw RecordIndexError.unknownIndex(index) }
            let table = Self.recordTable(index)
            var counts: [String: Int] = [:]
            if let filter {
                for row in try await Self.all(conn, SQL("SELECT namespace, metadata::text FROM \(table)")) {
                    let (ns, text) = try row.decode((String, String?).self)
                    let passes = filter.matches(try text.map { try RecordMetadataCoding.decode(Data($0.utf8)) })
                    counts[ns, default: 0] += passes ? 1 : 0
                }
            } else {
                for row in try await Self.all(conn, SQL("SELECT namespace, count(*)::int8 FROM \(table) GROUP BY namespace")) {
                    let (ns, n) = try row.decode((String, Int).self)
                    counts[ns] = n
                }
            }
            return counts
        }
    }
}
