import Foundation
import Testing

@testable import Store

/// `fetchVectors` (a match's `values` in the HTTP API) gives back the stored vectors, current ones only.
@Suite struct FetchVectorsTests {
    @Test func storedVectorsComeBack() async throws {
        let store = try SQLiteVectorStore(path: try TempStore.newPath())
        let space = VectorSpace(name: "resnet50", dimension: 3, metric: .euclidean)
        let identity = ModelIdentity(repo: "microsoft/resnet-50", weightsSHA256: String(repeating: "c", count: 64))
        try await store.registerSpace(space, identity: identity)
        try await store.upsertMovies([Movie(id: 1, title: "One"), Movie(id: 2, title: "Two"), Movie(id: 3, title: "Three")])
        try await store.upsertEmbeddings(
            [EmbeddingInput(movieID: 1, vector: [1, 2, 3]), EmbeddingInput(movieID: 2, vector: [-0.5, 0, 7.25])],
            space: "resnet50", identity: identity)
        let vectors = try await store.fetchVectors(ids: [2, 3, 1, 99], space: "resnet50")
        #expect(vectors == [1: [1, 2, 3], 2: [-0.5, 0, 7.25]])
        await #expect(throws: StoreError.unknownSpace("clip")) { try await store.fetchVectors(ids: [1], space: "clip") }
    }
}
