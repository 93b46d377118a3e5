import PosterSimCore
import TestSupport
import Foundation
import Testing
@testable import Store

/// Approximate search by vector through the neighbour lists (`ListGraphSearch`), on the SQLite store.
@Suite struct ListGraphSearchTests {
    /// A clustered catalogue: `clusters` centres, films spread around them (so the lists' graph falls apart into one
    /// piece per cluster, the case the sampled entry points are for).
    static func catalogue(films: Int, clusters: Int, dimension: Int, metric: DistanceMetric, seed: UInt64)
        -> [[Float]]
    {
        var rng = SplitMix64(seed: seed)
        let centres = (0..<clusters).map { _ in (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) } }
        return (0..<films).map { i in
            centres[i % clusters].map { c in
                let x = c + 0.3 * Float.random(in: -1...1, using: &rng)
                return metric == .euclidean ? max(0, x) : x
            }
        }
    }

    /// By default 1,500 films in 30 clusters, 80 of them sampled for entry points: entry points then depend on the
    /// graph walk, as they do at a million films.
    func filledStore(metric: DistanceMetric, approximateFrom: Int?, films: Int = 1500, clusters: Int = 30,
                     entrySample: Int = 80) async throws -> (SQLiteVectorStore, [[Float]]) {
        let store = try SQLiteVectorStore(path: try TempStore.newPath(), approximateSearchFrom: approximateFrom)
        store.graphEntrySample.set(entrySample)
        let space = VectorSpace(name: "s", dimension: 24, metric: metric)
        try await store.registerSpace(space, identity: NeighbourListContract.idA)
        let vectors = Self.catalogue(films: films, clusters: clusters, dimension: 24, metric: metric, seed: 5)
        try await store.upsertMovies((1...films).map(NeighbourListContract.movie))
        for start in stride(from: 0, to: films, by: 500) {
            try await store.upsertEmbeddings(
                (start..<min(films, start + 500)).map { EmbeddingInput(movieID: $0 + 1, vector: vectors[$0]) },
                space: "s", identity: NeighbourListContract.idA)
        }
        return (store, vectors)
    }

    @Test(arguments: [DistanceMetric.cosine, .euclidean])
    func approximateAnswersAgreeWithExactOnes(metric: DistanceMetric) async throws {
        let (store, vectors) = try await filledStore(metric: metric, approximateFrom: 1000)
        var rng = SplitMix64(seed: 77)
        var found = 0
        for q in 0..<200 {
            // Near a film, as a new poster of it would be.
            let query = vectors[(q * 37) % vectors.count].map { $0 + 0.05 * Float.random(in: -1...1, using: &rng) }
            let approximate = try await store.query(space: "s", vector: query, k: 10, filter: .none, exact: false)
            let exact = try await store.query(space: "s", vector: query, k: 10, filter: .none, exact: true)
            #expect(approximate.count == 10)
            // Scores of the films found are the exact search's, bit for bit.
            let exactScores = Dictionary(uniqueKeysWithValues: exact.map { ($0.movieID, $0.score) })
            for m in approximate where exactScores[m.movieID] != nil { #expect(exactScores[m.movieID] == m.score) }
            found += Set(approximate.map(\.movieID)).intersection(exact.map(\.movieID)).count
        }
        #expect(store.approximateQueryCount == 200, "the lists answered every unfiltered query")
        let recall = Double(found) / 2000
        #expect(recall >= 0.99, "recall@10 \(recall)")
    }

    /// Queries halfway between two films of different clusters (a text query or an unrelated upload): the answer
    /// spans two pieces of the graph, so the entry points must reach both. Clusters of 200 films (more than a list
    /// holds, so each is its own piece of the graph, as at 100,000 films) with about 8 of each sampled, as
    /// `make bench-scale` samples at 100,000 films. Here 2 entry points fail (recall 0.93 cosine, 0.85 euclidean);
    /// 8 pass, although in 512-d at 100,000 films they gave 0.982 where 16 give 1.000 (`ListGraphSearch`): that step
    /// is measured by the benchmark, not this test.
    @Test(arguments: [DistanceMetric.cosine, .euclidean])
    func queriesBetweenClustersFindBothSides(metric: DistanceMetric) async throws {
        let (store, vectors) = try await filledStore(
            metric: metric, approximateFrom: 1000, films: 2400, clusters: 12, entrySample: 96)
        var found = 0
        var asked = 0
        for q in 0..<200 {
            // Films i and j with i ≢ j (mod 12) are in different clusters.
            let i = (q * 37) % vectors.count
            let j = (i + 1 + (q % 11)) % vectors.count
            let query = zip(vectors[i], vectors[j]).map { ($0 + $1) / 2 }
            let approximate = try await store.query(space: "s", vector: query, k: 10, filter: .none, exact: false)
            let exact = try await store.query(space: "s", vector: query, k: 10, filter: .none, exact: true)
            found += Set(approximate.map(\.movieID)).intersection(exact.map(\.movieID)).count
            asked += exact.count
        }
        #expect(store.approximateQueryCount == 200)
        let recall = Double(found) / Double(asked)
        #expect(recall >= 0.99, "recall@10 between clusters \(recall)")
    }

    @Test func filteredSmallAndUnlistedQueriesScan() async throws {
        let (store, vectors) = try await filledStore(metric: .cosine, approximateFrom: 1000)
        let query = vectors[5]
        // A narrow filter (one release year of 30: 1 row in 30), more than the beam holds, or `exact`: the scan answers.
        _ = try await store.query(
            space: "s", vector: query, k: 10, filter: SearchFilter(minYear: 2000, maxYear: 2000), exact: false)
        _ = try await store.query(space: "s", vector: query, k: 500, filter: .none, exact: false)
        _ = try await store.query(space: "s", vector: query, k: 10, filter: .none, exact: true)
        #expect(store.approximateQueryCount == 0)
        // The four-argument query is the non-exact one.
        _ = try await store.query(space: "s", vector: query, k: 10, filter: .none)
        #expect(store.approximateQueryCount == 1)

        // Below the threshold, or with it off: exact.
        let (small, _) = try await filledStore(metric: .cosine, approximateFrom: 2000)
        let (off, _) = try await filledStore(metric: .cosine, approximateFrom: nil)
        for s in [small, off] {
            let answer = try await s.query(space: "s", vector: query, k: 10, filter: .none)
            #expect(answer == (try await s.query(space: "s", vector: query, k: 10, filter: .none, exact: true)))
            #expect(s.approximateQueryCount == 0)
        }
    }

    /// A broad filter (at least 1 row in `SpaceIndex.prefilterBelowFraction` passes) goes through the lists too: the
    /// walk is the unfiltered one and the answer the best films it met that pass. Every film returned passes, with the
    /// exact search's score, and the answers agree with the exact filtered ones.
    @Test(arguments: [DistanceMetric.cosine, .euclidean])
    func broadFiltersGoThroughTheLists(metric: DistanceMetric) async throws {
        let (store, vectors) = try await filledStore(metric: metric, approximateFrom: 1000)
        // Votes are id % 7 and genre 18 is every third film (`NeighbourListContract.movie`): 6/7, 1/3 and 1/7 pass.
        let filters = [SearchFilter(minVoteCount: 1), SearchFilter(genreID: 18), SearchFilter(minVoteCount: 6)]
        var rng = SplitMix64(seed: 78)
        var found = 0
        var asked = 0
        for q in 0..<150 {
            let filter = filters[q % filters.count]
            let query = vectors[(q * 41) % vectors.count].map { $0 + 0.05 * Float.random(in: -1...1, using: &rng) }
            let approximate = try await store.query(space: "s", vector: query, k: 10, filter: filter, exact: false)
            let exact = try await store.query(space: "s", vector: query, k: 10, filter: filter, exact: true)
            #expect(approximate.count == 10)
            let exactScores = Dictionary(uniqueKeysWithValues: exact.map { ($0.movieID, $0.score) })
            for m in approximate {
                let id = m.movieID
                if filter.minVoteCount != nil { #expect(id % 7 >= filter.minVoteCount!) } else { #expect(id % 3 == 0) }
                if let score = exactScores[id] { #expect(score == m.score) }
            }
            found += Set(approximate.map(\.movieID)).intersection(exact.map(\.movieID)).count
            asked += exact.count
        }
        #expect(store.approximateQueryCount == 150, "the lists answered every broadly filtered query")
        let recall = Double(found) / Double(asked)
        #expect(recall >= 0.99, "filtered recall@10 \(recall)")
    }

    /// The search reads far fewer rows than a scan: the point of it.
    @Test func searchScoresAFractionOfTheSpace() throws {
        let space = VectorSpace(name: "s", dimension: 24, metric: .cosine)
        let vectors = Self.catalogue(films: 3000, clusters: 50, dimension: 24, metric: .cosine, seed: 9)
        let meta = RowMeta(year: RowMeta.noYear, adult: false, voteCount: 0, language: 0, genreBits: 0)
        let ids = (1...3000).map { MovieID($0) }
        let index = SpaceIndex.empty(space, identity: NeighbourListContract.idA)
            .upserting(ids.map { ($0, vectors[Int($0) - 1], meta) })
        let lists = NeighbourMaintenance(before: index, after: index, bounds: [:], threads: 2).ownLists(of: ids)
        let outcome = ListGraphSearch(index: index, entrySample: 300).search(vectors[123], k: 10) { lists[$0] }
        #expect(outcome.matches.first?.movieID == 124)
        #expect(outcome.rowsScored < index.rowCount / 2, "\(outcome.rowsScored) rows scored of \(index.rowCount)")
    }
}
