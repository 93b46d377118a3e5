// The routes that embed (image search, text search, the model list) over a small fake `EmbeddingModel`: the server
// depends on the protocol only, so these run without any checkpoint and pin down the wiring between the upload, the
// model, the store and the answer.
import Embedding
import Foundation
import Imaging
import NIOHTTP1
import PosterSimCore
import Server
import Store
import Testing

/// A model that needs no weights: an image's vector is the mean of each normalised channel, a text's is its length,
/// its count of vowels and 1. Both are genuine functions of the input, cheap to recompute in the test.
struct FakeEmbeddingModel: EmbeddingModel {
    let name = ModelName.clip
    let space = VectorSpace(name: "clip", dimension: 3, metric: .cosine)
    let identity = ModelIdentity(repo: "test/fake-clip", weightsSHA256: String(repeating: "a", count: 64))
    let preprocessor: ImagePreprocessor
    var supportsText: Bool { true }

    init() throws {
        // Only the preprocessing config is read from the fixture folder; no weights are loaded.
        preprocessor = try ImagePreprocessor.load(modelDirectory: Fixtures.root.appendingPathComponent("checkpoints/clip"))
    }

    func embed(_ batch: ImageTensor) throws -> [[Float]] {
        let (count, channels) = (batch.shape[0], batch.shape[1])
        let plane = batch.shape[2] * batch.shape[3]
        return (0..<count).map { image in
            (0..<channels).map { channel in
                let start = (image * channels + channel) * plane
                return batch.values[start..<(start + plane)].reduce(0, +) / Float(plane)
            }
        }
    }

    func embed(texts: [String]) throws -> [[Float]] {
        texts.map { [Float($0.count), Float($0.filter { "aeiou".contains($0) }.count), 1] }
    }
}

extension AllServerTests {
    @Suite struct FakeModelRoutesTests {
        /// Three movies whose 3-d vectors point different ways, so each query has one clear best match.
        static let vectors: [MovieID: [Float]] = [1: [1, -1, -1], 2: [-1, 1, -1], 3: [5, 2, 1]]

        func store(for model: FakeEmbeddingModel, approximateFrom: Int? = SQLiteVectorStore.defaultApproximateSearchFrom)
            async throws -> SQLiteVectorStore
        {
            let store = try SQLiteVectorStore(
                path: try Fixtures.temporaryFolder().appendingPathComponent("s.sqlite").path,
                approximateSearchFrom: approximateFrom)
            try await store.upsertMovies((1...3).map(Fixtures.movie))
            _ = try await store.registerSpace(model.space, identity: model.identity)
            try await store.upsertEmbeddings(
                Self.vectors.map { EmbeddingInput(movieID: $0.key, vector: $0.value) }, space: "clip",
                identity: model.identity)
            return store
        }

        /// Ids ranked by cosine similarity to `query`, as a brute force over the three vectors.
        func ranked(_ query: [Float]) -> [String] {
            func cosine(_ a: [Float], _ b: [Float]) -> Float {
                zip(a, b).map(*).reduce(0, +) / (a.map { $0 * $0 }.reduce(0, +).squareRoot() * b.map { $0 * $0 }.reduce(0, +).squareRoot())
            }
            return Self.vectors.sorted { cosine($0.value, query) > cosine($1.value, query) }.map { String($0.key) }
        }

        @Test func imageSearchEmbedsTheUploadWithTheServedModel() async throws {
            let model = try FakeEmbeddingModel()
            let store = try await store(for: model)
            let bytes = try Fixtures.image(Fixtures.imageFiles[0])
            let expected = ranked(try model.embed(images: [PosterDecoder().decode(bytes)])[0])
            try await withServer(store: store, models: [model]) { server in
                let reply = try await server.request(
                    "/api/search/image?model=CLIP&topK=3", method: .POST,
                    headers: [("Content-Type", "application/octet-stream")], body: bytes)
                #expect(reply.status == 200, "\(reply.text)")
                #expect(try reply.decode(MatchesOutput.self).matches.map(\.id) == expected)
                // A model this server did not load is unavailable, not an error of the request.
                let other = try await server.request("/api/search/image?model=VGG16", method: .POST, body: bytes)
                #expect(other.status == 503)
            }
        }

        /// `exact=true` reaches the store: a space big enough for the lists' approximate search scans instead.
        @Test func exactParameterForcesTheScan() async throws {
            let model = try FakeEmbeddingModel()
            let store = try await store(for: model, approximateFrom: 1)
            let bytes = try Fixtures.image(Fixtures.imageFiles[0])
            try await withServer(store: store, models: [model]) { server in
                for (query, approximate) in [("", 1), ("&exact=true", 1), ("&exact=false", 2)] {
                    let reply = try await server.request(
                        "/api/search/image?model=CLIP&topK=3\(query)", method: .POST,
                        headers: [("Content-Type", "application/octet-stream")], body: bytes)
                    #expect(reply.status == 200, "\(reply.text)")
                    #expect(store.approximateQueryCount == approximate, "after \(query)")
                }
                let bad = try await server.request("/api/search/image?model=CLIP&exact=maybe", method: .POST, body: bytes)
                #expect(bad.status == 400)
            }
        }

        @Test func textSearchAndModelListUseTheProtocol() async throws {
            let model = try FakeEmbeddingModel()
            let store = try await store(for: model)
            try await withServer(store: store, models: [model]) { server in
                let reply = try await server.get("/api/search/text?q=\(q("a bright sea"))&topK=3")
                #expect(reply.status == 200, "\(reply.text)")
                #expect(try reply.decode(MatchesOutput.self).matches.map(\.id) == ranked(try model.embed(texts: ["a bright sea"])[0]))
                let list = try #require(try await server.get("/api/models").json() as? [[String: Any]])
                let clip = try #require(list.first { $0["id"] as? String == "clip" })
                #expect(clip["loaded"] as? Bool == true)
                #expect(clip["text"] as? Bool == true)
                #expect(clip["dimension"] as? Int == 3)
                #expect(clip["repo"] as? String == "test/fake-clip")
                #expect(clip["checkpointMatchesStore"] as? Bool == true)
                #expect(list.filter { $0["loaded"] as? Bool == true }.count == 1)
            }
        }
    }
}
