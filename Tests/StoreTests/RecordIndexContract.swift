import Foundation
import PosterSimCore
import TestSupport
import Testing
import PostgresStore

@testable import Store

/// The behaviour every `RecordIndexStore` must have (see the protocol), run on both stores like `VectorStoreContract`.
/// Exactness is checked against a brute force in Double written here.
struct RecordIndexContract: Sendable {
    typealias Factory = @Sendable () async throws -> (store: any RecordIndexStore, reopen: @Sendable () async throws -> any RecordIndexStore)
    let makeStore: Factory

    static func index(_ name: String, _ dimension: Int, _ metric: RecordMetric) -> RecordIndexDescription {
        RecordIndexDescription(name: name, dimension: dimension, metric: metric)
    }

    /// The exact answer: score every passing record in Double, best first, ties by id bytes.
    static func bruteForce(_ records: [Record], _ q: [Float], k: Int, metric: RecordMetric, filter: MetadataFilter?)
        -> [(id: String, score: Double)]
    {
        let scored = records.filter { filter?.matches($0.metadata) ?? true }.map { r -> (String, Double) in
            let dot = zip(r.values, q).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            switch metric {
            case .dotproduct: return (r.id, dot)
            case .euclidean: return (r.id, zip(r.values, q).reduce(0.0) { $0 + pow(Double($1.0) - Double($1.1), 2) })
            case .cosine:
                let nr = r.values.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                let nq = q.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                return (r.id, dot / (nr * nq))
            }
        }
        return scored.sorted { a, b in
            if a.1 != b.1 { return metric.higherIsCloser ? a.1 > b.1 : a.1 < b.1 }
            return recordIDPrecedes(a.0, b.0)
        }.prefix(k).map { ($0.0, $0.1) }
    }

    static func randomRecords(_ n: Int, dimension: Int, rng: inout SplitMix64) -> [Record] {
        let genres = ["drama", "comedy", "horror"]
        return (0..<n).map { i in
            let values = (0..<dimension).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
            var meta: RecordMetadata = ["genre": .string(genres[i % 3]), "year": .number(Double(1990 + i % 30))]
            if i % 4 == 0 { meta["tags"] = .strings(["a", genres[(i + 1) % 3]]) }
            return Record(id: "r\(String(format: "%05d", (i * 7919) % n))-\(i)", values: values, metadata: meta)
        }
    }

    func createListDescribeDelete() async throws {
        let (store, _) = try await makeStore()
        try await store.createRecordIndex(Self.index("alpha", 4, .cosine))
        try await store.createRecordIndex(Self.index("beta-2", 3, .dotproduct))
        await #expect(throws: RecordIndexError.indexExists("alpha")) {
            try await store.createRecordIndex(Self.index("alpha", 9, .euclidean))
        }
        for bad in ["", "Upper", "under_score", "-lead", "trail-", String(repeating: "a", count: 46)] {
            await #expect(throws: RecordIndexError.self) { try await store.createRecordIndex(Self.index(bad, 4, .cosine)) }
        }
        await #expect(throws: RecordIndexError.self) { try await store.createRecordIndex(Self.index("wide", 20_001, .cosine)) }
        #expect(try await store.recordIndexes().map(\.name) == ["alpha", "beta-2"])
        #expect(try await store.recordIndex(named: "beta-2") == Self.index("beta-2", 3, .dotproduct))
        #expect(try await store.recordIndex(named: "gamma") == nil)
        try await store.upsertRecords([Record(id: "x", values: [1, 0, 0, 0])], index: "alpha", namespace: "")
        try await store.deleteRecordIndex(named: "alpha")
        await #expect(throws: RecordIndexError.unknownIndex("alpha")) { try await store.deleteRecordIndex(named: "alpha") }
        await #expect(throws: RecordIndexError.unknownIndex("alpha")) {
            try await store.queryRecords(index: "alpha", namespace: "", vector: [1, 0, 0, 0], query: RecordQuery(topK: 1))
        }
        // A new index of the same name starts empty.
        try await store.createRecordIndex(Self.index("alpha", 4, .cosine))
        #expect(try await store.recordCounts(index: "alpha", filter: nil).isEmpty)
    }

    func queriesAreExact() async throws {
        let (store, _) = try await makeStore()
        var rng = SplitMix64(seed: 7)
        for metric in RecordMetric.allCases {
            let name = "exact-\(metric.rawValue)"
            try await store.createRecordIndex(Self.index(name, 16, metric))
            var records = Self.randomRecords(600, dimension: 16, rng: &rng)
            records[11].values = records[10].values  // an exact tie
            for start in stride(from: 0, to: records.count, by: 200) {
                try await store.upsertRecords(Array(records[start..<min(records.count, start + 200)]), index: name, namespace: "ns")
            }
            let filters: [MetadataFilter?] = [
                nil, try MetadataFilter(json: .object(["genre": .string("drama")])),
                try MetadataFilter(json: .object(["year": .object(["$gte": .number(2010)]), "tags": .string("a")])),
            ]
            for filter in filters {
                for k in [1, 10, 250] {
                    let q = (0..<16).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
                    let got = try await store.queryRecords(
                        index: name, namespace: "ns", vector: q, query: RecordQuery(topK: k, filter: filter, includeValues: true, includeMetadata: true))
                    let want = Self.bruteForce(records, q, k: k, metric: metric, filter: filter)
                    #expect(got.map(\.id) == want.map(\.id), "\(metric) k=\(k) filter=\(String(describing: filter))")
                    for (g, w) in zip(got, want) {
                        #expect(abs(Double(g.score) - w.score) <= 1e-4 * max(1, abs(w.score)))
                        let source = records.first { $0.id == g.id }!
                        #expect(g.values == source.values && g.metadata == source.metadata)
                    }
                }
            }
            // Ties go by id, and a query by id equals one by its vector.
            let tie = try await store.queryRecords(index: name, namespace: "ns", vector: records[10].values, query: RecordQuery(topK: 600))
            let a = tie.firstIndex { $0.id == records[10].id }!, b = tie.firstIndex { $0.id == records[11].id }!
            #expect((a < b) == recordIDPrecedes(records[10].id, records[11].id))
            let byID = try await store.queryRecords(index: name, namespace: "ns", id: records[3].id, query: RecordQuery(topK: 5))
            let byVector = try await store.queryRecords(index: name, namespace: "ns", vector: records[3].values, query: RecordQuery(topK: 5))
            #expect(byID == byVector)
            #expect(try await store.queryRecords(index: name, namespace: "ns", id: "absent", query: RecordQuery(topK: 5)).isEmpty)
            #expect(try await store.queryRecords(index: name, namespace: "other", vector: records[3].values, query: RecordQuery(topK: 5)).isEmpty)
        }
    }

    func rejectedUpsertWritesNothing() async throws {
        let (store, _) = try await makeStore()
        try await store.createRecordIndex(Self.index("strict", 3, .cosine))
        let good = Record(id: "good", values: [1, 2, 3])
        let bad: [Record] = [
            Record(id: "short", values: [1, 2]), Record(id: "nan", values: [1, .nan, 3]), Record(id: "zero", values: [0, 0, 0]),
            Record(id: "", values: [1, 2, 3]), Record(id: String(repeating: "x", count: 513), values: [1, 2, 3]),
            Record(id: "fat", values: [1, 2, 3], metadata: ["pad": .string(String(repeating: "y", count: 41_000))]),
        ]
        for b in bad {
            await #expect(throws: RecordIndexError.self) {
                try await store.upsertRecords([good, b], index: "strict", namespace: "")
            }
        }
        #expect(try await store.fetchRecords(index: "strict", namespace: "", ids: ["good"]).isEmpty)
        #expect(try await store.recordCounts(index: "strict", filter: nil).isEmpty)
        await #expect(throws: RecordIndexError.self) {
            try await store.queryRecords(index: "strict", namespace: "", vector: [1, 2], query: RecordQuery(topK: 1))
        }
        await #expect(throws: RecordIndexError.self) {
            try await store.queryRecords(index: "strict", namespace: "", vector: [1, 2, 3], query: RecordQuery(topK: 10_001))
        }
        // Zero vectors are fine where the metric has no norm.
        try await store.createRecordIndex(Self.index("dots", 3, .dotproduct))
        try await store.upsertRecords([Record(id: "z", values: [0, 0, 0])], index: "dots", namespace: "")
    }

    func fetchUpdateDeleteCountList() async throws {
        let (store, reopen) = try await makeStore()
        try await store.createRecordIndex(Self.index("crud", 2, .euclidean))
        let records = (0..<250).map { i in
            Record(id: "id-\(String(format: "%03d", i))", values: [Float(i), 1], metadata: ["even": .bool(i % 2 == 0)])
        }
        try await store.upsertRecords(records, index: "crud", namespace: "")
        try await store.upsertRecords([Record(id: "other", values: [0, 0])], index: "crud", namespace: "b")
        #expect(try await store.recordCounts(index: "crud", filter: nil) == ["": 250, "b": 1])
        let even = try MetadataFilter(json: .object(["even": .bool(true)]))
        #expect(try await store.recordCounts(index: "crud", filter: even) == ["": 125, "b": 0])
        #expect(try await store.fetchRecords(index: "crud", namespace: "", ids: ["id-007", "nope", "id-003"]) == [records[7], records[3]])

        // Update: vector alone, metadata merged.
        #expect(try await store.updateRecord(index: "crud", namespace: "", id: "id-007", values: [70, 7], setMetadata: ["x": .string("y")]))
        #expect(!(try await store.updateRecord(index: "crud", namespace: "", id: "absent", values: nil, setMetadata: ["x": .string("y")])))
        let updated = try await store.fetchRecords(index: "crud", namespace: "", ids: ["id-007"])[0]
        #expect(updated.values == [70, 7] && updated.metadata == ["even": .bool(false), "x": .string("y")])
        await #expect(throws: RecordIndexError.self) {
            try await store.updateRecord(index: "crud", namespace: "", id: "id-007", values: [1], setMetadata: nil)
        }

        // Upsert replaces the whole record.
        try await store.upsertRecords([Record(id: "id-007", values: [7, 1])], index: "crud", namespace: "")
        #expect(try await store.fetchRecords(index: "crud", namespace: "", ids: ["id-007"])[0].metadata == nil)

        // List: prefix, pages, order.
        var seen: [String] = []
        var after: String?
        var pages = 0
        repeat {
            let page = try await store.listRecordIDs(index: "crud", namespace: "", prefix: "id-1", after: after, limit: 30)
            seen += page.ids
            after = page.continueAfter
            pages += 1
        } while after != nil
        #expect(seen == records.map(\.id).filter { $0.hasPrefix("id-1") })
        #expect(pages == 4)

        // Deletes: ids, filter, all.
        #expect(try await store.deleteRecords(index: "crud", namespace: "", .ids(["id-000", "id-001", "nope"])) == 2)
        #expect(try await store.deleteRecords(index: "crud", namespace: "", .matching(even)) == 124)
        #expect(try await store.recordCounts(index: "crud", filter: nil) == ["": 124, "b": 1])
        let reopened = try await reopen()
        #expect(try await reopened.recordCounts(index: "crud", filter: nil) == ["": 124, "b": 1])
        #expect(try await reopened.fetchRecords(index: "crud", namespace: "", ids: ["id-003"]) == [records[3]])
        #expect(try await store.deleteRecords(index: "crud", namespace: "b", .all) == 1)
        #expect(try await store.recordCounts(index: "crud", filter: nil) == ["": 124])
    }

    /// A query running beside upserts sees each batch whole or not at all.
    func readersSeeWholeBatches() async throws {
        let (store, _) = try await makeStore()
        try await store.createRecordIndex(Self.index("live", 2, .euclidean))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for b in 0..<30 {
                    let batch = (0..<50).map { Record(id: "b\(b)-\($0)", values: [Float(b), Float($0)]) }
                    try await store.upsertRecords(batch, index: "live", namespace: "")
                }
            }
            group.addTask {
                for _ in 0..<60 {
                    let all = try await store.queryRecords(index: "live", namespace: "", vector: [0, 0], query: RecordQuery(topK: 10_000))
                    #expect(all.count % 50 == 0)
                }
            }
            try await group.waitForAll()
        }
    }
}

/// The record contract on the SQLite store.
@Suite struct SQLiteRecordIndexTests {
    let contract = RecordIndexContract(makeStore: {
        let path = try TempStore.newPath()
        return (try SQLiteVectorStore(path: path), { try SQLiteVectorStore(path: path) })
    })

    @Test func createListDescribeDelete() async throws { try await contract.createListDescribeDelete() }
    @Test func queriesAreExact() async throws { try await contract.queriesAreExact() }
    @Test func rejectedUpsertWritesNothing() async throws { try await contract.rejectedUpsertWritesNothing() }
    @Test func fetchUpdateDeleteCountList() async throws { try await contract.fetchUpdateDeleteCountList() }
    @Test func readersSeeWholeBatches() async throws { try await contract.readersSeeWholeBatches() }
}

/// The record contract on PostgreSQL + pgvector (each case in its own schema).
@Suite(.enabled(if: TestPostgres.shouldRun, Comment(rawValue: TestPostgres.skipMessage)))
struct PostgresRecordIndexTests {
    let contract = RecordIndexContract(makeStore: {
        let made = try await PostgresTestStore.factory()
        let reopen = made.reopen
        return (made.store as! any RecordIndexStore, { try await reopen() as! any RecordIndexStore })
    })

    @Test func createListDescribeDelete() async throws { try await contract.createListDescribeDelete() }
    @Test func queriesAreExact() async throws { try await contract.queriesAreExact() }
    @Test func rejectedUpsertWritesNothing() async throws { try await contract.rejectedUpsertWritesNothing() }
    @Test func fetchUpdateDeleteCountList() async throws { try await contract.fetchUpdateDeleteCountList() }
    @Test func readersSeeWholeBatches() async throws { try await contract.readersSeeWholeBatches() }
}

/// PostgreSQL's approximate path (HNSW candidates re-ranked exactly), taken for unfiltered queries over namespaces of
/// at least `exactScanBelow` records: every returned score is the exact one, the order is the exact order of those
/// candidates, and recall@10 against the brute force is measured (and must stay high on this small set).
@Suite(.enabled(if: TestPostgres.shouldRun, Comment(rawValue: TestPostgres.skipMessage)))
struct PostgresRecordApproximateTests {
    @Test func hnswCandidatesAreReRankedExactly() async throws {
        var config = try PostgresStoreConfiguration(url: try TestPostgres.requireURL())
        config.schema = TestPostgres.freshSchema()
        config.exactScanBelow = 100
        let store = try await PostgresVectorStore.open(configuration: config)
        var rng = SplitMix64(seed: 99)
        for metric in RecordMetric.allCases {
            let name = "ann-\(metric.rawValue)"
            try await store.createRecordIndex(RecordIndexContract.index(name, 32, metric))
            let records = RecordIndexContract.randomRecords(1000, dimension: 32, rng: &rng)
            try await store.upsertRecords(records, index: name, namespace: "")
            var hits = 0
            let queries = 20
            let approximateBefore = store.approximateRecordQueries.withLock { $0 }
            for _ in 0..<queries {
                let q = (0..<32).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
                let got = try await store.queryRecords(index: name, namespace: "", vector: q, query: RecordQuery(topK: 10))
                let want = RecordIndexContract.bruteForce(records, q, k: 10, metric: metric, filter: nil)
                #expect(got.count == 10)
                let exact = Dictionary(uniqueKeysWithValues: RecordIndexContract.bruteForce(records, q, k: 1000, metric: metric, filter: nil).map { ($0.id, $0.score) })
                for (a, b) in zip(got, got.dropFirst()) {
                    #expect(metric.higherIsCloser ? a.score >= b.score : a.score <= b.score)
                }
                for m in got { #expect(abs(Double(m.score) - exact[m.id]!) <= 1e-4 * max(1, abs(exact[m.id]!))) }
                hits += Set(got.map(\.id)).intersection(want.map(\.id)).count
            }
            #expect(store.approximateRecordQueries.withLock { $0 } == approximateBefore + queries)
            let recall = Double(hits) / Double(queries * 10)
            print("PostgreSQL HNSW recall@10 (\(metric.rawValue), 1000 × 32-d, ef_search \(config.efSearch)): \(recall)")
            #expect(recall >= 0.9, "recall@10 \(recall) for \(metric)")
        }
    }
}
