import Foundation
import GRDB
import PosterSimCore

/// Namespaces of record indexes loaded into memory for search, each tagged with the generation of its index when it
/// was loaded. Every write to an index bumps the index's generation in the same transaction, so a reader that finds
/// the generation it read in its transaction here uses the copy, and otherwise loads the namespace again in that
/// same transaction: it never sees a namespace older or newer than its snapshot.
public final class RecordNamespaceCache: Sendable {
    public struct Key: Hashable, Sendable {
        public var index: String
        public var namespace: String

        public init(index: String, namespace: String) {
            self.index = index
            self.namespace = namespace
        }
    }

    public init() {}

    private let entries = Locked<[Key: (generation: Int64, namespace: RecordNamespaceIndex)]>([:])

    public func lookup(_ key: Key, generation: Int64) -> RecordNamespaceIndex? {
        entries.update { table in
            guard let hit = table[key], hit.generation == generation else { return nil }
            return hit.namespace
        }
    }

    public func insert(_ namespace: RecordNamespaceIndex, for key: Key, generation: Int64) {
        let replaced = entries.update { table -> [RecordNamespaceIndex] in
            // Older generations of the same index are dead: drop them with this insert.
            let stale = table.filter { $0.key.index == key.index && $0.value.generation < generation }
            for k in stale.keys { table[k] = nil }
            if let current = table[key], current.generation > generation { return stale.values.map(\.namespace) }
            table[key] = (generation, namespace)
            return stale.values.map(\.namespace)
        }
        withExtendedLifetime(replaced) {}  // released outside the lock
    }

    public func forget(index: String) {
        let dropped = entries.update { table -> [RecordNamespaceIndex] in
            let gone = table.filter { $0.key.index == index }
            for k in gone.keys { table[k] = nil }
            return gone.values.map(\.namespace)
        }
        withExtendedLifetime(dropped) {}
    }
}

/// The `RecordIndexStore` of the SQLite file: tables `record_index` and `record` (migration "v4: pinecone indexes"),
/// each call one transaction; queries scan an in-memory copy of the namespace (`RecordNamespaceIndex`) exactly.
extension SQLiteVectorStore: RecordIndexStore {
    static func createRecordTables(_ db: Database) throws {
        // Ids compare as bytes (SQLite's BINARY collation): the order of `list` and of score ties.
        try db.execute(
            sql: """
                CREATE TABLE record_index (
                    name TEXT PRIMARY KEY NOT NULL,
                    dimension INTEGER NOT NULL CHECK (dimension > 0),
                    metric TEXT NOT NULL CHECK (metric IN ('cosine', 'euclidean', 'dotproduct')),
                    cloud TEXT NOT NULL,
                    region TEXT NOT NULL,
                    generation INTEGER NOT NULL DEFAULT 0
                );
                CREATE TABLE record (
                    index_name TEXT NOT NULL REFERENCES record_index(name) ON DELETE CASCADE,
                    namespace TEXT NOT NULL,
                    id TEXT NOT NULL,
                    vector BLOB NOT NULL,
                    metadata TEXT,
                    PRIMARY KEY (index_name, namespace, id)
                );
                """)
    }

    // MARK: Indexes

    public func createRecordIndex(_ index: RecordIndexDescription) async throws {
        try index.validate()
        try await recordWrite { db in
            if try Self.describeRecordIndex(db, index.name) != nil { throw RecordIndexError.indexExists(index.name) }
            try db.execute(
                sql: "INSERT INTO record_index (name, dimension, metric, cloud, region) VALUES (?, ?, ?, ?, ?)",
                arguments: [index.name, index.dimension, index.metric.rawValue, index.cloud, index.region])
        }
    }

    public func recordIndexes() async throws -> [RecordIndexDescription] {
        try await recordRead { db in
            try Row.fetchAll(db, sql: "SELECT name, dimension, metric, cloud, region FROM record_index ORDER BY name")
                .map(Self.recordIndex(from:))
        }
    }

    public func recordIndex(named name: String) async throws -> RecordIndexDescription? {
        try await recordRead { db in try Self.describeRecordIndex(db, name) }
    }

    public func deleteRecordIndex(named name: String) async throws {
        try await recordWrite { db in
            try db.execute(sql: "DELETE FROM record_index WHERE name = ?", arguments: [name])
            guard db.changesCount > 0 else { throw RecordIndexError.unknownIndex(name) }
        }
        recordCache.forget(index: name)
    }

    // MARK: Writes

    @discardableResult
    public func upsertRecords(_ records: [Record], index: String, namespace: String) async throws -> Int {
        guard !records.isEmpty else { return 0 }
        return try await recordWrite { db in
            let description = try Self.requireRecordIndex(db, index)
            // Everything is checked before the first row is written (the transaction would undo it anyway).
            var rows: [(id: String, vector: Data, metadata: String?)] = []
            rows.reserveCapacity(records.count)
            for record in records {
                try validateRecordID(record.id)
                try description.validate(vector: record.values, id: record.id)
                let metadata = try record.metadata.map {
                    String(decoding: try RecordMetadataCoding.encodeChecked($0, id: record.id), as: UTF8.self)
                }
                rows.append((record.id, VectorBlob.encode(record.values), metadata))
            }
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO record (index_name, namespace, id, vector, metadata) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (index_name, namespace, id) DO UPDATE SET vector = excluded.vector, metadata = excluded.metadata
                    """)
            for row in rows {
                try statement.execute(arguments: [index, namespace, row.id, row.vector, row.metadata])
            }
            try Self.bumpGeneration(db, index)
            return records.count
        }
    }

    @discardableResult
    public func updateRecord(
        index: String, namespace: String, id: String, values: [Float]?, setMetadata: RecordMetadata?
    ) async throws -> Bool {
        try validateRecordID(id)
        return try await recordWrite { db in
            let description = try Self.requireRecordIndex(db, index)
            if let values { try description.validate(vector: values, id: id) }
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT metadata FROM record WHERE index_name = ? AND namespace = ? AND id = ?",
                    arguments: [index, namespace, id])
            else { return false }
            if let values {
                try db.execute(
                    sql: "UPDATE record SET vector = ? WHERE index_name = ? AND namespace = ? AND id = ?",
                    arguments: [VectorBlob.encode(values), index, namespace, id])
            }
            if let setMetadata {
                var merged = try (row["metadata"] as String?).map { try RecordMetadataCoding.decode(Data($0.utf8)) } ?? [:]
                merged.merge(setMetadata) { _, new in new }
                let text = String(decoding: try RecordMetadataCoding.encodeChecked(merged, id: id), as: UTF8.self)
                try db.execute(
                    sql: "UPDATE record SET metadata = ? WHERE index_name = ? AND namespace = ? AND id = ?",
                    arguments: [text, index, namespace, id])
            }
            try Self.bumpGeneration(db, index)
            return true
        }
    }

    @discardableResult
    public func deleteRecords(index: String, namespace: String, _ selection: RecordSelection) async throws -> Int {
        try await recordWrite { db in
            _ = try Self.requireRecordIndex(db, index)
            var deleted = 0
            switch selection {
            case .all:
                try db.execute(
                    sql: "DELETE FROM record WHERE index_name = ? AND namespace = ?", arguments: [index, namespace])
                deleted = db.changesCount
            case .ids(let ids):
                deleted = try Self.deleteIDs(db, index: index, namespace: namespace, ids: ids)
            case .matching(let filter):
                var doomed: [String] = []
                let rows = try Row.fetchCursor(
                    db, sql: "SELECT id, metadata FROM record WHERE index_name = ? AND namespace = ?",
                    arguments: [index, namespace])
                while let row = try rows.next() {
                    if filter.matches(try Self.metadata(of: row)) { doomed.append(row["id"]) }
                }
                deleted = try Self.deleteIDs(db, index: index, namespace: namespace, ids: doomed)
            }
            if deleted > 0 { try Self.bumpGeneration(db, index) }
            return deleted
        }
    }

    static func deleteIDs(_ db: Database, index: String, namespace: String, ids: [String]) throws -> Int {
        let statement = try db.cachedStatement(sql: "DELETE FROM record WHERE index_name = ? AND namespace = ? AND id = ?")
        var deleted = 0
        for id in Set(ids) {
            try statement.execute(arguments: [index, namespace, id])
            deleted += db.changesCount
        }
        return deleted
    }

    // MARK: Reads

    public func queryRecords(index: String, namespace: String, vector: [Float], query: RecordQuery) async throws
        -> [RecordMatch]
    {
        try StoreError.validateRecordTopK(query.topK)
        let (description, loaded) = try await loadNamespace(index: index, namespace: namespace)
        try description.validate(vector: vector, id: "query")
        return Self.matches(in: loaded, vector: vector, query: query, threads: searchThreads)
    }

    public func queryRecords(index: String, namespace: String, id: String, query: RecordQuery) async throws
        -> [RecordMatch]
    {
        try StoreError.validateRecordTopK(query.topK)
        let (_, loaded) = try await loadNamespace(index: index, namespace: namespace)
        guard let row = loaded.rowOfID[id] else { return [] }
        return Self.matches(in: loaded, vector: loaded.vector(row: row), query: query, threads: searchThreads)
    }

    static func matches(in loaded: RecordNamespaceIndex, vector: [Float], query: RecordQuery, threads: Int)
        -> [RecordMatch]
    {
        loaded.search(vector, k: query.topK, filter: query.filter, threads: threads).map { hit in
            RecordMatch(
                id: loaded.ids[hit.row], score: hit.score,
                values: query.includeValues ? loaded.vector(row: hit.row) : nil,
                metadata: query.includeMetadata ? loaded.metadata[hit.row] : nil)
        }
    }

    public func fetchRecords(index: String, namespace: String, ids: [String]) async throws -> [Record] {
        try await recordRead { db in
            let description = try Self.requireRecordIndex(db, index)
            let statement = try db.cachedStatement(
                sql: "SELECT vector, metadata FROM record WHERE index_name = ? AND namespace = ? AND id = ?")
            var out: [Record] = []
            var seen = Set<String>()
            for id in ids where seen.insert(id).inserted {
                guard let row = try Row.fetchOne(statement, arguments: [index, namespace, id]) else { continue }
                let vector = try VectorBlob.decode(
                    row["vector"], dimension: description.dimension, space: index, id: 0)
                out.append(Record(id: id, values: vector, metadata: try Self.metadata(of: row)))
            }
            return out
        }
    }

    public func listRecordIDs(index: String, namespace: String, prefix: String, after: String?, limit: Int) async throws
        -> RecordIDPage
    {
        guard limit >= 1 else { throw RecordIndexError.invalidArgument("limit must be at least 1, got \(limit)") }
        return try await recordRead { db in
            _ = try Self.requireRecordIndex(db, index)
            // Start at the prefix or after the last id served, whichever is later; stop at the first id past the
            // prefix (ids are in byte order, so those with the prefix are contiguous).
            var start = prefix
            var inclusive = true
            if let after, !recordIDPrecedes(after, prefix) {
                start = after
                inclusive = false
            }
            let rows = try String.fetchCursor(
                db,
                sql: "SELECT id FROM record WHERE index_name = ? AND namespace = ? AND id \(inclusive ? ">=" : ">") ? ORDER BY id",
                arguments: [index, namespace, start])
            var ids: [String] = []
            var more = false
            while let id = try rows.next() {
                guard id.utf8.starts(with: prefix.utf8) else { break }
                if ids.count == limit {
                    more = true
                    break
                }
                ids.append(id)
            }
            return RecordIDPage(ids: ids, continueAfter: more ? ids.last : nil)
        }
    }

    public func recordCounts(index: String, filter: MetadataFilter?) async throws -> [String: Int] {
        try await recordRead { db in
            _ = try Self.requireRecordIndex(db, index)
            var counts: [String: Int] = [:]
            if let filter {
                let rows = try Row.fetchCursor(
                    db, sql: "SELECT namespace, metadata FROM record WHERE index_name = ?", arguments: [index])
                while let row = try rows.next() {
                    if filter.matches(try Self.metadata(of: row)) { counts[row["namespace"], default: 0] += 1 }
                }
                // Namespaces with no passing record still exist.
                for ns in try String.fetchAll(
                    db, sql: "SELECT DISTINCT namespace FROM record WHERE index_name = ?", arguments: [index])
                where counts[ns] == nil {
                    counts[ns] = 0
                }
            } else {
                for row in try Row.fetchAll(
                    db, sql: "SELECT namespace, COUNT(*) AS n FROM record WHERE index_name = ? GROUP BY namespace",
                    arguments: [index])
                {
                    counts[row["namespace"]] = row["n"]
                }
            }
            return counts
        }
    }

    // MARK: Helpers

    /// The index's description and its namespace in memory, both as of one read transaction.
    func loadNamespace(index: String, namespace: String) async throws -> (RecordIndexDescription, RecordNamespaceIndex) {
        let cache = recordCache
        return try await recordRead { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT name, dimension, metric, cloud, region, generation FROM record_index WHERE name = ?",
                    arguments: [index])
            else { throw RecordIndexError.unknownIndex(index) }
            let description = try Self.recordIndex(from: row)
            let generation: Int64 = row["generation"]
            let key = RecordNamespaceCache.Key(index: index, namespace: namespace)
            if let hit = cache.lookup(key, generation: generation) { return (description, hit) }
            let count = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM record WHERE index_name = ? AND namespace = ?", arguments: [index, namespace]) ?? 0
            var builder = RecordNamespaceIndex.Builder(
                dimension: description.dimension, metric: description.metric, expectedRows: count)
            let rows = try Row.fetchCursor(
                db, sql: "SELECT id, vector, metadata FROM record WHERE index_name = ? AND namespace = ? ORDER BY id",
                arguments: [index, namespace])
            while let row = try rows.next() {
                let id: String = row["id"]
                let blob: Data = row["vector"]
                try builder.append(id: id, metadata: try Self.metadata(of: row)) { dst in
                    try VectorBlob.decode(blob, into: dst, dimension: description.dimension, space: index, id: 0)
                }
            }
            let loaded = builder.build()
            cache.insert(loaded, for: key, generation: generation)
            return (description, loaded)
        }
    }

    static func metadata(of row: Row) throws -> RecordMetadata? {
        guard let text: String = row["metadata"] else { return nil }
        return try RecordMetadataCoding.decode(Data(text.utf8))
    }

    static func bumpGeneration(_ db: Database, _ index: String) throws {
        try db.execute(sql: "UPDATE record_index SET generation = generation + 1 WHERE name = ?", arguments: [index])
    }

    static func describeRecordIndex(_ db: Database, _ name: String) throws -> RecordIndexDescription? {
        try Row.fetchOne(db, sql: "SELECT name, dimension, metric, cloud, region FROM record_index WHERE name = ?", arguments: [name])
            .map(recordIndex(from:))
    }

    static func requireRecordIndex(_ db: Database, _ name: String) throws -> RecordIndexDescription {
        guard let found = try describeRecordIndex(db, name) else { throw RecordIndexError.unknownIndex(name) }
        return found
    }

    static func recordIndex(from row: Row) throws -> RecordIndexDescription {
        let metricText: String = row["metric"]
        guard let metric = RecordMetric(rawValue: metricText) else {
            throw StoreError.corrupt("record index has unknown metric '\(metricText)'")
        }
        return RecordIndexDescription(
            name: row["name"], dimension: row["dimension"], metric: metric, cloud: row["cloud"], region: row["region"])
    }

    /// A write transaction whose typed errors pass through unchanged.
    func recordWrite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await Self.passingTypedErrors { try await pool.write(body) }
    }

    func recordRead<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await Self.passingTypedErrors { try await pool.read(body) }
    }

    /// Runs `body`, letting `RecordIndexError` and `StoreError` through and wrapping anything else (GRDB's errors) as
    /// `StoreError.database`.
    private static func passingTypedErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as RecordIndexError {
            throw error
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.database("\(error)")
        }
    }
}

extension StoreError {
    /// Throws `invalidArgument` unless 1 ≤ k ≤ 10,000 (Pinecone's `top_k` range).
    public static func validateRecordTopK(_ k: Int) throws {
        guard k >= 1, k <= RecordLimits.maxTopK else {
            throw RecordIndexError.invalidArgument("top_k must be between 1 and \(RecordLimits.maxTopK), got \(k)")
        }
    }
}
