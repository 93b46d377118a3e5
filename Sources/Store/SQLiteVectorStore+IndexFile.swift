import PosterSimCore
import Foundation
import GRDB

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

    /// Inside a read transaction: the snapshot and the stamp of the database, from the index file at `indexFile` when it
    /// is current and whole, else decoded from the rows.
    static func loadSnapshot(_ db: Database, indexFile: String?) throws -> (StoreSnapshot, IndexFileStamp, IndexLoad) {
        let stamp = try indexFileStamp(db)
        guard let indexFile else { return (try loadSnapshot(db), stamp, .rows(because: nil)) }
        do {
            return (try SpaceIndexFile.load(path: indexFile, expecting: stamp), stamp, .mapped)
        } catch {
            return (try loadSnapshot(db), stamp, .rows(because: error as? IndexFileError ?? .unreadable("\(error)")))
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
