import PosterSimCore
import TestSupport
import Foundation
import Testing

@testable import Store

/// The behaviour of every `NeighbourListStore`: after any sequence of writes, a query by id gives what an exact scan
/// by the movie's vector gives, and the store's own check finds every list consistent. Run on each implementation
/// with its factory (see `SQLiteContractTests`).
struct NeighbourListContract: Sendable {
    typealias Store = any CatalogueStore & NeighbourListStore
    typealias Factory = @Sendable () async throws -> (store: Store, reopen: @Sendable () async throws -> Store)

    let makeStore: Factory

    /// A factory of this contract from a `VectorStoreContract` one, for a store that also keeps lists.
    static func factory(from base: @escaping VectorStoreContract.Factory) -> Factory {
        {
            let (store, reopen) = try await base()
            guard let lists = store as? Store else { throw StoreError.database("\(type(of: store)) keeps no lists") }
            return (lists, {
                guard let again = try await reopen() as? Store else { throw StoreError.database("keeps no lists") }
                return again
            })
        }
    }

    // More movies than a list holds, so lists are truncated and their bounds decide who enters.
    static let cosine = VectorSpace(name: "clip", dimension: 8, metric: .cosine)
    static let euclidean = VectorSpace(name: "vgg16", dimension: 6, metric: .euclidean)
    static let idA = VectorStoreContract.idA
    static let idB = VectorStoreContract.idB
    static let idV = ModelIdentity(repo: "timm/vgg16.tv_in1k", weightsSHA256: String(repeating: "d", count: 64))

    /// Small integer components: many exact ties and duplicate vectors, so tie order is exercised too.
    static func vector(_ rng: inout SplitMix64, dimension: Int) -> [Float] {
        var v = (0..<dimension).map { _ in Float(Int.random(in: -2...2, using: &rng)) }
        if v.allSatisfy({ $0 == 0 }) { v[0] = 1 }
        return v
    }

    static func movie(_ id: Int) -> Movie {
        VectorStoreContract.movie(id, year: 1990 + id % 30, genres: [id % 3 == 0 ? 18 : 35], votes: id % 7)
    }

    /// For every fourth movie of both spaces: by id (from the list) equals the scan by its vector without the movie
    /// itself, for several k and filters; and the store's check compares every list with a scan.
    func expectQueriesMatchScans(_ store: Store, ids allIDs: [MovieID], note: String) async throws {
        let ids = allIDs.enumerated().filter { $0.offset % 4 == 0 }.map(\.element)
        let filters = [SearchFilter(), SearchFilter(minYear: 2000, maxYear: 2010), SearchFilter(genreID: 18)]
        for space in [Self.cosine.name, Self.euclidean.name] {
            let vectors = try await store.fetchVectors(ids: ids, space: space)
            for id in ids {
                guard let v = vectors[id] else { continue }
                for (k, filter) in [(10, filters[0]), (100, filters[0]), (10, filters[1]), (5, filters[2])] {
                    let byID = try await store.query(space: space, movieID: id, k: k, filter: filter, excludeSelf: true)
                    let scan = try await store.query(space: space, vector: v, k: k + 1, filter: filter)
                    let expected = Array(scan.filter { $0.movieID != id }.prefix(k))
                    #expect(byID == expected, "\(note): movie \(id) in \(space), k \(k), filter \(filter)")
                }
            }
            let check = try await store.checkNeighbourLists(space: space, sample: nil)
            #expect(check.isConsistent, "\(note): \(check)")
            #expect(check.lists == check.vectors, "\(note): \(check)")
        }
    }

    func listsFollowInsertsReplacementsAndDeletes() async throws {
        let (store, reopen) = try await makeStore()
        try await store.registerSpace(Self.cosine, identity: Self.idA)
        try await store.registerSpace(Self.euclidean, identity: Self.idV)
        var rng = SplitMix64(seed: 16)
        let ids = Array(1...260)
        try await store.upsertMovies(ids.map(Self.movie))
        // Batches of different sizes, the first one alone (lists complete while the space is small).
        for batch in [Array(ids[0..<1]), Array(ids[1..<40]), Array(ids[40..<41]), Array(ids[41..<260])] {
            for space in [Self.cosine, Self.euclidean] {
                let inputs = batch.map { EmbeddingInput(movieID: $0, vector: Self.vector(&rng, dimension: space.dimension)) }
                try await store.upsertEmbeddings(
                    inputs, space: space.name, identity: space == Self.cosine ? Self.idA : Self.idV)
            }
        }
        try await expectQueriesMatchScans(store, ids: ids, note: "after inserts")

        // New posters for some movies (a batch that also repeats one movie: the last vector wins).
        let replaced = stride(from: 3, to: 260, by: 7).map { $0 }
        for space in [Self.cosine, Self.euclidean] {
            var inputs = replaced.map { EmbeddingInput(movieID: $0, vector: Self.vector(&rng, dimension: space.dimension)) }
            inputs.append(EmbeddingInput(movieID: 3, vector: Self.vector(&rng, dimension: space.dimension)))
            try await store.upsertEmbeddings(
                inputs, space: space.name, identity: space == Self.cosine ? Self.idA : Self.idV)
        }
        try await expectQueriesMatchScans(store, ids: ids, note: "after replacements")

        // Deletions, enough to make lists refill.
        let deleted = Array(stride(from: 2, to: 260, by: 2))
        #expect(try await store.deleteMovies(ids: deleted) == deleted.count)
        let left = ids.filter { !deleted.contains($0) }
        try await expectQueriesMatchScans(store, ids: left, note: "after deletions")

        // The lists are in the store: another instance answers the same.
        let again = try await reopen()
        try await expectQueriesMatchScans(again, ids: left, note: "reopened")
    }

    /// A new store with both spaces holding one vector for each of `ids` (one batch per space).
    func filled(_ ids: [MovieID], rng: inout SplitMix64) async throws -> Store {
        let (store, _) = try await makeStore()
        try await store.registerSpace(Self.cosine, identity: Self.idA)
        try await store.registerSpace(Self.euclidean, identity: Self.idV)
        try await store.upsertMovies(ids.map(Self.movie))
        for space in [Self.cosine, Self.euclidean] {
            let inputs = ids.map { EmbeddingInput(movieID: $0, vector: Self.vector(&rng, dimension: space.dimension)) }
            try await store.upsertEmbeddings(inputs, space: space.name, identity: space == Self.cosine ? Self.idA : Self.idV)
        }
        return store
    }

    func identityChangeStartsNewLists() async throws {
        var rng = SplitMix64(seed: 17)
        let ids = Array(1...150)
        let store = try await filled(ids, rng: &rng)
        // Another model for clip: its old vectors and lists stop counting; the new model's vectors get new lists.
        try await store.registerSpace(Self.cosine, identity: Self.idB)
        let first = try await store.checkNeighbourLists(space: Self.cosine.name, sample: nil)
        #expect(first.vectors == 0 && first.lists == 0 && first.isConsistent)
        let renewed = Array(ids[0..<120])
        try await store.upsertEmbeddings(
            renewed.map { EmbeddingInput(movieID: $0, vector: Self.vector(&rng, dimension: Self.cosine.dimension)) },
            space: Self.cosine.name, identity: Self.idB)
        try await expectQueriesMatchScans(store, ids: ids, note: "after switching clip's model")
    }

    func missingListsAreBuilt() async throws {
        var rng = SplitMix64(seed: 18)
        let ids = Array(1...140)
        let store = try await filled(ids, rng: &rng)
        // Switching clip away and back leaves its vectors current again but without lists (as in a store written
        // before lists existed); then new vectors arrive, which get lists and enter nobody's (there are none).
        try await store.registerSpace(Self.cosine, identity: Self.idB)
        try await store.registerSpace(Self.cosine, identity: Self.idA)
        let more = Array(141...170)
        try await store.upsertMovies(more.map(Self.movie))
        try await store.upsertEmbeddings(
            more.map { EmbeddingInput(movieID: $0, vector: Self.vector(&rng, dimension: Self.cosine.dimension)) },
            space: Self.cosine.name, identity: Self.idA)
        let before = try await store.checkNeighbourLists(space: Self.cosine.name, sample: nil)
        #expect(before.vectors == 170 && before.lists == 30 && before.isConsistent)
        // Queries by id are exact with or without a list.
        try await expectQueriesMatchScansIgnoringCount(store, ids: ids + more)

        let progress = Locked<[Int]>([])
        let built = try await store.buildMissingNeighbourLists(space: Self.cosine.name, batch: 64) { done, _ in
            progress.update { $0.append(done) }
        }
        #expect(built == 140)
        #expect(progress.value == [0, 64, 128, 140])
        try await expectQueriesMatchScans(store, ids: ids + more, note: "after building the missing lists")
        #expect(try await store.buildMissingNeighbourLists(space: Self.cosine.name, batch: 64, progress: nil) == 0)
    }

    /// A refresh that replaces posters drops their vectors (see `CatalogueStore.refreshMovies`): the lists lose them in
    /// the same transaction, and gain the new posters' vectors when they are stored.
    func listsFollowPosterChanges() async throws {
        var rng = SplitMix64(seed: 20)
        let ids = Array(1...150)
        let store = try await filled(ids, rng: &rng)
        let changed = Array(stride(from: 5, through: 150, by: 6))
        let refreshed = changed.map { id -> Movie in
            var m = Self.movie(id)
            m.posterPath = "/new-poster-\(id).jpg"
            return m
        }
        let refresh = try await store.refreshMovies(refreshed, source: "list:popular", at: Date(timeIntervalSince1970: 1_000))
        #expect(Set(refresh.posterChanged) == Set(changed))
        for space in [Self.cosine, Self.euclidean] {
            let check = try await store.checkNeighbourLists(space: space.name, sample: nil)
            #expect(check.isConsistent && check.lists == check.vectors && check.vectors == 150 - changed.count, "\(check)")
        }
        try await expectQueriesMatchScans(store, ids: ids.filter { !changed.contains($0) }, note: "after new posters")
        for space in [Self.cosine, Self.euclidean] {
            let inputs = changed.map { EmbeddingInput(movieID: $0, vector: Self.vector(&rng, dimension: space.dimension)) }
            try await store.upsertEmbeddings(inputs, space: space.name, identity: space == Self.cosine ? Self.idA : Self.idV)
        }
        try await expectQueriesMatchScans(store, ids: ids, note: "after embedding the new posters")
    }

    /// Real-valued vectors in a model's dimension (the integer vectors above make every dot product exact, which would
    /// hide a change in the order of operations), batches larger than a list, replacements and deletions; every list
    /// checked against the scan.
    func listsStayExactWithRealValuedVectors() async throws {
        for (dim, n, batch, metric) in [(512, 300, 70, DistanceMetric.cosine), (515, 260, 130, .euclidean)] {
            let (store, _) = try await makeStore()
            let space = VectorSpace(name: "space\(dim)", dimension: dim, metric: metric)
            try await store.registerSpace(space, identity: Self.idA)
            var rng = SplitMix64(seed: UInt64(dim))
            func vector() -> [Float] { (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) } }
            try await store.upsertMovies((1...n).map(Self.movie))
            for start in stride(from: 1, through: n, by: batch) {
                let ids = Array(start..<min(n + 1, start + batch))
                try await store.upsertEmbeddings(
                    ids.map { EmbeddingInput(movieID: $0, vector: vector()) }, space: space.name, identity: Self.idA)
            }
            try await store.upsertEmbeddings(
                stride(from: 1, through: n, by: 9).map { EmbeddingInput(movieID: $0, vector: vector()) },
                space: space.name, identity: Self.idA)
            try await store.deleteMovies(ids: Array(stride(from: 2, through: n, by: 3)))
            let check = try await store.checkNeighbourLists(space: space.name, sample: nil)
            #expect(check.isConsistent && check.lists == check.vectors, "\(space): \(check)")
            let left = (1...n).filter { $0 % 3 != 2 }
            let vectors = try await store.fetchVectors(ids: left, space: space.name)
            for id in left.prefix(40) {
                let byID = try await store.query(space: space.name, movieID: id, k: 10, filter: .none, excludeSelf: true)
                let scan = try await store.query(space: space.name, vector: vectors[id]!, k: 11, filter: .none)
                #expect(byID == Array(scan.filter { $0.movieID != id }.prefix(10)), "\(space): movie \(id)")
            }
        }
    }

    private func expectQueriesMatchScansIgnoringCount(_ store: Store, ids: [MovieID]) async throws {
        let vectors = try await store.fetchVectors(ids: ids, space: Self.cosine.name)
        for id in ids {
            guard let v = vectors[id] else { continue }
            let byID = try await store.query(space: Self.cosine.name, movieID: id, k: 10, filter: .none, excludeSelf: true)
            let scan = try await store.query(space: Self.cosine.name, vector: v, k: 11, filter: .none)
            #expect(byID == Array(scan.filter { $0.movieID != id }.prefix(10)))
        }
    }
}
