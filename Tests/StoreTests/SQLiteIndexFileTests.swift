import PosterSimCore
import TestSupport
import Foundation
import Testing

@testable import Store

/// The SQLite store's index file (`<db>.index`): used when current, rebuilt when stale or damaged, and answers equal to
/// a load from the rows in every case.
@Suite struct SQLiteIndexFileTests {
    static let clip = NeighbourListContract.cosine
    static let vgg = NeighbourListContract.euclidean
    static let languages = ["en", "fr", "ja", "de"]

    /// A store with 240 movies of varied filter fields and vectors in a cosine and a euclidean space.
    static func populated(_ path: String, seed: UInt64 = 5) async throws -> SQLiteVectorStore {
        let store = try SQLiteVectorStore(path: path)
        try await store.registerSpace(clip, identity: NeighbourListContract.idA)
        try await store.registerSpace(vgg, identity: NeighbourListContract.idV)
        try await store.upsertMovies((1...240).map(movie))
        var rng = SplitMix64(seed: seed)
        for space in [clip, vgg] {
            let identity = space == clip ? NeighbourListContract.idA : NeighbourListContract.idV
            // Two batches, the second replacing some vectors: the snapshot then has tombstoned rows.
            try await store.upsertEmbeddings(
                (1...200).map { EmbeddingInput(movieID: $0, vector: Self.vector(&rng, space.dimension)) },
                space: space.name, identity: identity)
            try await store.upsertEmbeddings(
                (150...240).map { EmbeddingInput(movieID: $0, vector: Self.vector(&rng, space.dimension)) },
                space: space.name, identity: identity)
        }
        return store
    }

    static func movie(_ id: Int) -> Movie {
        VectorStoreContract.movie(
            id, year: id % 11 == 0 ? nil : 1980 + id % 40, genres: [[18], [35, 18], [27], [99, 35]][id % 4],
            lang: languages[id % languages.count], adult: id % 13 == 0, votes: id * 7 % 500)
    }

    static func vector(_ rng: inout SplitMix64, _ dimension: Int) -> [Float] {
        var v = (0..<dimension).map { _ in Float(Int.random(in: -40...40, using: &rng)) / 8 }
        if v.allSatisfy({ $0 == 0 }) { v[0] = 1 }
        return v
    }

    static let filters: [SearchFilter] = [
        .init(), .init(minYear: 1990, maxYear: 2005), .init(genreID: 35), .init(originalLanguage: "ja"),
        .init(adult: false, minVoteCount: 200), .init(genreID: 27, originalLanguage: "en"), .init(originalLanguage: "xx"),
    ]

    /// Queries by id (with and without filters) and by vector in both spaces: what the comparisons compare.
    static func answers(_ store: SQLiteVectorStore) async throws -> [[SearchMatch]] {
        var out: [[SearchMatch]] = []
        var rng = SplitMix64(seed: 77)
        for space in [clip, vgg] {
            for id in stride(from: 3, through: 240, by: 17) {
                for filter in filters {
                    out.append(try await store.query(space: space.name, movieID: id, k: 10, filter: filter, excludeSelf: true))
                }
                out.append(try await store.query(space: space.name, movieID: id, k: 150, filter: .none, excludeSelf: false))
            }
            for _ in 0..<6 {
                let v = vector(&rng, space.dimension)
                for filter in filters { out.append(try await store.query(space: space.name, vector: v, k: 12, filter: filter)) }
            }
        }
        return out
    }

    /// The answers of a store opened on `path` without the index file (decoded rows).
    static func rowAnswers(_ path: String) async throws -> [[SearchMatch]] {
        let rows = try SQLiteVectorStore(path: path, indexFile: .off)
        #expect(rows.indexLoad == .rows(because: nil))
        return try await answers(rows)
    }

    static func isMapped(_ store: SQLiteVectorStore, _ space: VectorSpace) -> Bool {
        store.current.value.spaces[space.name]?.storage.isMapped ?? false
    }

    @Test func mappedWhenCurrentAndAnswersEqualRows() async throws {
        let path = try TempStore.newPath()
        let store = try await Self.populated(path)
        #expect(store.indexLoad == .rows(because: .missing))
        #expect(try await store.writeIndexFile())
        #expect(try await store.writeIndexFile() == false)  // already current
        let expected = try await Self.rowAnswers(path)
        #expect(try await Self.answers(store) == expected)

        let mapped = try SQLiteVectorStore(path: path)
        #expect(mapped.indexLoad == .mapped)
        #expect(Self.isMapped(mapped, Self.clip) && Self.isMapped(mapped, Self.vgg))
        #expect(try await Self.answers(mapped) == expected)
        let rows = try SQLiteVectorStore(path: path, indexFile: .off)
        for space in [Self.clip, Self.vgg] {
            let a = try #require(mapped.current.value.spaces[space.name])
            let b = try #require(rows.current.value.spaces[space.name])
            #expect(a.rowIDs == b.rowIDs && a.rowMeta == b.rowMeta && a.inverseNorms == b.inverseNorms)
            #expect(mapped.current.value.neighbourBounds[space.name] == rows.current.value.neighbourBounds[space.name])
            let ids = Array(1...240)
            #expect(try await mapped.fetchVectors(ids: ids, space: space.name) == rows.fetchVectors(ids: ids, space: space.name))
        }
        #expect(mapped.current.value.interner == rows.current.value.interner)
        for space in [Self.clip, Self.vgg] {
            #expect(try await mapped.checkNeighbourLists(space: space.name).isConsistent)
        }
    }

    @Test func rebuiltWhenTheRevisionMoved() async throws {
        let path = try TempStore.newPath()
        let store = try await Self.populated(path)
        try await store.writeIndexFile()
        let written = store.loadedRevision.value
        // A change of filter fields only: the vectors are the same, the packed rows are not.
        try await store.upsertMovies([VectorStoreContract.movie(5, year: 1950, genres: [27], lang: "ja", votes: 1)])
        let moved = store.loadedRevision.value
        let reopened = try SQLiteVectorStore(path: path)
        #expect(reopened.indexLoad == .rows(because: .revisionMoved(file: written, store: moved)))
        #expect(try await Self.answers(reopened) == Self.rowAnswers(path))
        #expect(try await reopened.writeIndexFile())
        let mapped = try SQLiteVectorStore(path: path)
        #expect(mapped.indexLoad == .mapped)
        #expect(try await Self.answers(mapped) == Self.rowAnswers(path))
    }

    @Test func rebuiltWhenTheIdentityChanged() async throws {
        let path = try TempStore.newPath()
        let store = try await Self.populated(path)
        try await store.writeIndexFile()
        let header = try SpaceIndexFile.readHeader(path: store.indexFilePath)
        // The file checked against a database whose space has another model at the same revision.
        var other = header.stamp
        other.spaces[0].identity = NeighbourListContract.idB.storedForm
        #expect {
            _ = try SpaceIndexFile.load(path: store.indexFilePath, expecting: other)
        } throws: { error in
            if case IndexFileError.spacesChanged = error { return true }
            return false
        }
        // Through the store: a new model for clip moves the revision and empties the space.
        try await store.registerSpace(Self.clip, identity: NeighbourListContract.idB)
        let reopened = try SQLiteVectorStore(path: path)
        guard case .rows(because: .revisionMoved?) = reopened.indexLoad else {
            Issue.record("expected a load from rows, got \(reopened.indexLoad)")
            return
        }
        #expect(reopened.current.value.spaces[Self.clip.name]?.identity == NeighbourListContract.idB)
        #expect(reopened.current.value.spaces[Self.clip.name]?.liveCount == 0)
        try await reopened.writeIndexFile()
        let mapped = try SQLiteVectorStore(path: path)
        #expect(mapped.indexLoad == .mapped)
        #expect(mapped.current.value.spaces[Self.clip.name]?.identity == NeighbourListContract.idB)
        #expect(mapped.current.value.spaces[Self.clip.name]?.liveCount == 0)
    }

    @Test func anotherDatabasesFileIsNotUsed() async throws {
        // Two databases built by the same writes are at the same revision; one's file beside the other is refused.
        let first = try TempStore.newPath()
        let second = try TempStore.newPath()
        let a = try await Self.populated(first, seed: 1)
        let b = try await Self.populated(second, seed: 2)
        #expect(a.loadedRevision.value == b.loadedRevision.value)
        try await a.writeIndexFile()
        try FileManager.default.copyItem(atPath: a.indexFilePath, toPath: b.indexFilePath)
        let reopened = try SQLiteVectorStore(path: second)
        #expect(reopened.indexLoad == .rows(because: .otherStore))
        #expect(try await Self.answers(reopened) == Self.rowAnswers(second))
    }

    @Test func truncatedOrChangedFileFallsBackToRows() async throws {
        let path = try TempStore.newPath()
        let store = try await Self.populated(path)
        try await store.writeIndexFile()
        let expected = try await Self.rowAnswers(path)
        let pristine = try Data(contentsOf: URL(fileURLWithPath: store.indexFilePath))
        let header = try SpaceIndexFile.readHeader(path: store.indexFilePath)
        let vgg = try #require(header.spaces.first { $0.key.name == Self.vgg.name })
        let size = pristine.count
        // Byte offsets in every part of the file: magic, a matrix, ids, packed rows, bounds, interner, header JSON,
        // trailer (length, checksum, magic).
        let flips = [
            0, vgg.matrix.offset + 13, vgg.ids.offset + 2, vgg.meta.offset + 4, vgg.bounds.offset + 9,
            header.interner.offset + 3, header.bodyLength + 10, size - 24, size - 16, size - 1,
        ]
        let cuts = [0, 7, 31, vgg.matrix.offset + 100, header.bodyLength, size - 24, size - 1]
        var damaged: [(String, Data)] = flips.map { offset in
            var d = pristine
            d[offset] ^= 0x5a
            return ("byte \(offset) changed", d)
        }
        damaged += cuts.map { ("cut to \($0) bytes", pristine.prefix($0)) }
        damaged.append(("a byte appended", pristine + Data([0])))
        for (what, bytes) in damaged {
            try bytes.write(to: URL(fileURLWithPath: store.indexFilePath))
            let opened = try SQLiteVectorStore(path: path)
            guard case .rows(because: let reason?) = opened.indexLoad else {
                Issue.record("\(what): the damaged file was used (\(opened.indexLoad))")
                continue
            }
            guard case .corrupt = reason else {
                Issue.record("\(what): expected corrupt, got \(reason)")
                continue
            }
            #expect(try await Self.answers(opened) == expected, "\(what)")
            // Rewriting replaces the damaged file with a current one.
            #expect(try await opened.writeIndexFile(), "\(what)")
            #expect(try SQLiteVectorStore(path: path).indexLoad == .mapped, "\(what)")
        }
    }

    @Test func writesAfterAMappedOpen() async throws {
        let path = try TempStore.newPath()
        let built = try await Self.populated(path)
        try await built.writeIndexFile()
        let store = try SQLiteVectorStore(path: path)
        #expect(store.indexLoad == .mapped)
        // A deletion tombstones rows and leaves the matrix where it is.
        #expect(try await store.deleteMovies(ids: [7, 8]) == 2)
        #expect(Self.isMapped(store, Self.vgg))
        #expect(try await Self.answers(store) == Self.rowAnswers(path))
        // An append moves the space into allocated memory; the other space stays mapped.
        var rng = SplitMix64(seed: 91)
        try await store.upsertMovies((241...260).map(Self.movie))
        try await store.upsertEmbeddings(
            (241...260).map { EmbeddingInput(movieID: $0, vector: Self.vector(&rng, Self.vgg.dimension)) } + [
                EmbeddingInput(movieID: 3, vector: Self.vector(&rng, Self.vgg.dimension))
            ], space: Self.vgg.name, identity: NeighbourListContract.idV)
        #expect(!Self.isMapped(store, Self.vgg))
        #expect(Self.isMapped(store, Self.clip))
        #expect(try await Self.answers(store) == Self.rowAnswers(path))
        #expect(try await store.checkNeighbourLists(space: Self.vgg.name).isConsistent)
        // The next open sees the file is stale, loads the rows, and is correct; after a rewrite it maps again.
        let reopened = try SQLiteVectorStore(path: path)
        guard case .rows(because: .revisionMoved?) = reopened.indexLoad else {
            Issue.record("expected a load from rows, got \(reopened.indexLoad)")
            return
        }
        #expect(try await Self.answers(reopened) == Self.rowAnswers(path))
        try await store.writeIndexFile()
        let mapped = try SQLiteVectorStore(path: path)
        #expect(mapped.indexLoad == .mapped)
        #expect(try await Self.answers(mapped) == Self.rowAnswers(path))
    }

    @Test func serverPolicyRewritesAStaleFileInTheBackground() async throws {
        let path = try TempStore.newPath()
        _ = try await Self.populated(path)
        // A temporary abandoned by a killed writer (no process has this id) is cleared by the next open; one of a
        // live process (this one) is left alone.
        let abandoned = path + ".index.tmp-\(Int32.max)-1"
        let live = path + ".index.tmp-\(getpid())-1"
        FileManager.default.createFile(atPath: abandoned, contents: Data([1, 2, 3]))
        FileManager.default.createFile(atPath: live, contents: Data([1, 2, 3]))
        let server = try SQLiteVectorStore(path: path, indexFile: .mapAndRefresh)
        #expect(FileManager.default.fileExists(atPath: live))
        try FileManager.default.removeItem(atPath: live)
        #expect(server.indexLoad == .rows(because: .missing))
        await server.indexFileWritesFinished()
        #expect(server.indexFileWriteError == nil)
        #expect(!FileManager.default.fileExists(atPath: abandoned))
        let next = try SQLiteVectorStore(path: path, indexFile: .mapAndRefresh)
        #expect(next.indexLoad == .mapped)
        #expect(try await Self.answers(next) == Self.rowAnswers(path))
        // The short-lived policy leaves a stale file alone.
        try await next.upsertMovies([Self.movie(3)])
        let command = try SQLiteVectorStore(path: path)
        await command.indexFileWritesFinished()
        #expect(try SpaceIndexFile.readHeader(path: path + ".index").revision < command.loadedRevision.value)
    }

    @Test func anotherProcessesIndexFileIsMappedOnReload() async throws {
        let path = try TempStore.newPath()
        let server = try SQLiteVectorStore(path: path, externalCheckInterval: .zero)
        let ingest = try await Self.populated(path)
        try await ingest.writeIndexFile()
        #expect(try await server.reloadIfChanged())
        #expect(server.indexLoad == .mapped)
        #expect(try await Self.answers(server) == Self.rowAnswers(path))
    }

    @Test func checksumIsIndependentOfChunkingAndSeesEveryByte() {
        var rng = SplitMix64(seed: 3)
        let bytes = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let whole = bytes.withUnsafeBytes { IndexChecksum.of($0) }
        for chunk in [1, 3, 7, 31, 32, 33, 100, 999] {
            var c = IndexChecksum()
            for start in stride(from: 0, to: bytes.count, by: chunk) {
                bytes[start..<min(bytes.count, start + chunk)].withUnsafeBytes { c.update($0) }
            }
            #expect(c.value == whole, "chunks of \(chunk)")
        }
        for i in 0..<bytes.count {
            var changed = bytes
            changed[i] ^= 1 << UInt8(i % 8)
            #expect(changed.withUnsafeBytes { IndexChecksum.of($0) } != whole, "byte \(i)")
        }
        #expect(bytes.prefix(999).withUnsafeBytes { IndexChecksum.of($0) } != whole)
        #expect((bytes + [0]).withUnsafeBytes { IndexChecksum.of($0) } != whole)
    }

    @Test func anOlderWriteDoesNotReplaceANewerFile() async throws {
        let path = try TempStore.newPath()
        let store = try await Self.populated(path)
        let (older, olderStamp, _) = try await store.pool.read { db in
            try SQLiteVectorStore.loadSnapshot(db, indexFile: nil)
        }
        try await store.upsertMovies([Self.movie(9)])
        try await store.writeIndexFile()
        let newer = try SpaceIndexFile.readHeader(path: store.indexFilePath).revision
        #expect(newer > olderStamp.revision)
        try SpaceIndexFile.write(older, stamp: olderStamp, to: store.indexFilePath)
        #expect(try SpaceIndexFile.readHeader(path: store.indexFilePath).revision == newer)
        #expect(try SQLiteVectorStore(path: path).indexLoad == .mapped)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent)
            .filter { $0.hasPrefix((path as NSString).lastPathComponent + ".index.tmp-") }
        #expect(leftovers.isEmpty)
    }
}
