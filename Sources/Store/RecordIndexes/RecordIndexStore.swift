import Foundation
import PosterSimCore

/// How an index compares vectors, with Pinecone's names and scores: `cosine` similarity (higher is closer),
/// `euclidean` as the squared distance (lower is closer), `dotproduct` (higher is closer).
public enum RecordMetric: String, Sendable, Codable, CaseIterable, Hashable {
    case cosine
    case euclidean
    case dotproduct

    public var higherIsCloser: Bool { self != .euclidean }
}

/// A user's index: a name, a fixed dimension and metric, and where the client said it should run (kept and echoed,
/// it changes nothing here).
public struct RecordIndexDescription: Sendable, Hashable, Codable {
    public var name: String
    public var dimension: Int
    public var metric: RecordMetric
    public var cloud: String
    public var region: String

    public init(name: String, dimension: Int, metric: RecordMetric, cloud: String = "aws", region: String = "us-east-1") {
        self.name = name
        self.dimension = dimension
        self.metric = metric
        self.cloud = cloud
        self.region = region
    }

    /// Throws unless the name is 1–45 lower-case letters, digits and hyphens, not starting or ending with a hyphen,
    /// and the dimension is 1...20,000 (Pinecone's rules).
    public func validate() throws {
        let okChars = name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        guard !name.isEmpty, name.count <= RecordLimits.maxIndexNameLength, okChars, !name.hasPrefix("-"),
            !name.hasSuffix("-")
        else {
            throw RecordIndexError.invalidArgument(
                "Name must consist of lower case alphanumeric characters or '-', start and end with an alphanumeric "
                    + "character, and be at most \(RecordLimits.maxIndexNameLength) characters long")
        }
        guard dimension >= 1, dimension <= RecordLimits.maxDimension else {
            throw RecordIndexError.invalidArgument(
                "dimension must be between 1 and \(RecordLimits.maxDimension), got \(dimension)")
        }
    }
}

/// One record: a string id, a dense vector and optional metadata.
public struct Record: Sendable, Hashable {
    public var id: String
    public var values: [Float]
    public var metadata: RecordMetadata?

    public init(id: String, values: [Float], metadata: RecordMetadata? = nil) {
        self.id = id
        self.values = values
        self.metadata = metadata
    }
}

/// One query result. `values` and `metadata` are filled only when asked for.
public struct RecordMatch: Sendable, Hashable {
    public var id: String
    public var score: Float
    public var values: [Float]?
    public var metadata: RecordMetadata?

    public init(id: String, score: Float, values: [Float]? = nil, metadata: RecordMetadata? = nil) {
        self.id = id
        self.score = score
        self.values = values
        self.metadata = metadata
    }
}

/// What a query asks besides its vector.
public struct RecordQuery: Sendable {
    public var topK: Int
    public var filter: MetadataFilter?
    public var includeValues: Bool
    public var includeMetadata: Bool

    public init(topK: Int, filter: MetadataFilter? = nil, includeValues: Bool = false, includeMetadata: Bool = false) {
        self.topK = topK
        self.filter = filter
        self.includeValues = includeValues
        self.includeMetadata = includeMetadata
    }
}

/// Which records a delete removes.
public enum RecordSelection: Sendable {
    case ids([String])
    case all
    case matching(MetadataFilter)
}

/// One page of ids in ascending order (UTF-8 byte order), and the id to continue after when there are more.
public struct RecordIDPage: Sendable, Hashable {
    public var ids: [String]
    public var continueAfter: String?

    public init(ids: [String], continueAfter: String?) {
        self.ids = ids
        self.continueAfter = continueAfter
    }
}

/// Errors of a `RecordIndexStore`. The HTTP API maps them to Pinecone's statuses (400, 404, 409).
public enum RecordIndexError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownIndex(String)
    case indexExists(String)
    /// Bad input: wrong dimension, bad id, metadata or filter, a limit exceeded.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .unknownIndex(let name): return "Resource \(name) not found"
        case .indexExists(let name): return "Resource \(name) already exists"
        case .invalidArgument(let why): return why
        }
    }
}

/// Users' vector indexes, Pinecone-style, kept in the same store as the movies but apart from the movie spaces
/// (`VectorStore`): their own tables, names, ids and metadata.
///
/// Guarantees every implementation gives:
/// - **One transaction per call.** Each mutating call takes effect completely or not at all; a call that throws
///   (a bad vector anywhere in an upsert batch, say) leaves the index as it was. Every input is checked before
///   anything is written.
/// - **Snapshot reads.** A query, fetch, list or stats call sees the index after some set of completed writes, never
///   part of one; a read that starts after a write returned sees it.
/// - **Exact search.** `query` returns the exact top-k under the index's metric among the namespace's records that
///   pass the filter (a server store may use an ANN index for unfiltered queries and re-rank its candidates exactly;
///   it documents its recall). Scores are Pinecone's: cosine similarity, squared euclidean distance, dot product.
///   Ties are broken by ascending id (UTF-8 byte order).
/// - **Validation.** Ids are 1–512 UTF-8 bytes; vectors have the index's dimension and finite components (and a
///   non-zero norm under cosine); metadata is as `MetadataValue` allows and at most 40 KB per record.
/// - **Durability.** Indexes and records survive a restart.
/// Namespaces exist while they hold records; `""` is the default one.
public protocol RecordIndexStore: Sendable {
    /// Creates an index; throws `indexExists` if the name is taken, `invalidArgument` for a bad name or dimension.
    func createRecordIndex(_ index: RecordIndexDescription) async throws

    /// Every index, by name.
    func recordIndexes() async throws -> [RecordIndexDescription]

    /// The index with this name, or nil.
    func recordIndex(named name: String) async throws -> RecordIndexDescription?

    /// Deletes an index and all its records; throws `unknownIndex` if there is none.
    func deleteRecordIndex(named name: String) async throws

    /// Inserts or replaces records (whole records: a replaced record's old metadata is gone). Ids repeated within
    /// `records` count once, the last wins. Returns how many records were given.
    @discardableResult
    func upsertRecords(_ records: [Record], index: String, namespace: String) async throws -> Int

    /// The best `query.topK` records for `vector`.
    func queryRecords(index: String, namespace: String, vector: [Float], query: RecordQuery) async throws -> [RecordMatch]

    /// The best records for the stored vector of record `id` (the record itself included, when it passes the
    /// filter). An unknown id gives no matches, as in Pinecone.
    func queryRecords(index: String, namespace: String, id: String, query: RecordQuery) async throws -> [RecordMatch]

    /// The records with these ids that exist (values and metadata), in the order of `ids`.
    func fetchRecords(index: String, namespace: String, ids: [String]) async throws -> [Record]

    /// Changes one record's vector and/or merges `setMetadata` into its metadata (given keys replace, others stay).
    /// Returns false, changing nothing, when the record does not exist.
    @discardableResult
    func updateRecord(index: String, namespace: String, id: String, values: [Float]?, setMetadata: RecordMetadata?)
        async throws -> Bool

    /// Deletes the selected records of a namespace; returns how many were deleted.
    @discardableResult
    func deleteRecords(index: String, namespace: String, _ selection: RecordSelection) async throws -> Int

    /// Ids of a namespace in ascending order that start with `prefix` and come after `after`, at most `limit`.
    func listRecordIDs(index: String, namespace: String, prefix: String, after: String?, limit: Int) async throws
        -> RecordIDPage

    /// Records per namespace (only namespaces that hold records), counting those passing `filter` when given.
    func recordCounts(index: String, filter: MetadataFilter?) async throws -> [String: Int]
}

extension RecordIndexDescription {
    /// The vector space a record's vector is checked against (`VectorSpace.validate`, the one vector validation).
    var space: VectorSpace {
        VectorSpace(name: name, dimension: dimension, metric: metric == .euclidean ? .euclidean : .cosine)
    }

    /// Throws `invalidArgument` for a vector this index cannot hold.
    public func validate(vector: [Float], id: String) throws {
        guard vector.count == dimension else {
            throw RecordIndexError.invalidArgument(
                "Vector dimension \(vector.count) does not match the dimension of the index \(dimension)")
        }
        // A zero vector is fine for the dot product and euclidean metrics; only cosine needs a norm.
        let checked = metric == .cosine ? self.space : VectorSpace(name: name, dimension: dimension, metric: .euclidean)
        do {
            try checked.validate(vector)
        } catch let error as StoreError {
            throw RecordIndexError.invalidArgument("vector '\(id.prefix(64))': \(error)")
        }
    }
}

/// Checks a record id: 1–512 UTF-8 bytes, no NUL.
public func validateRecordID(_ id: String) throws {
    let bytes = id.utf8.count
    guard bytes >= 1, bytes <= RecordLimits.maxIDBytes else {
        throw RecordIndexError.invalidArgument(
            "Vector ID must be between 1 and \(RecordLimits.maxIDBytes) bytes long, got \(bytes) bytes")
    }
    guard !id.utf8.contains(0) else { throw RecordIndexError.invalidArgument("Vector ID must not contain NUL") }
}

/// UTF-8 byte order of ids: the order of `list`, and of ties in `query`.
@inlinable
public func recordIDPrecedes(_ a: String, _ b: String) -> Bool {
    a.utf8.lexicographicallyPrecedes(b.utf8)
}
