// Load: the bounded embedding pool, and readers during an in-process ingest.
import NIOHTTP1
import Embedding
import PosterSimCore
import Foundation
import Imaging
import Ingest
import Models
import Server
import Store
import Synchronization
import Testing

/// A value shared by concurrent tasks.
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
    var value: Value { mutex.withLock { $0 } }
}

extension AllServerTests {
    @Suite struct ConcurrencyTests {
        @Test func poolRejectsWhenFullAndRunsInOrder() async throws {
            let pool = EmbeddingPool(maxConcurrent: 1, maxQueued: 1)
            let gate = DispatchSemaphore(value: 0)
            let order = Shared<[Int]>([])
            async let first: Int = pool.run {
                gate.wait()
                order.withLock { $0.append(1) }
                return 1
            }
            while pool.load.running < 1 { try await Task.sleep(for: .milliseconds(1)) }
            async let second: Int = pool.run {
                order.withLock { $0.append(2) }
                return 2
            }
            while pool.load.queued < 1 { try await Task.sleep(for: .milliseconds(1)) }
            // Rejected at once: the answer comes while the running job is still held at the gate and the queue is
            // unchanged, so the pool waited for no slot (one that waited could not answer before the signal). No
            // wall-clock bound, which a busy machine could miss.
            await #expect(throws: EmbeddingPoolBusy.self) { try await pool.run { 3 } }
            #expect(pool.load == (1, 1))
            #expect(order.value.isEmpty)
            gate.signal()
            #expect(try await first == 1)
            #expect(try await second == 2)
            #expect(order.value == [1, 2])
            #expect(pool.load == (0, 0))
        }

        /// More uploads than the pool takes: the excess gets 503 with Retry-After, quickly; the rest succeed.
        @Test func busyServerAnswers503WithRetryAfter() async throws {
            let store = try await Fixtures.populatedStore(count: 3)
            var configuration = Fixtures.testConfiguration
            configuration.embedConcurrency = 1
            configuration.embedQueueLimit = 0
            let image = try Fixtures.image("jpeg_large_500x750.jpg")
            try await withServer(configuration, store: store) { server in
                let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                    for _ in 0..<12 {
                        group.addTask {
                            try await server.request("/api/search/image?model=VGG16", method: .POST, body: image)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(replies.allSatisfy { [200, 503].contains($0.status) })
                let rejected = replies.filter { $0.status == 503 }
                #expect(!rejected.isEmpty)
                #expect(replies.contains { $0.status == 200 })
                for reply in rejected {
                    #expect(reply.headers["Retry-After"].first == "1")
                    #expect(reply.errorMessage != nil)
                }
            }
        }

        /// Requests while the ingest pipeline writes batches into the same store: every answer is either a 404 (the
        /// movie is not embedded yet) or complete matches whose metadata is the movie's, never a partial movie, never a
        /// 500.
        @Test func readersDuringAnIngestSeeWholeMovies() async throws {
            let folder = try Fixtures.temporaryFolder()
            let posters = folder.appendingPathComponent("posters")
            try FileManager.default.createDirectory(at: posters, withIntermediateDirectories: true)
            let count = 24
            var list: [[String: Any]] = []
            for i in 1...count {
                let movie = Fixtures.movie(i)
                let file = Fixtures.imageFiles[(i - 1) % Fixtures.imageFiles.count]
                try Data(try Fixtures.image(file)).write(to: posters.appendingPathComponent("m\(i)-\(file)"))
                list.append([
                    "id": i, "title": movie.title, "original_title": movie.originalTitle!, "overview": movie.overview!,
                    "release_date": movie.releaseDate!, "poster_path": "/m\(i)-\(file)", "genre_ids": movie.genreIDs,
                    "original_language": movie.originalLanguage!, "popularity": movie.popularity!,
                    "vote_average": movie.voteAverage!, "vote_count": movie.voteCount!, "adult": false, "video": false,
                ])
            }
            let json = folder.appendingPathComponent("movies.json")
            try JSONSerialization.data(withJSONObject: list).write(to: json)
            let store = try SQLiteVectorStore(path: folder.appendingPathComponent("store.sqlite").path)
            var ingest = IngestConfiguration(source: .jsonFile(json.path))
            ingest.postersDirectory = posters.path
            ingest.posterCacheDirectory = nil
            ingest.batchSize = 2
            ingest.tmdb = TMDBSettings(baseURL: "http://127.0.0.1:9/3", imageBaseURL: "http://127.0.0.1:9/t/p")
            let pipeline = IngestPipeline(
                configuration: ingest, store: store, embedders: try await Fixtures.loadedModels())

            try await withServer(store: store) { server in
                let done = Shared(false)
                let seen = Shared<[Int]>([0, 0])
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        let summary = try await pipeline.run()
                        #expect(summary.embedded == count)
                        done.withLock { $0 = true }
                    }
                    for reader in 0..<3 {
                        group.addTask {
                            var i = reader
                            repeat {
                                i += 1
                                let id = 1 + i % count
                                let model = ["CLIP", "ResNet-50", "VGG16"][i % 3]
                                let r = try await server.get("/api/get-similar-movies?movieId=\(id)&model=\(model)&topK=40")
                                if r.status == 404 {
                                    seen.withLock { $0[1] += 1 }
                                    continue
                                }
                                #expect(r.status == 200, "\(r.status) \(r.text)")
                                guard r.status == 200 else { continue }
                                seen.withLock { $0[0] += 1 }
                                let matches = try r.decode(MatchesOutput.self).matches
                                #expect(matches.first?.id == String(id))
                                for match in matches {
                                    let expected = MatchMetadata(Fixtures.movie(Int(match.id)!))
                                    #expect(match.metadata.title == expected.title && match.metadata.overview == expected.overview)
                                    #expect(match.metadata.release_date == expected.release_date)
                                    #expect(match.metadata.poster_path?.hasPrefix("/m\(match.id)-") == true)
                                }
                                let titles = try await server.get("/api/movies?q=&limit=100")
                                #expect(titles.status == 200)
                                // Paced: the point is overlap with the writes, not load (other suites run beside this one).
                                try await Task.sleep(for: .milliseconds(3))
                            } while !done.value
                        }
                    }
                    try await group.waitForAll()
                }
                // After the ingest, every movie answers under every model.
                for id in 1...count {
                    for model in ["CLIP", "ResNet-50", "VGG16"] {
                        let r = try await server.get("/api/get-similar-movies?movieId=\(id)&model=\(model)&topK=3")
                        #expect(r.status == 200, "\(id) \(model)")
                    }
                }
                #expect(seen.value[0] > 0)
            }
        }
    }
}
