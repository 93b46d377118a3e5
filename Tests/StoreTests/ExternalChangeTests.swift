import PosterSimCore
import Foundation
import Testing

@testable import Store

/// Two `SQLiteVectorStore` instances on one file stand for `postersim serve` and a `postersim ingest` running beside
/// it: the reader's in-memory indexes follow the other's commits.
@Suite struct ExternalChangeTests {
    static let clip = VectorSpace(name: "clip", dimension: 4, metric: .cosine)
    static let identity = ModelIdentity(repo: "openai/clip-vit-base-patch32", weightsSHA256: String(repeating: "a", count: 64))

    static func movie(_ id: Int) -> Movie { Movie(id: id, title: "Movie \(id)", releaseDate: "2001-01-01", popularityRank: id) }

    @Test func readerReloadsAfterAnotherInstanceCommits() async throws {
        let path = try TempStore.newPath()
        let server = try SQLiteVectorStore(path: path, externalCheckInterval: .zero)
        let ingest = try SQLiteVectorStore(path: path)
        try await ingest.registerSpace(Self.clip, identity: Self.identity)
        try await ingest.upsertMovies([Self.movie(1), Self.movie(2)])
        try await ingest.upsertEmbeddings(
            [EmbeddingInput(movieID: 1, vector: [1, 0, 0, 0]), EmbeddingInput(movieID: 2, vector: [0, 1, 0, 0])],
            space: "clip", identity: Self.identity)

        // The server opened the file before any of it; its next read sees it all.
        #expect(try await server.revision() == ingest.revision())
        #expect(try await server.query(space: "clip", vector: [1, 0.1, 0, 0], k: 5).map(\.movieID) == [1, 2])

        let before = try await server.revision()
        try await ingest.upsertMovies([Self.movie(3)])
        try await ingest.upsertEmbeddings(
            [EmbeddingInput(movieID: 3, vector: [1, 0.05, 0, 0])], space: "clip", identity: Self.identity)
        #expect(try await server.query(space: "clip", vector: [1, 0.1, 0, 0], k: 5).map(\.movieID) == [3, 1, 2])
        #expect(try await server.revision() != before)
        #expect(try await server.query(space: "clip", movieID: 3, k: 1).map(\.movieID) == [3])

        try await ingest.deleteMovies(ids: [1])
        #expect(try await server.query(space: "clip", vector: [1, 0.1, 0, 0], k: 5).map(\.movieID) == [3, 2])
    }

    /// A write by an instance whose indexes are behind the file reloads rather than patching, so it loses neither
    /// the other's rows nor its own.
    @Test func writerBehindTheFileReloads() async throws {
        let path = try TempStore.newPath()
        let a = try SQLiteVectorStore(path: path, externalCheckInterval: .seconds(3600))
        let b = try SQLiteVectorStore(path: path, externalCheckInterval: .seconds(3600))
        try await a.registerSpace(Self.clip, identity: Self.identity)
        try await a.upsertMovies([Self.movie(1), Self.movie(2)])
        try await a.upsertEmbeddings([EmbeddingInput(movieID: 1, vector: [1, 0, 0, 0])], space: "clip", identity: Self.identity)
        // b has not looked at the file since it opened (long interval); its own write brings everything in.
        try await b.registerSpace(Self.clip, identity: Self.identity)
        try await b.upsertEmbeddings([EmbeddingInput(movieID: 2, vector: [0, 1, 0, 0])], space: "clip", identity: Self.identity)
        #expect(try await b.query(space: "clip", vector: [1, 1, 0, 0], k: 5).map(\.movieID) == [1, 2])
        #expect(try await a.reloadIfChanged())
        #expect(try await b.revision() == a.revision())
        #expect(try await a.query(space: "clip", vector: [1, 1, 0, 0], k: 5).map(\.movieID) == [1, 2])
    }

    /// Without a check due, the reader keeps serving its loaded indexes (no file access per query).
    @Test func checksAreSpaced() async throws {
        let path = try TempStore.newPath()
        let server = try SQLiteVectorStore(path: path, externalCheckInterval: .seconds(3600))
        let ingest = try SQLiteVectorStore(path: path)
        let r0 = try await server.revision()
        try await ingest.upsertMovies([Self.movie(1)])
        #expect(try await server.revision() == r0)
        #expect(try await server.reloadIfChanged())
        #expect(try await server.revision() != r0)
    }
}
