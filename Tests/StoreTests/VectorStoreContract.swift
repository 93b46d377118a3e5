import PosterSimCore
import TestSupport
import Foundation
import Testing

@testable import Store

/// The behaviour every `VectorStore` must have, as reusable checks. A store implementation's tests build one of these
/// with a factory that returns a new, empty store (and, for a persistent store, a way to reopen the same data) and
/// call each check from a `@Test` (see `SQLiteContractTests`). A PostgreSQL store runs the same checks.
struct VectorStoreContract: Sendable {
    /// A fresh, empty store plus a closure that reopens the same underlying data as a new store instance.
    typealias Factory = @Sendable () async throws -> (store: any VectorStore, reopen: @Sendable () async throws -> any VectorStore)

    let makeStore: Factory

    static let clip = VectorSpace(name: "clip", dimension: 4, metric: .cosine)
    static let resnet = VectorSpace(name: "resnet50", dimension: 3, metric: .euclidean)
    static let idA = ModelIdentity(repo: "openai/clip-vit-base-patch32", weightsSHA256: String(repeating: "a", count: 64))
    static let idB = ModelIdentity(repo: "openai/clip-vit-base-patch32", weightsSHA256: String(repeating: "b", count: 64))
    static let idR = ModelIdentity(repo: "microsoft/resnet-50", weightsSHA256: String(repeating: "c", count: 64))

    static func movie(_ id: Int, year: Int? = 2000, genres: [Int] = [18], lang: String = "en", adult: Bool = false,
                      votes: Int = 100) -> Movie {
        Movie(
            id: id, title: "Movie \(id)", originalTitle: "Original \(id)", overview: "Overview of \(id)",
            releaseDate: year.map { "\($0)-06-15" } ?? "", posterPath: "/p\(id).jpg", backdropPath: nil,
            genreIDs: genres, originalLanguage: lang, popularity: Double(id) / 10, voteAverage: 7.5, voteCount: votes,
            adult: adult, video: false, popularityRank: id)
    }

    /// A store with spaces clip (cosine) and resnet50 (euclidean) registered.
    func prepared() async throws -> (store: any VectorStore, reopen: @Sendable () async throws -> any VectorStore) {
        let made = try await makeStore()
        try await made.store.registerSpace(Self.clip, identity: Self.idA)
        try await made.store.registerSpace(Self.resnet, identity: Self.idR)
        return made
    }

    func upsertFetchDeleteCount() async throws {
        let (store, _) = try await prepared()
        let movies = [Self.movie(3), Self.movie(1), Self.movie(2, year: nil, genres: [])]
        try await store.upsertMovies(movies)
        #expect(try await store.movieCount() == 3)
        #expect(try await store.fetchMovies(ids: [2, 99, 3]) == [movies[2], movies[0]])
        #expect(try await store.fetchMovie(id: 99) == nil)

        // Replacing a movie keeps its embedding.
        try await store.upsertEmbeddings(
            [EmbeddingInput(movieID: 1, vector: [1, 0, 0, 0])], space: "clip", identity: Self.idA)
        var changed = movies[1]
        changed.title = "Renamed"
        changed.voteCount = 5
        try await store.upsertMovies([changed])
        #expect(try await store.fetchMovie(id: 1) == changed)
        #expect(try await store.movieCount() == 3)
        #expect(try await store.completedPairs(movieIDs: [1, 2], spaces: ["clip"]) == [EmbeddingKey(movieID: 1, space: "clip")])

        // Deleting removes the movie and its embeddings; unknown ids are ignored.
        #expect(try await store.deleteMovies(ids: [1, 42]) == 1)
        #expect(try await store.movieCount() == 2)
        #expect(try await store.fetchMovie(id: 1) == nil)
        #expect(try await store.completedPairs(movieIDs: [1], spaces: ["clip"]).isEmpty)
        let stats = try await store.stats()
        #expect(stats.movies == 2)
        #expect(stats.spaces.first { $0.space == Self.clip }?.vectors == 0)
        await #expect(throws: StoreError.unknownMovie(1)) {
            try await store.query(space: "clip", movieID: 1, k: 3)
        }
    }

    func titleSearchIgnoresCaseAndAccentsPopularFirst() async throws {
        let (store, _) = try await prepared()
        var amelie = Self.movie(7)
        amelie.title = "Le Fabuleux Destin d'Amélie Poulain"
        amelie.releaseDate = "2001-04-25"
        var amelie2 = Self.movie(3)
        amelie2.title = "Amélie"
        amelie2.releaseDate = "2001-04-25"
        var other = Self.movie(5)
        other.title = "Alien"
        other.releaseDate = "1979-05-25"
        try await store.upsertMovies([amelie, amelie2, other])
        // Popularity rank 3 comes before rank 7; "AMELIE" matches "Amélie".
        #expect(try await store.searchTitles("AMELIE", limit: 10).map(\.id) == [3, 7])
        #expect(try await store.searchTitles("amelie", limit: 1).map(\.id) == [3])
        // The label includes the release date, as the original's title list does.
        #expect(try await store.searchTitles("1979", limit: 10).map(\.id) == [5])
        #expect(try await store.searchTitles("no such film", limit: 10).isEmpty)
        #expect(try await store.searchTitles("", limit: 2).map(\.id) == [3, 5])
    }

    func tmdbJSONRoundTrip() async throws {
        // The shape of one result of TMDB's /movie/popular, with a null backdrop and no video key.
        let json = """
            {"adult":false,"backdrop_path":null,"genre_ids":[28,878],"id":550,"original_language":"en",
             "original_title":"Fight Club","overview":"A ticking-time-bomb insomniac...","popularity":61.416,
             "poster_path":"/pB8BM7pdSp6B6Ih7QZ4DrQ3PmJK.jpg","release_date":"1999-10-15","title":"Fight Club",
             "vote_average":8.433,"vote_count":26280}
            """
        let movie = try JSONDecoder().decode(Movie.self, from: Data(json.utf8))
        #expect(movie.id == 550 && movie.genreIDs == [28, 878] && movie.backdropPath == nil && movie.video == nil)
        #expect(movie.releaseYear == 1999)
        let (store, _) = try await prepared()
        try await store.upsertMovies([movie])
        #expect(try await store.fetchMovie(id: 550) == movie)
        // Encoding uses TMDB's keys.
        let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(movie)) as? [String: Any]
        #expect(encoded?["original_title"] as? String == "Fight Club")
        #expect(encoded?["vote_count"] as? Int == 26280)
    }

    func batchIsAllOrNothing() async throws {
        let (store, _) = try await prepared()
        try await store.upsertMovies([Self.movie(1), Self.movie(2)])
        try await store.upsertEmbeddings(
            [EmbeddingInput(movieID: 1, vector: [1, 0, 0, 0])], space: "clip", identity: Self.idA)
        // The third item names a movie that does not exist: the store fails there, after writing the first two.
        let batch = [
            EmbeddingInput(movieID: 2, vector: [0, 1, 0, 0]),
            EmbeddingInput(movieID: 1, vector: [0, 0, 1, 0]),
            EmbeddingInput(movieID: 77, vector: [0, 0, 0, 1]),
        ]
        await #expect(throws: StoreError.unknownMovie(77)) {
            try await store.upsertEmbeddings(batch, space: "clip", identity: Self.idA)
        }
        #expect(try await store.completedPairs(movieIDs: [1, 2], spaces: ["clip"]) == [EmbeddingKey(movieID: 1, space: "clip")])
        // Movie 1 still has its old vector: its nearest neighbour to [1,0,0,0] scores 1.
        let hits = try await store.query(space: "clip", vector: [1, 0, 0, 0], k: 5)
        #expect(hits.map(\.movieID) == [1])
        #expect(abs(hits[0].score - 1) < 1e-6)
        let stats = try await store.stats()
        #expect(stats.spaces.first { $0.space == Self.clip }?.vectors == 1)

        // A bad vector anywhere in the batch rejects the batch before anything is written.
        await #expect(throws: StoreError.dimensionMismatch(space: "clip", expected: 4, actual: 3)) {
            try await store.upsertEmbeddings(
                [EmbeddingInput(movieID: 2, vector: [0, 1, 0, 0]), EmbeddingInput(movieID: 1, vector: [1, 2, 3])],
                space: "clip", identity: Self.idA)
        }
        await #expect(throws: StoreError.self) {
            try await store.upsertEmbeddings(
                [EmbeddingInput(movieID: 2, vector: [0, .nan, 0, 0])], space: "clip", identity: Self.idA)
        }
        await #expect(throws: StoreError.self) {
            try await store.upsertEmbeddings(
                [EmbeddingInput(movieID: 2, vector: [0, 0, 0, 0])], space: "clip", identity: Self.idA)
        }
        #expect(try await store.completedPairs(movieIDs: [2], spaces: ["clip"]).isEmpty)
    }

    func identityChangeMakesStale() async throws {
        let (store, _) = try await prepared()
        try await store.upsertMovies((1...4).map { Self.movie($0) })
        try await store.upsertEmbeddings(
            (1...4).map { EmbeddingInput(movieID: $0, vector: [Float($0), 1, 0, 0]) }, space: "clip",
            identity: Self.idA)
        try await store.upsertEmbeddings(
            (1...2).map { EmbeddingInput(movieID: $0, vector: [Float($0), 0, 0]) }, space: "resnet50",
            identity: Self.idR)

        // A writer still using the old checkpoint after the switch is refused.
        let switched = try await store.registerSpace(Self.clip, identity: Self.idB)
        #expect(switched.vectors == 0 && switched.staleVectors == 4 && switched.identity == Self.idB)
        await #expect(throws: StoreError.identityMismatch(space: "clip", current: Self.idB, given: Self.idA)) {
            try await store.upsertEmbeddings(
                [EmbeddingInput(movieID: 1, vector: [1, 0, 0, 0])], space: "clip", identity: Self.idA)
        }
        // Stale vectors are never returned, and are not done.
        #expect(try await store.query(space: "clip", vector: [1, 1, 0, 0], k: 10).isEmpty)
        #expect(try await store.completedPairs(movieIDs: [1, 2, 3, 4], spaces: ["clip", "resnet50"]) == [
            EmbeddingKey(movieID: 1, space: "resnet50"), EmbeddingKey(movieID: 2, space: "resnet50"),
        ])
        await #expect(throws: StoreError.noEmbedding(movieID: 1, space: "clip")) {
            try await store.query(space: "clip", movieID: 1, k: 3)
        }
        // Re-embedding under the new identity replaces stale vectors one by one.
        try await store.upsertEmbeddings(
            [EmbeddingInput(movieID: 2, vector: [0, 0, 1, 0])], space: "clip", identity: Self.idB)
        let stats = try await store.stats()
        let clip = try #require(stats.spaces.first { $0.space.name == "clip" })
        #expect(clip.vectors == 1 && clip.staleVectors == 3 && clip.identity == Self.idB)
        let resnet = try #require(stats.spaces.first { $0.space.name == "resnet50" })
        #expect(resnet.vectors == 2 && resnet.staleVectors == 0)
        #expect(try await store.query(space: "clip", vector: [1, 1, 1, 0], k: 10).map(\.movieID) == [2])

        // Same identity again: nothing changes. A different dimension or metric: a typed error.
        let again = try await store.registerSpace(Self.clip, identity: Self.idB)
        #expect(again.vectors == 1 && again.staleVectors == 3)
        let wrong = VectorSpace(name: "clip", dimension: 5, metric: .cosine)
        await #expect(throws: StoreError.spaceConflict(existing: Self.clip, requested: wrong)) {
            try await store.registerSpace(wrong, identity: Self.idB)
        }
        // Switching back to the first checkpoint makes its vectors current again (and the new one's stale).
        let back = try await store.registerSpace(Self.clip, identity: Self.idA)
        #expect(back.vectors == 3 && back.staleVectors == 1)
        #expect(try await store.query(space: "clip", vector: [1, 1, 0, 0], k: 10).map(\.movieID).sorted() == [1, 3, 4])
    }

    /// The same checkpoint at another precision is another identity: switching a space to bf16 makes its fp32
    /// vectors stale (never mixed into results), a writer at the old precision is refused, the precision survives
    /// a reopen, and switching back to fp32 makes the fp32 vectors current again. fp32 keeps its pre-precision
    /// stored form, so vectors stored before precisions existed stay current.
    func precisionIsPartOfIdentity() async throws {
        let (store, reopen) = try await prepared()
        let bf16 = Self.idA.at(.bf16)
        #expect(Self.idA.storedForm == "openai/clip-vit-base-patch32@sha256:" + String(repeating: "a", count: 64))
        try await store.upsertMovies((1...3).map { Self.movie($0) })
        try await store.upsertEmbeddings(
            (1...3).map { EmbeddingInput(movieID: $0, vector: [Float($0), 1, 0, 0]) }, space: "clip",
            identity: Self.idA)
        let switched = try await store.registerSpace(Self.clip, identity: bf16)
        #expect(switched.vectors == 0 && switched.staleVectors == 3 && switched.identity == bf16)
        await #expect(throws: StoreError.identityMismatch(space: "clip", current: bf16, given: Self.idA)) {
            try await store.upsertEmbeddings(
                [EmbeddingInput(movieID: 1, vector: [1, 0, 0, 0])], space: "clip", identity: Self.idA)
        }
        #expect(try await store.query(space: "clip", vector: [1, 1, 0, 0], k: 10).isEmpty)
        try await store.upsertEmbeddings(
            [EmbeddingInput(movieID: 2, vector: [0, 0, 1, 0])], space: "clip", identity: bf16)
        #expect(try await store.query(space: "clip", vector: [1, 1, 1, 0], k: 10).map(\.movieID) == [2])

        let reopened = try await reopen()
        let clip = try #require(try await reopened.stats().spaces.first { $0.space.name == "clip" })
        #expect(clip.identity == bf16 && clip.identity.precision == .bf16)
        #expect(clip.vectors == 1 && clip.staleVectors == 2)
        let back = try await reopened.registerSpace(Self.clip, identity: Self.idA)
        #expect(back.vectors == 2 && back.staleVectors == 1 && back.identity.precision == .fp32)
        #expect(try await reopened.query(space: "clip", vector: [1, 1, 0, 0], k: 10).map(\.movieID).sorted() == [1, 3])
    }

    func filters() async throws {
        let (store, _) = try await prepared()
        let movies = [
            Self.movie(1, year: 1985, genres: [18, 35], lang: "en", adult: false, votes: 10),
            Self.movie(2, year: 1995, genres: [28], lang: "fr", adult: false, votes: 500),
            Self.movie(3, year: 2005, genres: [18], lang: "fr", adult: true, votes: 50),
            Self.movie(4, year: nil, genres: [18], lang: "en", adult: false, votes: 1000),
            Movie(id: 5, title: "Sparse"),  // no date, no genres, no language, adult/votes unknown
        ]
        try await store.upsertMovies(movies)
        try await store.upsertEmbeddings(
            (1...5).map { EmbeddingInput(movieID: $0, vector: [1, Float($0) / 10, 0, 0]) }, space: "clip",
            identity: Self.idA)
        func ids(_ f: SearchFilter) async throws -> [Int] {
            try await store.query(space: "clip", vector: [1, 0, 0, 0], k: 10, filter: f).map(\.movieID).sorted()
        }
        #expect(try await ids(.none) == [1, 2, 3, 4, 5])
        #expect(try await ids(SearchFilter(minYear: 1990)) == [2, 3])
        #expect(try await ids(SearchFilter(maxYear: 1995)) == [1, 2])
        #expect(try await ids(SearchFilter(minYear: 1990, maxYear: 2000)) == [2])
        #expect(try await ids(SearchFilter(genreID: 18)) == [1, 3, 4])
        #expect(try await ids(SearchFilter(genreID: 99)) == [])
        #expect(try await ids(SearchFilter(originalLanguage: "fr")) == [2, 3])
        #expect(try await ids(SearchFilter(originalLanguage: "xx")) == [])
        #expect(try await ids(SearchFilter(adult: true)) == [3])
        #expect(try await ids(SearchFilter(adult: false)) == [1, 2, 4, 5])
        #expect(try await ids(SearchFilter(minVoteCount: 50)) == [2, 3, 4])
        #expect(try await ids(SearchFilter(genreID: 18, originalLanguage: "en", minVoteCount: 100)) == [4])
        // Filters follow metadata updates.
        var m2 = movies[1]
        m2.genreIDs = [18]
        try await store.upsertMovies([m2])
        #expect(try await ids(SearchFilter(genreID: 18)) == [1, 2, 3, 4])
        // Query by id with a filter the movie itself fails: it is not listed first.
        let byID = try await store.query(
            space: "clip", movieID: 1, k: 10, filter: SearchFilter(originalLanguage: "fr"), excludeSelf: false)
        #expect(byID.map(\.movieID).sorted() == [2, 3])
    }

    func excludeSelfAndTieOrder() async throws {
        let (store, _) = try await prepared()
        try await store.upsertMovies([30, 10, 20, 40, 50].map { Self.movie($0) })
        // 10, 20, 30 share one vector; 40 is close; 50 is far.
        let same: [Float] = [0.6, 0.8, 0, 0]
        try await store.upsertEmbeddings(
            [
                EmbeddingInput(movieID: 30, vector: same), EmbeddingInput(movieID: 10, vector: same),
                EmbeddingInput(movieID: 40, vector: [0.6, 0.7, 0.1, 0]),
                EmbeddingInput(movieID: 20, vector: same), EmbeddingInput(movieID: 50, vector: [0, 0, 0, 1]),
            ], space: "clip", identity: Self.idA)
        let byVector = try await store.query(space: "clip", vector: same, k: 4)
        #expect(byVector.map(\.movieID) == [10, 20, 30, 40])
        #expect(byVector[0].score == byVector[1].score && byVector[1].score == byVector[2].score)
        #expect(byVector[2].score > byVector[3].score)
        // By id: the movie itself first even though 10 and 20 tie with it and have smaller ids.
        let withSelf = try await store.query(space: "clip", movieID: 30, k: 3)
        #expect(withSelf.map(\.movieID) == [30, 10, 20])
        #expect(abs(withSelf[0].score - 1) < 1e-6)
        #expect(try await store.query(space: "clip", movieID: 30, k: 3, excludeSelf: true).map(\.movieID) == [10, 20, 40])
        #expect(try await store.query(space: "clip", movieID: 30, k: 1).map(\.movieID) == [30])
        // Euclidean: ascending squared distance, ties by id.
        try await store.upsertEmbeddings(
            [
                EmbeddingInput(movieID: 50, vector: [1, 0, 0]), EmbeddingInput(movieID: 20, vector: [0, 1, 0]),
                EmbeddingInput(movieID: 40, vector: [0, 0, 3]), EmbeddingInput(movieID: 10, vector: [-1, 0, 0]),
            ], space: "resnet50", identity: Self.idR)
        let e = try await store.query(space: "resnet50", vector: [0, 0, 0], k: 4)
        #expect(e.map(\.movieID) == [10, 20, 50, 40])
        #expect(e.map(\.score) == [1, 1, 1, 9])
        let eSelf = try await store.query(space: "resnet50", movieID: 50, k: 3)
        #expect(eSelf.map(\.movieID) == [50, 20, 10])
        #expect(eSelf.map(\.score) == [0, 2, 4])
    }

    func typedErrors() async throws {
        let (store, _) = try await prepared()
        try await store.upsertMovies([Self.movie(1), Self.movie(2)])
        // Other movies have vectors, so a search from a movie without one has candidates it must not rank.
        try await store.upsertEmbeddings(
            [EmbeddingInput(movieID: 2, vector: [1, 0, 0, 0])], space: "clip", identity: Self.idA)
        await #expect(throws: StoreError.unknownMovie(12345)) {
            try await store.query(space: "clip", movieID: 12345, k: 3)
        }
        await #expect(throws: StoreError.noEmbedding(movieID: 1, space: "clip")) {
            try await store.query(space: "clip", movieID: 1, k: 3)
        }
        await #expect(throws: StoreError.dimensionMismatch(space: "clip", expected: 4, actual: 2)) {
            try await store.query(space: "clip", vector: [1, 2], k: 3)
        }
        await #expect(throws: StoreError.dimensionMismatch(space: "resnet50", expected: 3, actual: 4)) {
            try await store.upsertEmbeddings(
                [EmbeddingInput(movieID: 1, vector: [1, 2, 3, 4])], space: "resnet50", identity: Self.idR)
        }
        await #expect(throws: StoreError.unknownSpace("vgg16")) {
            try await store.query(space: "vgg16", vector: [1, 2, 3], k: 3)
        }
        await #expect(throws: StoreError.unknownSpace("vgg16")) {
            try await store.upsertEmbeddings(
                [EmbeddingInput(movieID: 1, vector: [1, 2, 3])], space: "vgg16", identity: Self.idR)
        }
        await #expect(throws: StoreError.invalidK(0)) {
            try await store.query(space: "clip", vector: [1, 2, 3, 4], k: 0)
        }
        await #expect(throws: StoreError.self) {
            try await store.query(space: "clip", vector: [0, 0, 0, 0], k: 3)
        }
        await #expect(throws: StoreError.self) {
            try await store.upsertMovies([Movie(id: -5, title: "negative")])
        }
        // Every error reads well.
        #expect(StoreError.unknownMovie(7).description == "unknown movie id 7")
    }

    func reopenGivesSameResults() async throws {
        let (store, reopen) = try await prepared()
        let movies = (1...50).map { Self.movie($0, year: 1950 + $0, genres: [$0 % 3 == 0 ? 18 : 35]) }
        try await store.upsertMovies(movies)
        var gen = SplitMix64(seed: 7)
        let clipVectors = (1...50).map { EmbeddingInput(movieID: $0, vector: (0..<4).map { _ in gen.nextFloat() }) }
        let resVectors = (1...50).map { EmbeddingInput(movieID: $0, vector: (0..<3).map { _ in gen.nextFloat() }) }
        try await store.upsertEmbeddings(clipVectors, space: "clip", identity: Self.idA)
        try await store.upsertEmbeddings(resVectors, space: "resnet50", identity: Self.idR)
        try await store.deleteMovies(ids: [7])
        try await store.upsertEmbeddings(
            [EmbeddingInput(movieID: 8, vector: [0.5, 0.5, 0.5, 0.5])], space: "clip", identity: Self.idA)
        let filter = SearchFilter(minYear: 1960, genreID: 35)
        let q: [Float] = [0.3, -0.2, 0.9, 0.1]
        let before = try await (
            store.query(space: "clip", vector: q, k: 10, filter: filter),
            store.query(space: "resnet50", movieID: 9, k: 10, filter: .none, excludeSelf: false),
            store.stats(), store.fetchMovies(ids: Array(1...50))
        )
        let again = try await reopen()
        let after = try await (
            again.query(space: "clip", vector: q, k: 10, filter: filter),
            again.query(space: "resnet50", movieID: 9, k: 10, filter: .none, excludeSelf: false),
            again.stats(), again.fetchMovies(ids: Array(1...50))
        )
        #expect(before.0 == after.0 && before.0.count == 10)
        #expect(before.1 == after.1)
        #expect(before.2.spaces == after.2.spaces && before.2.movies == after.2.movies)
        #expect(before.3 == after.3)
    }

    /// Queries running while batches are written see whole batches only: every batch writes the same vector for all
    /// its movies, so a query that saw part of a batch would return a mix of batch tags.
    func concurrentReadersSeeWholeBatches() async throws {
        let (store, _) = try await prepared()
        let ids = Array(1...40)
        try await store.upsertMovies(ids.map { Self.movie($0) })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for round in 0..<30 {
                    let v: [Float] = [1, Float(round), 0, 0]
                    try await store.upsertEmbeddings(
                        ids.map { EmbeddingInput(movieID: $0, vector: v) }, space: "clip", identity: Self.idA)
                }
            }
            for _ in 0..<2 {
                group.addTask {
                    for _ in 0..<60 {
                        let hits = try await store.query(space: "clip", vector: [1, 0, 0, 0], k: 40)
                        // All or none of the movies, all with one score.
                        #expect(hits.isEmpty || hits.count == 40)
                        #expect(Set(hits.map(\.score)).count <= 1)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// `fetchVectors` (a match's `values` in the HTTP API) gives back the stored vectors, current ones only.
    func storedVectorsComeBack() async throws {
        let (store, _) = try await prepared()
        try await store.upsertMovies([Self.movie(1), Self.movie(2), Self.movie(3)])
        try await store.upsertEmbeddings(
            [EmbeddingInput(movieID: 1, vector: [1, 2, 3]), EmbeddingInput(movieID: 2, vector: [-0.5, 0, 7.25])],
            space: "resnet50", identity: Self.idR)
        #expect(try await store.fetchVectors(ids: [2, 3, 1, 99], space: "resnet50") == [1: [1, 2, 3], 2: [-0.5, 0, 7.25]])
        #expect(try await store.fetchVectors(ids: [], space: "resnet50") == [:])
        // A new checkpoint makes the old vectors stale: they are not returned.
        let newIdentity = ModelIdentity(repo: "microsoft/resnet-50", weightsSHA256: String(repeating: "d", count: 64))
        try await store.registerSpace(Self.resnet, identity: newIdentity)
        #expect(try await store.fetchVectors(ids: [1, 2], space: "resnet50") == [:])
        await #expect(throws: StoreError.unknownSpace("vgg16")) {
            try await store.fetchVectors(ids: [1], space: "vgg16")
        }
    }

    /// `revision()` is stable across reads and failed writes and takes a new value at every committed write.
    func revisionChangesOnWrite() async throws {
        let (store, reopen) = try await prepared()
        let r0 = try await store.revision()
        _ = try await store.movieCount()
        _ = try await store.searchTitles("movie", limit: 5)
        _ = try await store.stats()
        #expect(try await store.revision() == r0)

        try await store.upsertMovies([Self.movie(1), Self.movie(2)])
        let r1 = try await store.revision()
        #expect(r1 != r0)
        try await store.upsertEmbeddings(
            [EmbeddingInput(movieID: 1, vector: [1, 0, 0, 0])], space: "clip", identity: Self.idA)
        let r2 = try await store.revision()
        #expect(![r0, r1].contains(r2))
        _ = try await store.query(space: "clip", movieID: 1, k: 2)
        #expect(try await store.revision() == r2)

        // A write that fails changes nothing, revision included.
        await #expect(throws: StoreError.self) {
            try await store.upsertEmbeddings(
                [EmbeddingInput(movieID: 2, vector: [0, 1, 0, 0]), EmbeddingInput(movieID: 99, vector: [1, 1, 0, 0])],
                space: "clip", identity: Self.idA)
        }
        #expect(try await store.revision() == r2)

        #expect(try await store.deleteMovies(ids: [2]) == 1)
        let r3 = try await store.revision()
        #expect(![r0, r1, r2].contains(r3))
        // Another instance on the same data agrees it is unchanged since.
        let again = try await reopen()
        #expect(try await again.revision() == r3)
    }

    /// Imported skip records (`postersim export`) keep their attempts and times, replace the record of the same key
    /// (so importing twice changes nothing), and are all or nothing.
    func importedSkipRecordsAreKeptAsGiven() async throws {
        let (store, reopen) = try await prepared()
        try await store.upsertMovies((1...3).map { Self.movie($0) })
        let t0 = Date(timeIntervalSince1970: 1_700_000_000.5), t1 = t0.addingTimeInterval(3600)
        let gone = SkipRecord(
            skip: PosterSkip(movieID: 1, space: nil, reason: .posterNotFound, httpStatus: 404, message: "404",
                             posterPath: "/p1.jpg", source: "http://img.example/p1.jpg"),
            attempts: 3, firstFailedAt: t0, lastAttemptAt: t1)
        let zero = SkipRecord(
            skip: PosterSkip(movieID: 2, space: "clip", reason: .invalidEmbedding, message: "zero vector",
                             posterPath: "/p2.jpg", source: nil, identity: Self.idA),
            attempts: 1, firstFailedAt: t1, lastAttemptAt: t1)
        func same(_ a: [SkipRecord], _ b: [SkipRecord]) -> Bool {
            a.count == b.count && zip(a, b).allSatisfy {
                $0.skip == $1.skip && $0.attempts == $1.attempts
                    && abs($0.firstFailedAt.timeIntervalSince($1.firstFailedAt)) < 0.001
                    && abs($0.lastAttemptAt.timeIntervalSince($1.lastAttemptAt)) < 0.001
            }
        }
        let r0 = try await store.revision()
        try await store.importSkipRecords([gone, zero])
        #expect(try await store.revision() != r0)
        #expect(same(try await store.skipRecords(movieIDs: nil), [gone, zero]))
        try await store.importSkipRecords([gone, zero])
        #expect(same(try await store.skipRecords(movieIDs: nil), [gone, zero]))

        // Replacing: the imported count and times win over the stored ones, even for the same poster.
        try await store.recordSkips([gone.skip], at: t1.addingTimeInterval(60))
        #expect(try await store.skipRecords(movieIDs: [1]).first?.attempts == 4)
        var fewer = gone
        fewer.attempts = 2
        try await store.importSkipRecords([fewer])
        #expect(same(try await store.skipRecords(movieIDs: [1]), [fewer]))

        // All or nothing, and bad records are refused.
        var unknown = zero
        unknown.skip.movieID = 99
        await #expect(throws: StoreError.unknownMovie(99)) { try await store.importSkipRecords([gone, unknown]) }
        var noAttempts = zero
        noAttempts.attempts = 0
        await #expect(throws: StoreError.self) { try await store.importSkipRecords([noAttempts]) }
        var backwards = zero
        backwards.firstFailedAt = t1.addingTimeInterval(1)
        await #expect(throws: StoreError.self) { try await store.importSkipRecords([backwards]) }
        #expect(same(try await reopen().skipRecords(movieIDs: nil), [fewer, zero]))
    }

    /// Skip records: one per (movie, space or poster), counted per attempt, reset for another poster, kept by a
    /// failed write, settled by a stored vector, deleted with the movie, counted in `stats`.
    func skipRecordsLifecycle() async throws {
        let (store, reopen) = try await prepared()
        try await store.upsertMovies((1...4).map { Self.movie($0) })
        #expect(try await store.skipRecords(movieIDs: nil).isEmpty)
        #expect(try await store.stats().skips == .none)
        let t0 = Date(timeIntervalSince1970: 1_700_000_000.25)
        let gone = PosterSkip(
            movieID: 1, space: nil, reason: .posterNotFound, httpStatus: 404, message: "not found (404)",
            posterPath: "/p1.jpg", source: "http://img.example/t/p/original/p1.jpg")
        let down = PosterSkip(
            movieID: 2, space: nil, reason: .serverError, httpStatus: 503, message: "HTTP 503",
            posterPath: "/p2.jpg", source: "http://img.example/t/p/original/p2.jpg")
        let zero = PosterSkip(
            movieID: 2, space: "clip", reason: .invalidEmbedding, message: "zero vector", posterPath: "/p2.jpg",
            source: "/cache/p2.jpg", identity: Self.idA)
        // A space that is not registered may still be named (the record outlives a model's removal).
        let noPoster = PosterSkip(
            movieID: 3, space: "vgg16", reason: .preprocessingFailed, message: "aspect ratio", posterPath: nil,
            source: nil, identity: Self.idR)
        let r0 = try await store.revision()
        try await store.recordSkips([gone, down, zero, noPoster], at: t0)
        #expect(try await store.revision() != r0)

        var records = try await store.skipRecords(movieIDs: nil)
        #expect(records.map(\.skip) == [gone, down, zero, noPoster])
        #expect(records.allSatisfy { $0.attempts == 1 })
        #expect(records.allSatisfy {
            abs($0.firstFailedAt.timeIntervalSince(t0)) < 0.001 && abs($0.lastAttemptAt.timeIntervalSince(t0)) < 0.001
        })
        #expect(try await store.skipRecords(movieIDs: [3, 99]).map(\.skip) == [noPoster])
        #expect(try await store.skipRecords(movieIDs: []).isEmpty)

        // Another failure of the same poster: one more attempt, the new details, the first time kept. A key repeated
        // in one call counts once, the last occurrence winning.
        let t1 = t0.addingTimeInterval(60)
        var timeout = down
        timeout.reason = .timeout
        timeout.httpStatus = nil
        timeout.message = "deadline exceeded"
        try await store.recordSkips([down, timeout], at: t1)
        records = try await store.skipRecords(movieIDs: [2])
        #expect(records.map(\.skip) == [timeout, zero])
        #expect(records[0].attempts == 2 && records[1].attempts == 1)
        #expect(abs(records[0].firstFailedAt.timeIntervalSince(t0)) < 0.001)
        #expect(abs(records[0].lastAttemptAt.timeIntervalSince(t1)) < 0.001)

        // Another poster_path is another poster: the count starts again.
        var moved = gone
        moved.posterPath = "/p1-new.jpg"
        try await store.recordSkips([moved], at: t1)
        let movedRecord = try #require(try await store.skipRecords(movieIDs: [1]).first)
        #expect(movedRecord.skip == moved && movedRecord.attempts == 1)
        #expect(abs(movedRecord.firstFailedAt.timeIntervalSince(t1)) < 0.001)

        let stats = try await store.stats().skips
        #expect(stats == SkipStats(
            records: 4, movies: 3,
            byReason: ["poster_not_found": 1, "timeout": 1, "invalid_embedding": 1, "preprocessing_failed": 1]))
        #expect(stats.transient == 1)

        // All or nothing: an unknown movie anywhere fails the whole call; bad input is refused.
        let before = try await store.skipRecords(movieIDs: nil)
        var unknown = gone
        unknown.movieID = 77
        await #expect(throws: StoreError.unknownMovie(77)) {
            try await store.recordSkips([down, unknown], at: t1.addingTimeInterval(1))
        }
        var emptySpace = zero
        emptySpace.space = ""
        await #expect(throws: StoreError.self) { try await store.recordSkips([emptySpace], at: t1) }
        #expect(try await store.skipRecords(movieIDs: nil) == before)

        // A stored vector settles its pair and the poster's own record, and nothing else: movie 2's resnet50 vector
        // removes the poster record (the poster was fetched after all) but not clip's record.
        try await store.upsertEmbeddings(
            [EmbeddingInput(movieID: 2, vector: [1, 0, 0])], space: "resnet50", identity: Self.idR)
        #expect(try await store.skipRecords(movieIDs: [2]).map(\.skip) == [zero])
        // A batch that fails settles nothing.
        await #expect(throws: StoreError.unknownMovie(99)) {
            try await store.upsertEmbeddings(
                [EmbeddingInput(movieID: 2, vector: [1, 0, 0, 0]), EmbeddingInput(movieID: 99, vector: [0, 1, 0, 0])],
                space: "clip", identity: Self.idA)
        }
        #expect(try await store.skipRecords(movieIDs: [2]).map(\.skip) == [zero])
        try await store.upsertEmbeddings(
            [EmbeddingInput(movieID: 2, vector: [1, 0, 0, 0])], space: "clip", identity: Self.idA)
        #expect(try await store.skipRecords(movieIDs: [2]).isEmpty)

        // Records survive reopening, and go with their movie.
        let again = try await reopen()
        #expect(try await again.skipRecords(movieIDs: nil).map(\.skip) == [moved, noPoster])
        #expect(try await again.deleteMovies(ids: [1]) == 1)
        #expect(try await again.skipRecords(movieIDs: nil).map(\.skip) == [noPoster])
        #expect(try await again.stats().skips == SkipStats(records: 1, movies: 1, byReason: ["preprocessing_failed": 1]))
    }
}
