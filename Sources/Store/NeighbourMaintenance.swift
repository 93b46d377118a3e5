import PosterSimCore
import CVectorScan
import Dispatch
import Foundation

/// Works out how a write changes a space's neighbour lists (see `NeighbourList` for the invariant it keeps).
///
/// Given the space before and after the write, it scores the new vectors and the old vectors of replaced or deleted
/// movies against every row of the space (`NeighbourScoring`: every key it hands back is bit for bit the scan's), then:
/// - each new vector gets its own list (the best `capacity` other rows);
/// - an existing list whose bound admits a new vector takes it (dropping its worst entry when full);
/// - an existing list that may hold an old vector loses it, and is recomputed by a scan when that leaves it short;
/// - lists of deleted or replaced movies are replaced.
/// The store writes the returned lists in the same transaction as the vectors.
struct NeighbourMaintenance {
    let before: SpaceIndex
    let after: SpaceIndex
    /// Bounds of the lists as they are before the write, by owner.
    let bounds: [MovieID: NeighbourBound]
    let threads: Int
    /// How pairs are scored; nil chooses by batch size (tests force each).
    var method: NeighbourScoring.Method? = nil
    /// Where the int8 codes of `after`'s rows are kept between writes; nil codes them for this write alone.
    var codesCache: RowCodesCache? = nil

    struct Result {
        /// Lists to write (insert or replace), by owner.
        var lists: [MovieID: NeighbourList] = [:]
        /// Owners whose list must be deleted (their vectors are gone).
        var dropped: [MovieID] = []
        /// Bounds after the write.
        var bounds: [MovieID: NeighbourBound]
        /// Pairs scored (queries × rows), and of those the ones rescored exactly (see `NeighbourScoring`).
        var pairsScored = 0
        var pairsRescored = 0
    }

    /// `added`: movies whose vector the write stored (new or replaced). `removed`: movies whose old vector left the
    /// space (replaced or deleted). `loadList` reads a stored list (nil when the movie has none).
    func apply(added: [MovieID], removed: [MovieID], loadList: (MovieID) throws -> NeighbourList?) throws -> Result {
        var result = Result(bounds: bounds)
        let addedSet = Set(added)
        for id in removed where !addedSet.contains(id) {
            result.dropped.append(id)
            result.bounds[id] = nil
        }
        // Per-row bounds of the lists that survive the write (rows of new vectors get fresh lists instead), as two
        // flat arrays so the loops below are a compare per row: an entry (key, id) enters a list when it ranks before
        // (worstKey, worstID). A list that holds everything has (-inf, max) and takes any finite key; a row without a
        // list has (+inf, min) and takes none.
        var worstKey = [Float](repeating: .infinity, count: after.rowCount)
        var worstID = [Int64](repeating: .min, count: after.rowCount)
        for (id, row) in after.rowOfMovie where !addedSet.contains(id) {
            guard let b = bounds[id] else { continue }
            if b.complete {
                worstKey[row] = -.infinity
                worstID[row] = .max
            } else if let w = b.worst {
                worstKey[row] = w.key
                worstID[row] = Int64(w.id)
            }
        }

        var removals: [Int: Set<MovieID>] = [:]
        var insertions: [Int: [NeighbourList.Entry]] = [:]
        let cosine = after.space.metric == .cosine

        // Old vectors: which surviving lists may hold them (their entry ranks no worse than the list's worst).
        let oldRows = removed.compactMap { id in before.rowOfMovie[id].map { (id: id, row: $0) } }
        let oldScores = NeighbourScoring.score(
            oldRows.map {
                ScoringQuery(
                    vector: before.storage.row($0.row), inverseNorm: cosine ? before.inverseNorms[$0.row] : 0, row: nil)
            },
            in: after, worstKey: worstKey, ownLists: false, threads: threads, method: method, codes: codes)
        result.pairsRescored = oldScores.reduce(0) { $0 + $1.rescored }
        for (j, scores) in oldScores.enumerated() {
            let oldID = Int64(oldRows[j].id)
            for (row, key) in scores.entering where key > worstKey[row] || (key == worstKey[row] && oldID <= worstID[row]) {
                removals[row, default: []].insert(MovieID(oldID))
            }
        }

        // New vectors: their own lists, and the surviving lists they enter.
        let newRows = added.compactMap { id in after.rowOfMovie[id].map { (id: id, row: $0) } }
        let newScores = NeighbourScoring.score(
            newRows.map {
                ScoringQuery(
                    vector: after.storage.row($0.row), inverseNorm: cosine ? after.inverseNorms[$0.row] : 0, row: $0.row)
            },
            in: after, worstKey: worstKey, ownLists: true, threads: threads, method: method, codes: codes)
        result.pairsRescored += newScores.reduce(0) { $0 + $1.rescored }
        result.pairsScored = (oldScores.count + newScores.count) * after.rowCount
        for (j, scores) in newScores.enumerated() {
            let newID = newRows[j].id
            if let list = scores.own {
                result.lists[newID] = list
                result.bounds[newID] = list.bound
            }
            let id = Int64(newID)
            for (row, key) in scores.entering where key > worstKey[row] || (key == worstKey[row] && id < worstID[row]) {
                insertions[row, default: []].append(NeighbourList.Entry(id: newID, key: key))
            }
        }

        // Surviving lists that change.
        for row in Set(removals.keys).union(insertions.keys).sorted() {
            let owner = MovieID(after.rowIDs[row])
            guard var list = try loadList(owner) else { continue }
            if let gone = removals[row] { list.remove(gone) }
            if let new = insertions[row] { list.insert(new) }
            if list.needsRefill { list = refill(row: row) }
            result.lists[owner] = list
            result.bounds[owner] = list.bound
        }
        return result
    }

    /// Lists for movies of `after` that have none, without touching other lists (which already rank these vectors:
    /// every list is computed against, and maintained with, all current vectors).
    func ownLists(of ids: [MovieID]) -> [MovieID: NeighbourList] {
        let rows = ids.compactMap { id in after.rowOfMovie[id].map { (id: id, row: $0) } }
        let cosine = after.space.metric == .cosine
        let scores = NeighbourScoring.score(
            rows.map {
                ScoringQuery(
                    vector: after.storage.row($0.row), inverseNorm: cosine ? after.inverseNorms[$0.row] : 0, row: $0.row)
            },
            in: after, worstKey: [Float](repeating: .infinity, count: after.rowCount), ownLists: true, threads: threads,
            method: method, codes: codes)
        var lists: [MovieID: NeighbourList] = [:]
        for (j, s) in scores.enumerated() { lists[rows[j].id] = s.own }
        return lists
    }

    /// The int8 codes of `after`'s rows (see `RowCodes`).
    func codes() -> RowCodes {
        if let codesCache { return codesCache.codes(for: after, before: before) }
        let codes = RowCodes(storage: after.storage)
        codes.extend(to: after.rowCount)
        return codes
    }

    /// The exact list of `row` by a scan of the space after the write.
    func refill(row: Int) -> NeighbourList {
        let query = Array(UnsafeBufferPointer(start: after.storage.row(row), count: after.space.dimension))
        let matches = after.search(query, k: NeighbourList.capacity, filter: nil, excludedRow: row, maxThreads: threads)
        let entries = matches.map {
            NeighbourList.Entry(id: $0.movieID, key: after.space.metric == .cosine ? $0.score : -$0.score)
        }
        return NeighbourList(entries: entries, complete: after.liveCount - 1 <= NeighbourList.capacity)
    }
}
