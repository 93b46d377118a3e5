import Foundation
import PosterSimCore

/// One namespace of a record index in memory, for exact search: its vectors as one matrix (rows in ascending id
/// order, so the row number breaks score ties exactly as the id does), their inverse norms, ids and parsed metadata.
/// Immutable once built; queries share it without locks.
public final class RecordNamespaceIndex: Sendable {
    public let dimension: Int
    public let metric: RecordMetric
    public let ids: [String]
    public let metadata: [RecordMetadata?]
    public let rowOfID: [String: Int]
    private let storage: MatrixStorage
    private let inverseNorms: [Float]
    private let rowNumbers: [Int64]

    public var count: Int { ids.count }

    private init(
        dimension: Int, metric: RecordMetric, ids: [String], metadata: [RecordMetadata?], storage: MatrixStorage,
        inverseNorms: [Float]
    ) {
        self.dimension = dimension
        self.metric = metric
        self.ids = ids
        self.metadata = metadata
        self.storage = storage
        self.inverseNorms = inverseNorms
        rowNumbers = (0..<Int64(ids.count)).map { $0 }
        rowOfID = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0) })
    }

    /// Fills a namespace row by row, straight into its matrix (a million 512-d rows never exist as Swift arrays).
    /// Rows must come in strictly ascending id order (SQL `ORDER BY id` under a byte-wise collation).
    public struct Builder {
        public let dimension: Int
        public let metric: RecordMetric
        private var storage: MatrixStorage
        private var ids: [String] = []
        private var metadata: [RecordMetadata?] = []
        private var norms: [Float] = []

        public init(dimension: Int, metric: RecordMetric, expectedRows: Int) {
            self.dimension = dimension
            self.metric = metric
            storage = MatrixStorage(dimension: dimension, capacityRows: max(1, expectedRows))
            ids.reserveCapacity(expectedRows)
            metadata.reserveCapacity(expectedRows)
            norms.reserveCapacity(expectedRows)
        }

        /// Appends one row; `fill` writes its `dimension` floats.
        public mutating func append(id: String, metadata meta: RecordMetadata?, fill: (UnsafeMutablePointer<Float>) throws -> Void)
            throws
        {
            if let last = ids.last, !recordIDPrecedes(last, id) {
                throw StoreError.corrupt("record ids out of order: '\(last.prefix(64))' before '\(id.prefix(64))'")
            }
            let row = ids.count
            if row >= storage.capacityRows {
                let bigger = MatrixStorage(dimension: dimension, capacityRows: max(64, storage.capacityRows * 2))
                bigger.base.update(from: storage.base, count: row * dimension)
                storage = bigger
            }
            let dst = storage.row(row)
            try fill(dst)
            norms.append(metric == .cosine ? SpaceIndex.inverseNorm(dst, dimension: dimension) : 1)
            ids.append(id)
            metadata.append(meta)
        }

        public func build() -> RecordNamespaceIndex {
            RecordNamespaceIndex(
                dimension: dimension, metric: metric, ids: ids, metadata: metadata, storage: storage, inverseNorms: norms)
        }
    }

    public func vector(row: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: storage.row(row), count: dimension))
    }

    /// The exact top-k rows (best first, ties by id) that pass `filter`, with Pinecone's scores.
    public func search(_ query: [Float], k: Int, filter: MetadataFilter?, threads: Int) -> [(row: Int, score: Float)] {
        guard count > 0 else { return [] }
        let metadata = self.metadata
        var accept: (@Sendable (Int) -> Bool)?
        if let filter {
            accept = { @Sendable row in filter.matches(metadata[row]) }
        }
        // ExactSearch knows cosine (dot product times both inverse norms) and squared euclidean; the dot product is
        // its cosine path without norms (the query's own scale is only applied with row norms).
        let scanMetric: DistanceMetric = metric == .euclidean ? .euclidean : .cosine
        let matches = query.withUnsafeBufferPointer { q in
            inverseNorms.withUnsafeBufferPointer { norms in
                rowNumbers.withUnsafeBufferPointer { rows in
                    ExactSearch.topK(
                        matrix: storage.base, rows: count, dimension: dimension, metric: scanMetric,
                        inverseNorms: metric == .cosine ? norms.baseAddress : nil, ids: rows.baseAddress!,
                        query: q.baseAddress!, k: k, maxThreads: threads, accept: accept)
                }
            }
        }
        return matches.map { (row: Int($0.movieID), score: $0.score) }
    }
}
