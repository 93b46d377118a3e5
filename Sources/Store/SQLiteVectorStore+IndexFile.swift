import PosterSimCore
import Foundation
import GRDB
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a SQLite store uses its index file, `<database>.index` (see `SpaceIndexFile`).
public enum IndexFilePolicy: Sendable {
    /// Never read or write it: every open decodes the vector rows.
    case off
    /// Map it when it is current; otherwise decode the rows and leave it as it is (short-lived commands, which call
    /// `writeIndexFile()` when they have changed the store).
    case mapIfCurrent
    /// Map it when it is current; otherwise decode the rows, then rewrite it in the background (the server, so its
    /// next start maps).
    case mapAndRefresh
}

/// How the store's in-memory indexes were last loaded.
public enum IndexLoad: Sendable, Equatable {
    /// From the index file, mapped.
    case mapped
    /// Decoded from the database rows; the reason the index file was not used (nil when the policy is `.off`).
    case rows(because: IndexFileError?)
}

/// The index file of the SQLite store: a memory-mappable copy of what `loadSnapshot` builds from the rows, stamped
/// with the database's id, revision, schema and spaces. Opening a store whose file is current maps the matrices and
/// copies the small per-row arrays instead of decoding every vector BLOB; any mismatch or damage falls back to the
/// rows (`IndexLoad.rows(because:)`). The file is derived data: deleting it is always safe.
extension SQLiteVectorStore {
    /// Where the index file lives: beside the database.
    public var indexFilePath: String { Self.indexFilePath(of: path) }

    static func indexFilePath(of database: String) -> String { database + ".index" }

    /// How the in-memory indexes were last loaded (at open, or by a reload after another process's commits).
    public var indexLoad: IndexLoad { indexLoadState.value }

    /// The last failure of a background index-file write, if any (the store works without the file).
    public var indexFileWriteError: IndexFileError? { indexWriteError.value }

    /// Writes the index file for the store's current state, unless the file is current and whole already (checking
    /// that reads it once); returns whether it wrote. Commands that change the store call it before they exit, so the next open maps. Runs on the store's
    /// index-writer queue (one write at a time, never on the caller's executor); queries and writes go on meanwhile.
    @discardableResult
    public func writeIndexFile() async throws -> Bool {
        let (snapshot, stamp): (StoreSnapshot, IndexFileStamp) = try await write { db in
            // In the writer, so no write of this instance interleaves; in one read transaction, so the stamp and the
            // snapshot describe the same revision.
            var pair: (StoreSnapshot, IndexFileStamp)?
            try db.inTransaction(.deferred) {
                let stamp = try Self.indexFileStamp(db)
                let snapshot = stamp.revision == self.loadedRevision.value ? self.current.value : try Self.loadSnapshot(db)
                pair = (snapshot, stamp)
                return .commit
            }
            guard let pair else { throw StoreError.database("no state to write") }
            return pair
        }
        if (try? SpaceIndexFile.verify(path: indexFilePath, expecting: stamp)) != nil { return false }
        let target = indexFilePath
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            indexWriter.async {
                SpaceIndexFile.removeAbandonedTemporaries(of: target)
                do {
                    try SpaceIndexFile.write(snapshot, stamp: stamp, to: target)
                    c.resume()
                } catch {
                    c.resume(throwing: error)
                }
            }
        }
        return true
    }

    /// Returns when the index-file writes started so far have finished (the background one after a load from rows).
    public func indexFileWritesFinished() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in indexWriter.async { c.resume() } }
    }

    /// Writes the index file for `snapshot` (loaded at `stamp`) on the index-writer queue, without waiting. The
    /// snapshot is immutable and its matrix rows are never rewritten (`MatrixStorage`), so the write needs no lock.
    func writeIndexFileInBackground(_ snapshot: StoreSnapshot, stamp: IndexFileStamp) {
        let target = indexFilePath
        let failure = indexWriteError
        indexWriter.async {
            SpaceIndexFile.removeAbandonedTemporaries(of: target)
            do {
                try SpaceIndexFile.write(snapshot, stamp: stamp, to: target)
                failure.set(nil)
            } catch {
                failure.set(error as? IndexFileError ?? .unwritable("\(error)"))
            }
        }
    }

    /// A snapshot with the stamp of the database it reflects, how it was loaded, and, when mapped, the check of its
    /// matrices still to run.
    struct LoadedSnapshot: Sendable {
        var snapshot: StoreSnapshot
        var stamp: IndexFileStamp
        var load: IndexLoad
        var verification: IndexFileVerification?
    }

    /// Inside a read transaction: the snapshot and the stamp of the database, from the index file at `indexFile` when it
    /// is current and all but its matrices check out, else decoded from the rows.
    static func loadSnapshot(_ db: Database, indexFile: String?) throws -> LoadedSnapshot {
        let stamp = try indexFileStamp(db)
        guard let indexFile else { return LoadedSnapshot(snapshot: try loadSnapshot(db), stamp: stamp, load: .rows(because: nil)) }
        do {
            let (snapshot, verification) = try SpaceIndexFile.load(path: indexFile, expecting: stamp)
            return LoadedSnapshot(snapshot: snapshot, stamp: stamp, load: .mapped, verification: verification)
        } catch {
            return LoadedSnapshot(
                snapshot: try loadSnapshot(db), stamp: stamp,
                load: .rows(because: error as? IndexFileError ?? .unreadable("\(error)")))
        }
    }

    // MARK: Folding writes into the file

    public static let defaultFoldMinimum = 10_000

    /// The delta of a mapped space of `mappedRows` file rows above which it is folded: 1/32 of the space, at least
    /// `foldMinimum` rows. At a million films that is 31,250 rows, 0.8 GB of tail in the three spaces.
    func foldThreshold(mappedRows: Int) -> Int { max(foldMinimum.value, mappedRows / 32) }

    /// In the writer, right after a write published its snapshot: when a mapped space's delta (rows written since the
    /// mapping, in its anonymous tail, and file rows replaced or deleted) has passed `foldThreshold`, writes the index
    /// file for the current snapshot and maps it, so memory and scans go back to the file's live rows. Still holding
    /// the writer, so no write moves the revision while the file is written: writes wait for it (the whole file is
    /// written once per 1/32 of the space changed), queries do not. A failure is logged and kept in
    /// `indexFileWriteError`; the store goes on with its tail.
    func foldDeltaIfLarge(_ db: Database) {
        guard indexFilePolicy != .off else { return }
        let snapshot = current.value
        guard snapshot.spaces.values.contains(where: {
            $0.storage.isMapped && $0.delta > foldThreshold(mappedRows: $0.storage.mappedRows)
        }) else { return }
        do {
            var stamp: IndexFileStamp?
            try db.inTransaction(.deferred) {
                stamp = try Self.indexFileStamp(db)
                return .commit
            }
            guard let stamp, stamp.revision == loadedRevision.value else { return }
            try SpaceIndexFile.write(snapshot, stamp: stamp, to: indexFilePath)
            indexWriteError.set(nil)
            try reload(db)
        } catch {
            let failure = error as? IndexFileError ?? .unwritable("\(error)")
            indexWriteError.set(failure)
            logger.warning("folding writes into the index file failed", metadata: ["error": "\(failure)"])
        }
    }

    // MARK: Checking the matrices after a mapped open

    /// Checks the matrices of a freshly mapped index file on the verifier queue, chunk by chunk, while queries are
    /// answered from the mapping. Guarantee: when a chunk differs from its checksum, the store logs an error naming
    /// it, deletes the file (if its path still names it; the file is derived data), reloads its indexes from the
    /// database rows (`indexLoad` becomes `.rows(because: .corrupt(…))`; queries and writes go on, from the old
    /// snapshot until the reload publishes), and under `.mapAndRefresh` writes a new file in the background. Until the
    /// check reaches a damaged chunk, queries may read its rows as they are. The check stops when the mapping is no
    /// longer in use (a reload replaced it) or the store is gone.
    func verifyInBackground(_ verification: IndexFileVerification) {
        indexVerifier.async { [weak self] in
            let started = ContinuousClock.now
            do {
                let finished = try verification.run { self?.isUsing(verification.file) ?? false }
                if finished, let self {
                    self.logger.info(
                        "index file matrices verified",
                        metadata: ["bytes": "\(verification.bytes)", "took": "\(ContinuousClock.now - started)"])
                }
            } catch {
                self?.recoverFromDamaged(verification.file, error as? IndexFileError ?? .unreadable("\(error)"))
            }
        }
    }

    /// Returns when the matrix checks started so far have finished, and the reload a damaged file causes with them.
    public func indexFileVerified() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in indexVerifier.async { c.resume() } }
    }

    /// Whether the current snapshot reads any matrix from `file`.
    func isUsing(_ file: MappedFile) -> Bool {
        current.value.spaces.values.contains { $0.storage.mapping === file }
    }

    /// On the verifier queue: `file` failed its check. Stops using it (see `verifyInBackground`).
    private func recoverFromDamaged(_ file: MappedFile, _ damage: IndexFileError) {
        logger.error(
            "index file damaged; answering from the database rows instead",
            metadata: ["path": "\(indexFilePath)", "error": "\(damage)"])
        if file.isStill(at: indexFilePath) { unlink(indexFilePath) }
        do {
            let loaded = try pool.writeWithoutTransaction { db -> LoadedSnapshot? in
                // A reload since (another process's commit) may have replaced the mapping already.
                guard self.isUsing(file) else { return nil }
                return try self.reload(db, avoiding: damage)
            }
            if let loaded, indexFilePolicy == .mapAndRefresh { writeIndexFileInBackground(loaded.snapshot, stamp: loaded.stamp) }
        } catch {
            // Nothing retries this (the revision has not moved), so the mapping stays in use: say so.
            logger.error(
                "reload after a damaged index file failed; still answering from the damaged file",
                metadata: ["error": "\(error)"])
        }
    }

    /// What an index file must match to stand for this database now.
    static func indexFileStamp(_ db: Database) throws -> IndexFileStamp {
        let storeID = try String.fetchOne(db, sql: "SELECT uuid FROM store_instance WHERE id = 1") ?? ""
        var spaces: [IndexFileHeader.SpaceKey] = []
        for row in try Row.fetchAll(db, sql: "SELECT name, dimension, metric, identity FROM vector_space ORDER BY name") {
            // The identity as the snapshot prints it (`storedForm`), which is what the file records.
            let identity: String = row["identity"]
            spaces.append(
                IndexFileHeader.SpaceKey(
                    name: row["name"], dimension: row["dimension"], metric: row["metric"],
                    identity: ModelIdentity(storedForm: identity)?.storedForm ?? identity))
        }
        return IndexFileStamp(
            storeID: storeID, revision: try readRevision(db), schema: try migrator.appliedIdentifiers(db).sorted(),
            spaces: spaces)
    }

    static func createStoreInstance(_ db: Database) throws {
        // A random id per database file: an index file left beside another database (deleted and re-ingested, or
        // replaced by a copy) is not taken for this one's, even at the same revision.
        try db.execute(
            sql: "CREATE TABLE store_instance (id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1), uuid TEXT NOT NULL)")
        try db.execute(sql: "INSERT INTO store_instance (id, uuid) VALUES (1, ?)", arguments: [UUID().uuidString])
    }
}
