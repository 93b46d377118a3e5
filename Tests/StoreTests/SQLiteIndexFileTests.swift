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

    /// `populated` with its index file written, opened again: the spaces mapped from the file.
    static func mappedOpen() async throws -> (path: String, store: SQLiteVectorStore) {
        let path = try TempStore.newPath()
        try await populated(path).writeIndexFile()
        let store = try SQLiteVectorStore(path: path)
        #expect(store.indexLoad == .mapped)
        return (path, store)
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
        // Byte offsets in every part of the file an open checks: magic, ids, norms, packed rows, bounds, interner,
        // header JSON, trailer (length, checksum, magic). The matrices are checked after the open
        // (`aChangedMatrixIsFoundAfterTheOpen`).
        let clip = try #require(header.spaces.first { $0.key.name == Self.clip.name })
        let flips = [
            0, vgg.ids.offset + 2, clip.inverseNorms.offset + 5, vgg.meta.offset + 4, vgg.bounds.offset + 9,
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
        let (path, store) = try await Self.mappedOpen()
        // A deletion tombstones rows and leaves the matrix where it is.
        #expect(try await store.deleteMovies(ids: [7, 8]) == 2)
        #expect(Self.isMapped(store, Self.vgg))
        #expect(try await Self.answers(store) == Self.rowAnswers(path))
        // An append goes into the mapped space's tail: the file's rows stay mapped, none is copied.
        let mappedAtOpen = try #require(store.current.value.spaces[Self.vgg.name]?.storage)
        var rng = SplitMix64(seed: 91)
        try await store.upsertMovies((241...260).map(Self.movie))
        try await store.upsertEmbeddings(
            (241...260).map { EmbeddingInput(movieID: $0, vector: Self.vector(&rng, Self.vgg.dimension)) } + [
                EmbeddingInput(movieID: 3, vector: Self.vector(&rng, Self.vgg.dimension))
            ], space: Self.vgg.name, identity: NeighbourListContract.idV)
        let afterAppend = try #require(store.current.value.spaces[Self.vgg.name])
        #expect(afterAppend.storage === mappedAtOpen)
        #expect(afterAppend.storage.mappedRows == mappedAtOpen.mappedRows && afterAppend.rowCount == mappedAtOpen.mappedRows + 21)
        #expect(afterAppend.delta == 21 + 3)  // 21 rows in the tail, 2 deleted and 1 replaced file rows
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

    @Test func aMappedSpaceGrowsItsTailThenFoldsItIntoTheFile() async throws {
        let (path, store) = try await Self.mappedOpen()
        store.foldMinimum.set(.max)
        let file = try #require(store.current.value.spaces[Self.vgg.name]?.storage.mapping)
        let mappedRows = try #require(store.current.value.spaces[Self.vgg.name]?.storage.mappedRows)
        // More new rows than the tail holds (`SpaceIndex.minimumTail`), in batches, with replacements and deletions of
        // file rows and of tail rows between them: the tail grows (a copy of the tail), the file rows stay mapped.
        var rng = SplitMix64(seed: 12)
        let added = Array(241...(240 + SpaceIndex.minimumTail + 300))
        try await store.upsertMovies(added.map(Self.movie))
        for (n, batch) in stride(from: 0, to: added.count, by: 400).map({ Array(added[$0..<min(added.count, $0 + 400)]) }).enumerated() {
            let replaced = [5 + n, 300 + 7 * n]  // a file row and a tail row (or a new one)
            try await store.upsertEmbeddings(
                (batch + replaced).map { EmbeddingInput(movieID: $0, vector: Self.vector(&rng, Self.vgg.dimension)) },
                space: Self.vgg.name, identity: NeighbourListContract.idV)
            #expect(try await store.deleteMovies(ids: [21 + n, batch[0]]) == 2)  // not a movie `answers` asks for
        }
        let grown = try #require(store.current.value.spaces[Self.vgg.name])
        #expect(grown.storage.mapping === file && grown.storage.mappedRows == mappedRows)
        #expect(grown.rowCount > mappedRows + SpaceIndex.minimumTail)
        #expect(store.indexLoad == .mapped)
        #expect(try await Self.answers(store) == Self.rowAnswers(path))
        for space in [Self.clip, Self.vgg] {
            #expect(try await store.checkNeighbourLists(space: space.name).isConsistent)
        }
        let ids = Array(1...(240 + SpaceIndex.minimumTail + 300))
        let rows = try SQLiteVectorStore(path: path, indexFile: .off)
        #expect(try await store.fetchVectors(ids: ids, space: Self.vgg.name) == rows.fetchVectors(ids: ids, space: Self.vgg.name))
        // The neighbour-list contract's check: by id from the lists equals the scan, over file and tail rows alike.
        let lists = SQLiteNeighbourListTests().contract
        let live = ids.filter { !(21...24).contains($0) && $0 != 31 }
        try await lists.expectQueriesMatchScans(store, ids: live, note: "mapped with a tail")

        // Past the threshold, the next write folds the delta into a new file and maps it.
        store.foldMinimum.set(0)
        #expect(try await store.deleteMovies(ids: [31]) == 1)
        #expect(store.indexFileWriteError == nil)
        let folded = try #require(store.current.value.spaces[Self.vgg.name])
        #expect(folded.storage.mapping !== file && folded.storage.mappedRows == folded.liveCount)
        #expect(folded.delta == 0 && folded.rowCount == folded.liveCount)
        #expect(store.indexLoad == .mapped)
        #expect(try SpaceIndexFile.readHeader(path: store.indexFilePath).revision == store.loadedRevision.value)
        #expect(try await Self.answers(store) == Self.rowAnswers(path))
        try await lists.expectQueriesMatchScans(store, ids: live, note: "folded")
        await store.indexFileVerified()
        #expect(store.indexLoad == .mapped)
        // A new instance maps that file without decoding anything.
        let next = try SQLiteVectorStore(path: path)
        #expect(next.indexLoad == .mapped)
        #expect(try await Self.answers(next) == Self.rowAnswers(path))
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
        let loaded = try await store.pool.read { db in try SQLiteVectorStore.loadSnapshot(db, indexFile: nil) }
        let (older, olderStamp) = (loaded.snapshot, loaded.stamp)
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

    /// A file written with 4096-byte checksum chunks, so the small test matrices span several.
    static func writeSmallChunks(_ store: SQLiteVectorStore) async throws {
        let loaded = try await store.pool.read { db in try SQLiteVectorStore.loadSnapshot(db, indexFile: nil) }
        try SpaceIndexFile.write(loaded.snapshot, stamp: loaded.stamp, to: store.indexFilePath, chunkBytes: 4096)
    }

    @Test func aChangedMatrixIsFoundAfterTheOpen() async throws {
        let path = try TempStore.newPath()
        let store = try await Self.populated(path)
        try await Self.writeSmallChunks(store)
        let expected = try await Self.rowAnswers(path)
        let pristine = try Data(contentsOf: URL(fileURLWithPath: store.indexFilePath))
        let header = try SpaceIndexFile.readHeader(path: store.indexFilePath)
        let vgg = try #require(header.spaces.first { $0.key.name == Self.vgg.name })
        #expect(vgg.matrix.checksums.count == 2)
        // An intact file passes the check and stays in use.
        let intact = try SQLiteVectorStore(path: path)
        await intact.indexFileVerified()
        #expect(intact.indexLoad == .mapped && Self.isMapped(intact, Self.vgg))
        #expect(try await Self.answers(intact) == expected)

        for policy in [IndexFilePolicy.mapIfCurrent, .mapAndRefresh] {
            var damaged = pristine
            damaged[vgg.matrix.offset + 4096 + 7] ^= 0x40  // a byte of the second chunk
            try damaged.write(to: URL(fileURLWithPath: store.indexFilePath))
            // Loading reads no matrix, so it accepts the file (the store's open then maps it); the check behind it
            // finds the chunk and falls back. (Asked of `load` itself: the store's check may already have finished.)
            _ = try SpaceIndexFile.load(path: store.indexFilePath, expecting: header.stamp)
            let opened = try SQLiteVectorStore(path: path, indexFile: policy)
            await opened.indexFileVerified()
            guard case .rows(because: .corrupt(let message)?) = opened.indexLoad else {
                Issue.record("\(policy): expected a fall-back to the rows, got \(opened.indexLoad)")
                continue
            }
            #expect(message.contains("matrix of 'vgg16', chunk 2 of 2"), "\(message)")
            #expect(!Self.isMapped(opened, Self.vgg) && !Self.isMapped(opened, Self.clip))
            #expect(try await Self.answers(opened) == expected)
            #expect(try await opened.checkNeighbourLists(space: Self.vgg.name).isConsistent)
            await opened.indexFileWritesFinished()
            if policy == .mapAndRefresh {
                // The server writes a good file again; the next open maps it.
                #expect(opened.indexFileWriteError == nil)
                let next = try SQLiteVectorStore(path: path)
                #expect(next.indexLoad == .mapped)
                await next.indexFileVerified()
                #expect(next.indexLoad == .mapped)
            } else {
                // The damaged file is gone, so the next open does not map it again.
                #expect(!FileManager.default.fileExists(atPath: store.indexFilePath))
                #expect(try SQLiteVectorStore(path: path).indexLoad == .rows(because: .missing))
            }
        }
        // The whole-file check that `writeIndexFile` makes reads the matrices too: a damaged file is rewritten.
        var damaged = pristine
        damaged[vgg.matrix.offset + 3] ^= 1
        try damaged.write(to: URL(fileURLWithPath: store.indexFilePath))
        #expect(throws: IndexFileError.self) {
            try SpaceIndexFile.verify(path: store.indexFilePath, expecting: header.stamp)
        }
        #expect(try await store.writeIndexFile())
        try SpaceIndexFile.verify(path: store.indexFilePath, expecting: header.stamp)
    }

    @Test func aFileOfTheFirstFormatIsRebuilt() async throws {
        let path = try TempStore.newPath()
        let store = try await Self.populated(path)
        try await store.writeIndexFile()
        // The same body under a header of format 1 (one body checksum, no table), as the previous version wrote.
        var file = try Data(contentsOf: URL(fileURLWithPath: store.indexFilePath))
        let header = try SpaceIndexFile.readHeader(path: store.indexFilePath)
        var json = try #require(try JSONSerialization.jsonObject(with: Data(file[header.bodyLength..<(file.count - 24)])) as? [String: Any])
        json["format"] = 1
        json["chunkBytes"] = nil
        json["bodyChecksum"] = "0123456789abcdef"
        let headerBytes = try JSONSerialization.data(withJSONObject: json)
        var trailer = Data(count: 24)
        trailer.withUnsafeMutableBytes { t in
            t.storeBytes(of: UInt64(headerBytes.count).littleEndian, toByteOffset: 0, as: UInt64.self)
            headerBytes.withUnsafeBytes { t.storeBytes(of: IndexChecksum.of($0).littleEndian, toByteOffset: 8, as: UInt64.self) }
        }
        trailer.replaceSubrange(16..<24, with: IndexFileHeader.magic)
        file = file.prefix(header.bodyLength) + headerBytes + trailer
        try file.write(to: URL(fileURLWithPath: store.indexFilePath))
        let old = try SQLiteVectorStore(path: path, indexFile: .mapAndRefresh)
        #expect(old.indexLoad == .rows(because: .unsupportedFormat(1)))
        #expect(try await Self.answers(old) == Self.rowAnswers(path))
        await old.indexFileWritesFinished()
        let next = try SQLiteVectorStore(path: path)
        #expect(next.indexLoad == .mapped)
        #expect(try SpaceIndexFile.readHeader(path: store.indexFilePath).format == IndexFileHeader.currentFormat)
    }

    @Test func chunkedChecksumsMatchTheirRanges() {
        var rng = SplitMix64(seed: 8)
        let bytes = (0..<10_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for chunk in [4096, 8192, 16384] {
            var c = ChunkedChecksum(chunkBytes: chunk)
            // Fed in uneven pieces: the chunks are cut at multiples of `chunk` all the same.
            for start in stride(from: 0, to: bytes.count, by: 1000) {
                bytes[start..<min(bytes.count, start + 1000)].withUnsafeBytes { c.update($0) }
            }
            let section = IndexFileHeader.Section(offset: 0, length: bytes.count, checksums: c.values())
            let ranges = section.chunks(of: chunk)
            #expect(ranges.count == section.checksums.count)
            #expect(ranges.last?.upperBound == bytes.count)
            for (range, sum) in zip(ranges, section.checksums) {
                #expect(bytes[range].withUnsafeBytes { IndexChecksum.hex(IndexChecksum.of($0)) } == sum)
            }
        }
    }
}
