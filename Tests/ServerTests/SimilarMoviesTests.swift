// GET /api/get-similar-movies: the original front end's contract.
import PosterSimCore
import Foundation
import Imaging
import ModelHub
import Server
import Store
import Testing

extension AllServerTests {
    @Suite struct SimilarMoviesTests {
        /// What the original front end's `fetchSimilarMovies` keeps of each match:
        /// `data.matches.map(m => ({id: m.metadata.id, title: m.metadata.title, poster_path: m.metadata.poster_path,
        ///  release_date: m.metadata.release_date, overview: m.metadata.overview, vote_average: m.metadata.vote_average,
        ///  score: m.score}))`.
        struct FrontEndMovie: Equatable {
            let id: String
            let title: String
            let poster_path: String?
            let release_date: String?
            let overview: String?
            let vote_average: Double?
            let score: Float
        }

        /// The mapping replayed on the raw JSON (as JavaScript sees it: loose objects, no schema).
        static func fetchSimilarMovies(_ json: Any) throws -> [FrontEndMovie] {
            guard let data = json as? [String: Any], let matches = data["matches"] as? [[String: Any]] else {
                throw TestFailure("no matches array")
            }
            return try matches.map { m in
                guard let metadata = m["metadata"] as? [String: Any], let score = (m["score"] as? NSNumber)?.floatValue,
                    let id = metadata["id"] as? String, let title = metadata["title"] as? String
                else { throw TestFailure("match without metadata.id, metadata.title or a numeric score: \(m)") }
                return FrontEndMovie(
                    id: id, title: title, poster_path: metadata["poster_path"] as? String,
                    release_date: metadata["release_date"] as? String, overview: metadata["overview"] as? String,
                    vote_average: metadata["vote_average"] as? Double, score: score)
            }
        }

        static let metadataKeys: Set<String> = [
            "id", "title", "original_title", "overview", "poster_path", "backdrop_path", "release_date", "vote_average",
            "vote_count", "popularity", "genre_ids", "original_language", "adult", "video",
        ]

        @Test(arguments: StoreBackend.available) func pineconeShapeAndFrontEndMapping(backend: StoreBackend) async throws {
            let store = try await Fixtures.populatedStore(on: backend)
            try await withServer(store: store) { server in
                for name in ModelName.allCases {
                    let reply = try await server.get("/api/get-similar-movies?movieId=3&model=\(q(name.apiName))")
                    #expect(reply.status == 200, "\(name): \(reply.text)")
                    #expect(reply.headers["Content-Type"].first?.hasPrefix("application/json") == true)
                    let object = try reply.object()
                    #expect(Set(object.keys) == ["matches", "namespace"])
                    #expect(object["namespace"] as? String == name.rawValue)
                    let matches = try #require(object["matches"] as? [[String: Any]])
                    #expect(matches.count == 10)
                    for match in matches {
                        #expect(Set(match.keys) == ["id", "score", "metadata"])
                        #expect(Set((match["metadata"] as? [String: Any] ?? [:]).keys) == Self.metadataKeys)
                        #expect(match["id"] as? String == (match["metadata"] as? [String: Any])?["id"] as? String)
                    }
                    // The same matches the store gives, in order, with the movie itself first.
                    let expected = try await store.query(space: name.rawValue, movieID: 3, k: 10)
                    let mapped = try Self.fetchSimilarMovies(try reply.json())
                    #expect(mapped.map(\.id) == expected.map { String($0.movieID) })
                    #expect(mapped.first?.id == "3")
                    for (movie, match) in zip(mapped, expected) {
                        let stored = Fixtures.movie(match.movieID)
                        #expect(
                            movie
                                == FrontEndMovie(
                                    id: String(stored.id), title: stored.title, poster_path: stored.posterPath,
                                    release_date: stored.releaseDate, overview: stored.overview,
                                    vote_average: stored.voteAverage, score: match.score))
                    }
                    let scores = mapped.map(\.score)
                    #expect(scores == (name == .clip ? scores.sorted(by: >) : scores.sorted()))
                }
            }
        }

        @Test(arguments: StoreBackend.available) func topKValuesAndFilters(backend: StoreBackend) async throws {
            let store = try await Fixtures.populatedStore(on: backend)
            try await withServer(store: store) { server in
                let five = try await server.get("/api/get-similar-movies?movieId=2&model=ResNet-50&topK=5&includeValues=true")
                #expect(five.status == 200)
                let matches = try five.decode(MatchesOutput.self).matches
                #expect(matches.count == 5)
                let vectors = try await store.fetchVectors(ids: matches.compactMap { Int($0.id) }, space: "resnet50")
                for match in matches {
                    #expect(match.values != nil && match.values == vectors[Int(match.id)!])
                }
                // Filters: release year range, genre, language, minimum votes.
                let filtered = try await server.get(
                    "/api/get-similar-movies?movieId=2&model=CLIP&topK=20&yearFrom=1966&yearTo=1990&genre=18&language=en&minVotes=100")
                #expect(filtered.status == 200)
                let ids = try filtered.decode(MatchesOutput.self).matches.map { Int($0.id)! }
                let expected = (1...12).map(Fixtures.movie).filter {
                    SearchFilter(minYear: 1966, maxYear: 1990, genreID: 18, originalLanguage: "en", minVoteCount: 100).accepts($0)
                }.map(\.id)
                #expect(Set(ids) == Set(expected) && !ids.isEmpty)
                #expect(ids.first == 2)
            }
        }

        @Test(arguments: StoreBackend.available) func errorsAreTheOriginalsAndJSON(backend: StoreBackend) async throws {
            let store = try await Fixtures.populatedStore(count: 3, on: backend)
            try await withServer(store: store) { server in
                for path in [
                    "/api/get-similar-movies", "/api/get-similar-movies?movieId=1", "/api/get-similar-movies?model=CLIP",
                    "/api/get-similar-movies?movieId=1&model=Inception", "/api/get-similar-movies?movieId=abc&model=CLIP",
                    "/api/get-similar-movies?movieId=-4&model=CLIP", "/api/get-similar-movies?movieId=&model=",
                    "/api/get-similar-movies?movieId=99999999999999999999999&model=CLIP",
                ] {
                    let reply = try await server.get(path)
                    #expect(reply.status == 400, "\(path)")
                    #expect(reply.text == #"{"error":"Movie ID and valid model type are required"}"#, "\(path)")
                }
                let missing = try await server.get("/api/get-similar-movies?movieId=424242&model=CLIP")
                #expect(missing.status == 404)
                #expect(missing.errorMessage == "Movie 424242 not found")
                for bad in ["topK=0", "topK=101", "topK=x", "includeValues=maybe", "yearFrom=abc", "minVotes=-1", "language=%3Cscript%3E"] {
                    let reply = try await server.get("/api/get-similar-movies?movieId=1&model=CLIP&\(bad)")
                    #expect(reply.status == 400, "\(bad)")
                    #expect(reply.errorMessage != nil, "\(bad)")
                }
                // A movie without a vector in a space.
                try await store.upsertMovies([Fixtures.movie(50)])
                let noVector = try await server.get("/api/get-similar-movies?movieId=50&model=VGG16")
                #expect(noVector.status == 404 && noVector.errorMessage == "Movie 50 has no VGG16 embedding yet")
            }
        }

        /// A cached answer is dropped as soon as the store changes.
        @Test func cacheFollowsTheStore() async throws {
            let store = try await Fixtures.populatedStore(count: 6)
            try await withServer(store: store) { server in
                let path = "/api/get-similar-movies?movieId=1&model=CLIP"
                let first = try await server.get(path)
                let again = try await server.get(path)
                #expect(first.body == again.body)
                var renamed = Fixtures.movie(1)
                renamed.title = "Renamed After Caching"
                try await store.upsertMovies([renamed])
                let after = try await server.get(path)
                let titles = try after.decode(MatchesOutput.self).matches.map(\.metadata.title)
                #expect(titles.first == "Renamed After Caching")
                try await store.deleteMovies(ids: [1])
                #expect(try await server.get(path).status == 404)
            }
        }

        /// `postersim ingest` in another process: the server's store instance sees its commits.
        @Test func anotherProcessesWritesShowUp() async throws {
            let folder = try Fixtures.temporaryFolder()
            let path = folder.appendingPathComponent("shared.sqlite").path
            let writer = try SQLiteVectorStore(path: path)
            let reader = try SQLiteVectorStore(path: path, externalCheckInterval: .milliseconds(10))
            let served = try await Fixtures.loadedModels()[0]
            try await writer.registerSpace(served.space, identity: served.identity)
            try await withServer(store: reader) { server in
                let path = "/api/get-similar-movies?movieId=1&model=CLIP&topK=3"
                #expect(try await server.get(path).status == 404)
                try await writer.upsertMovies([Fixtures.movie(1)])
                let vector = try await Fixtures.vector(of: Fixtures.imageFiles[0], model: .clip)
                try await writer.upsertEmbeddings([EmbeddingInput(movieID: 1, vector: vector)], space: "clip", identity: served.identity)
                var status = 0
                for _ in 0..<500 {
                    status = try await server.get(path).status
                    if status == 200 { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(status == 200)
            }
        }
    }
}
