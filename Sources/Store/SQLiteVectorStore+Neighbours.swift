import PosterSimCore
import Foundation
import GRDB

/// Neighbour lists in the SQLite store: one row per (space, movie) in `neighbour_list`, written in the same transaction
/// as the vectors they rank, read by queries by id (one primary-key lookup instead of a scan).
extension SQLiteVectorStore: NeighbourListStore {
    static func createNeighbourListTable(_ db: Database) throws {
        // count / worst_key / worst_id / complete repeat what the entries say, so loading the bounds at start-up
        // reads four columns per movie instead of every list.
        try db.execute(
            sql: """
                CREATE TABLE neighbour_list (
                    space TEXT NOT NULL REFERENCES vector_space(name) ON DELETE CASCADE,
                    movie_id INTEGER NOT NULL REFERENCES movie(id) ON DELETE CASCADE,
                    complete INTEGER NOT NULL,
                    count INTEGER NOT NULL,
                    worst_key REAL,
                    worst_id INTEGER,
                    entries BLOB NOT NULL,
                    PRIMARY KEY (space, movie_id)
                ) WITHOUT ROWID;
                """)
    }

    static func readNeighbourList(_ db: Database, space: String, owner: MovieID) throws -> NeighbourList? {
        let stmt = try db.cachedStatement(
            sql: "SELECT complete, entries FROM neighbour_list WHERE space = ? AND movie_id = ?")
        guard let row = try Row.fetchOne(stmt, arguments: [space, owner]) else { return nil }
        let entries = try NeighbourList.decodeEntries(row["entries"], space: space, owner: owner)
        return NeighbourList(entries: entries, complete: row["complete"])
    }

    static func loadNeighbourBounds(_ db: Database, space: String) throws -> [MovieID: NeighbourBound] {
        var bounds: [MovieID: NeighbourBound] = [:]
        let rows = try Row.fetchCursor(
            db, sql: "SELECT movie_id, complete, count, worst_key, worst_id FROM neighbour_list WHERE space = ?",
            arguments: [space])
        while let row = try rows.next() {
            let count: Int = row["count"]
            var worst: NeighbourList.Entry?
            if count > 0, let key: Double = row["worst_key"], let id: MovieID = row["worst_id"] {
                worst = NeighbourList.Entry(id: id, key: Float(key))
            }
            bounds[row["movie_id"]] = NeighbourBound(count: count, worst: worst, complete: row["complete"])
        }
        return bounds
    }

    static func writeNeighbourLists(_ db: Database, space: String, lists: [MovieID: NeighbourList], dropped: [MovieID])
        throws
    {
        let upsert = try db.cachedStatement(
            sql: """
                INSERT INTO neighbour_list (space, movie_id, complete, count, worst_key, worst_id, entries)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(space, movie_id) DO UPDATE SET complete = excluded.complete, count = excluded.count,
                    worst_key = excluded.worst_key, worst_id = excluded.worst_id, entries = excluded.entries
                """)
        // Sorted, so that the same write produces the same file whatever the dictionary order.
        for owner in lists.keys.sorted() {
            let list = lists[owner]!
            let worst = list.entries.last
            let args: [(any DatabaseValueConvertible)?] = [
                space, owner, list.complete, list.entries.count, worst.map { Double($0.key) }, worst?.id,
                list.encodedEntries(),
            ]
            try upsert.execute(arguments: StatementArguments(args))
        }
        let delete = try db.cachedStatement(sql: "DELETE FROM neighbour_list WHERE space = ? AND movie_id = ?")
        for owner in dropped { try delete.execute(arguments: [space, owner]) }
    }

    /// Seconds this instance has spent keeping neighbour lists in its writes (scoring and writing them).
    public var neighbourListSeconds: Double {
        let d = neighbourTime.value
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// Pairs this instance's list upkeep scored against a space, and how many of them the GEMM's bound left to an
    /// exact rescoring (a measure of how tight the bound is; see `NeighbourScoring`).
    public var neighbourListPairs: (scored: Int, rescored: Int) { neighbourPairs.value }

    /// Adds the time `body` takes to `neighbourTime`.
    private func timingLists<T>(_ body: () throws -> T) rethrows -> T {
        let started = ContinuousClock.now
        defer { let took = ContinuousClock.now - started; neighbourTime.update { $0 += took } }
        return try body()
    }

    /// Inside `upsertEmbeddings`' transaction: the snapshot after storing `items` in `space`, with the space's lists
    /// brought up to date in the file.
    func storingNeighbours(
        _ db: Database, base: StoreSnapshot, upserting items: [(id: MovieID, vector: [Float], fields: MovieFilterFields)],
        space: String
    ) throws -> StoreSnapshot {
        let next = base.upserting(items, space: space)
        guard let before = base.spaces[space], let after = next.spaces[space] else { return next }
        var seen = Set<MovieID>()
        let added = items.reversed().map(\.id).filter { seen.insert($0).inserted }.reversed()
        let replaced = added.filter { before.rowOfMovie[$0] != nil }
        let maintenance = NeighbourMaintenance(
            before: before, after: after, bounds: base.neighbourBounds[space] ?? [:], threads: searchThreads,
            method: neighbourScoring, codesCache: rowCodes)
        let result = try timingLists {
            let result = try maintenance.apply(added: Array(added), removed: replaced) {
                try Self.readNeighbourList(db, space: space, owner: $0)
            }
            try Self.writeNeighbourLists(db, space: space, lists: result.lists, dropped: result.dropped)
            neighbourPairs.update { $0.scored += result.pairsScored; $0.rescored += result.pairsRescored }
            return result
        }
        return next.withNeighbourBounds(result.bounds, space: space)
    }

    /// Inside `deleteMovies`' transaction (after the rows are deleted): the snapshot without `ids`, with every space's
    /// lists brought up to date in the file.
    func storingNeighbours(_ db: Database, base: StoreSnapshot, deleting ids: [MovieID]) throws -> StoreSnapshot {
        var next = base.removing(ids)
        for (name, before) in base.spaces {
            let removed = ids.filter { before.rowOfMovie[$0] != nil }
            guard !removed.isEmpty, let after = next.spaces[name] else { continue }
            let maintenance = NeighbourMaintenance(
                before: before, after: after, bounds: base.neighbourBounds[name] ?? [:], threads: searchThreads,
                method: neighbourScoring, codesCache: rowCodes)
            let result = try timingLists {
                let result = try maintenance.apply(added: [], removed: removed) {
                    try Self.readNeighbourList(db, space: name, owner: $0)
                }
                try Self.writeNeighbourLists(db, space: name, lists: result.lists, dropped: result.dropped)
                neighbourPairs.update { $0.scored += result.pairsScored; $0.rescored += result.pairsRescored }
                return result
            }
            next = next.withNeighbourBounds(result.bounds, space: name)
        }
        return next
    }

    /// The best `count` neighbours of `id` that pass `filter`, read from its stored list; nil when the list cannot
    /// answer exactly (no list, the file moved on since `revision`, or too few entries pass and the list does not
    /// hold every other vector) and the caller must scan.
    func listedNeighbours(
        of id: MovieID, in index: SpaceIndex, revision: UInt64, count: Int, filter: CompiledFilter?
    ) async throws -> [SearchMatch]? {
        guard count <= NeighbourList.capacity else { return nil }
        let space = index.space.name
        let stored: NeighbourList? = try await read { db in
            // The list and the revision from one read transaction: the list belongs to the snapshot only if the file
            // is still at the revision the snapshot reflects.
            guard try Self.readRevision(db) == revision else { return nil }
            return try Self.readNeighbourList(db, space: space, owner: id)
        }
        guard let list = stored else { return nil }
        var picked: [NeighbourList.Entry] = []
        for e in list.entries {
            guard let row = index.rowOfMovie[e.id] else { return nil }  // inconsistent: let the scan answer
            if let filter, !filter.accepts(index.rowMeta[row], id: Int64(e.id)) { continue }
            picked.append(e)
            if picked.count == count { break }
        }
        guard picked.count == count || list.complete else { return nil }
        return NeighbourList(entries: picked, complete: list.complete).matches(metric: index.space.metric)
    }

    /// An approximate answer by `ListGraphSearch`, or nil when the lists cannot give one (some missing, the file
    /// moved past the snapshot's revision, or the walk met fewer than `k` films the filter passes): the caller scans.
    func graphSearch(
        _ vector: [Float], k: Int, filter: CompiledFilter?, in index: SpaceIndex, snapshot: StoreSnapshot,
        revision: UInt64
    ) async throws -> [SearchMatch]? {
        let space = index.space.name
        guard (snapshot.neighbourBounds[space]?.count ?? 0) >= index.liveCount else { return nil }
        let sample = graphEntrySample.value
        let found: [SearchMatch]? = try await read { db in
            guard try Self.readRevision(db) == revision else { return nil }
            let accept = filter.map { f in { (row: Int) in f.accepts(index.rowMeta[row], id: index.rowIDs[row]) } }
            let matches = try ListGraphSearch(index: index, entrySample: sample).search(vector, k: k, accept: accept) {
                try Self.readNeighbourList(db, space: space, owner: $0)
            }.matches
            return matches.count < k && accept != nil ? nil : matches
        }
        if found != nil { approximateQueries.update { $0 += 1 } }
        return found
    }

    /// Queries by vector this instance answered approximately, through the lists.
    public var approximateQueryCount: Int { approximateQueries.value }

    // MARK: Checking and building

    /// Compares the lists of `space` with exact scans: every list when `sample` is nil, else about `sample` of them
    /// spread over the space.
    public func checkNeighbourLists(space name: String, sample: Int? = nil) async throws -> NeighbourListCheck {
        try await refreshIfChanged(force: true)
        let revision = loadedRevision.value
        let snapshot = current.value
        guard let index = snapshot.spaces[name] else { throw StoreError.unknownSpace(name) }
        let (lists, danglingOwners): ([MovieID: NeighbourList], Int) = try await read { db in
            guard try Self.readRevision(db) == revision else {
                throw StoreError.database("the store changed during the check; run it again")
            }
            var lists: [MovieID: NeighbourList] = [:]
            var dangling = 0
            let rows = try Row.fetchCursor(
                db, sql: "SELECT movie_id, complete, entries FROM neighbour_list WHERE space = ?", arguments: [name])
            while let row = try rows.next() {
                let owner: MovieID = row["movie_id"]
                guard index.rowOfMovie[owner] != nil else {
                    dangling += 1
                    continue
                }
                let entries = try NeighbourList.decodeEntries(row["entries"], space: name, owner: owner)
                lists[owner] = NeighbourList(entries: entries, complete: row["complete"])
            }
            return (lists, dangling)
        }
        var owners = lists.keys.sorted()
        if let sample, sample < owners.count {
            let step = Double(owners.count) / Double(max(1, sample))
            owners = (0..<max(1, sample)).map { owners[Int(Double($0) * step)] }
        }
        var mismatched: [MovieID] = []
        var dangling = danglingOwners
        for owner in owners {
            let list = lists[owner]!
            dangling += list.entries.filter { index.rowOfMovie[$0.id] == nil }.count
            let row = index.rowOfMovie[owner]!
            let maintenance = NeighbourMaintenance(
                before: index, after: index, bounds: [:], threads: searchThreads, method: neighbourScoring, codesCache: rowCodes)
            let exact = maintenance.refill(row: row)
            let prefixMatches = exact.entries.starts(with: list.entries)
            let completeMatches = !list.complete || list.entries.count == index.liveCount - 1
            if !prefixMatches || !completeMatches { mismatched.append(owner) }
        }
        return NeighbourListCheck(
            space: name, vectors: index.liveCount, lists: lists.count, checked: owners.count,
            mismatched: mismatched.count, mismatchedExamples: Array(mismatched.prefix(10)), dangling: dangling)
    }

    /// Computes the lists that current vectors of `space` lack (a store written before lists existed, or a model
    /// switched back to vectors it had made before), `batch` movies per transaction, so an interrupted build keeps
    /// what it finished. Reports progress as (done, total). Returns how many lists it made.
    @discardableResult
    public func buildMissingNeighbourLists(
        space name: String, batch: Int = 256, progress: (@Sendable (Int, Int) -> Void)? = nil
    ) async throws -> Int {
        try await refreshIfChanged(force: true)
        guard let index = current.value.spaces[name] else { throw StoreError.unknownSpace(name) }
        let bounds = current.value.neighbourBounds[name] ?? [:]
        let missing = index.rowOfMovie.keys.filter { bounds[$0] == nil }.sorted()
        var done = 0
        progress?(0, missing.count)
        for start in stride(from: 0, to: missing.count, by: max(1, batch)) {
            let ids = Array(missing[start..<min(missing.count, start + max(1, batch))])
            try await write { db in
                let revision = try db.inTransactionReturning {
                    let revision = try Self.bumpRevision(db)
                    let base = revision.before == self.loadedRevision.value ? self.current.value : try Self.loadSnapshot(db)
                    guard let index = base.spaces[name] else { throw StoreError.unknownSpace(name) }
                    var bounds = base.neighbourBounds[name] ?? [:]
                    let todo = ids.filter { index.rowOfMovie[$0] != nil && bounds[$0] == nil }
                    let maintenance = NeighbourMaintenance(
                        before: index, after: index, bounds: bounds, threads: self.searchThreads,
                        method: self.neighbourScoring, codesCache: self.rowCodes)
                    let lists = maintenance.ownLists(of: todo)
                    try Self.writeNeighbourLists(db, space: name, lists: lists, dropped: [])
                    for (owner, list) in lists { bounds[owner] = list.bound }
                    return (revision, base.withNeighbourBounds(bounds, space: name))
                }
                self.current.set(revision.1)
                self.loadedRevision.set(revision.0.after)
            }
            done += ids.count
            progress?(done, missing.count)
        }
        return missing.count
    }
}
