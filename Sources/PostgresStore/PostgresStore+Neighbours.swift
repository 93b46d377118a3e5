// Neighbour lists in PostgreSQL: one `neighbour_list` row per (space, movie), kept in the write transaction that
// changes the vectors, read by queries by id in the same statement that checks the movie.
import PosterSimCore
import Foundation
import PostgresNIO
import Store

extension PostgresVectorStore: NeighbourListStore {
    /// Scores as this store returns them (cosine similarity, squared distance) to the keys `NeighbourList` ranks by.
    static func key(_ score: Float, _ info: SpaceInfo) -> Float { info.space.metric == .cosine ? score : -score }
    static func score(_ key: Float, _ info: SpaceInfo) -> Float { info.space.metric == .cosine ? key : -key }

    /// Inside a write, after the space's rows changed: `added` movies have a new current vector (stored), `removed`
    /// movies lost the one they had (replaced or deleted). Brings every affected list up to date, so the lists
    /// commit or roll back with the vectors. Scores come from the same SQL expression as the exact scan, with the
    /// list's owner as the query, so a list holds the scan's own numbers.
    static func maintainNeighbours(
        _ conn: PostgresConnection, info: SpaceInfo, added: [MovieID], removed: [MovieID]
    ) async throws {
        guard !added.isEmpty || !removed.isEmpty else { return }
        let name = info.space.name
        let touched = Array(Set(added).union(removed))
        var changed: [MovieID: NeighbourList] = [:]

        // Lists that held a vector that is gone: found through the GIN index on their members.
        if !removed.isEmpty {
            let gone = Set(removed)
            for (owner, list) in try await lists(conn, info, where: "ids && ", removed, andNotOwners: touched) {
                var updated = list
                updated.remove(gone)
                changed[owner] = updated
            }
        }

        // Lists the new vectors enter: every surviving list scored against every new vector in one statement,
        // keeping the pairs that beat the list's worst entry (or any pair, for a list that holds everything).
        if !added.isEmpty {
            let better = info.space.metric == .cosine ? ">" : "<"
            var q = SQL("")
            let spaceParam = q.bindPlaceholder(name)
            let addedParam = q.bindPlaceholder(added)
            let current = "(SELECT identity FROM vector_space WHERE name = \(spaceParam))"
            q.append("""
                SELECT owner, candidate, s FROM (
                    SELECT n.movie_id AS owner, b.movie_id AS candidate,
                        \(scoreExpr(info, "b.embedding", "e.embedding")) AS s,
                        n.complete, n.worst_score, n.worst_id
                    FROM neighbour_list n JOIN \(info.table) e ON e.movie_id = n.movie_id
                    CROSS JOIN (SELECT movie_id, embedding FROM \(info.table)
                                WHERE movie_id = ANY(\(addedParam)::int8[]) AND identity = \(current)) b
                    WHERE n.space = \(spaceParam) AND e.identity = \(current)
                      AND NOT (n.movie_id = ANY(\(addedParam)::int8[]))) x
                WHERE x.complete OR x.s \(better) x.worst_score OR (x.s = x.worst_score AND x.candidate < x.worst_id)
                """)
            var entries: [MovieID: [NeighbourList.Entry]] = [:]
            for row in try await all(conn, q) {
                let (owner, candidate, s) = try row.decode((Int, Int, Float).self)
                entries[owner, default: []].append(NeighbourList.Entry(id: candidate, key: key(s, info)))
            }
            let missing = entries.keys.filter { changed[$0] == nil }
            if !missing.isEmpty {
                for (owner, list) in try await lists(conn, info, where: "movie_id = ANY(", missing, andNotOwners: nil) {
                    changed[owner] = list
                }
            }
            for (owner, new) in entries { changed[owner]?.insert(new) }
        }

        let live = try await liveCount(conn, info)
        for (owner, list) in changed where list.needsRefill {
            changed[owner] = try await exactList(conn, info, owner: owner, live: live)
        }
        for id in added { changed[id] = try await exactList(conn, info, owner: id, live: live) }
        try await writeLists(conn, info, changed)
        let dropped = removed.filter { !Set(added).contains($0) }
        if !dropped.isEmpty {
            var d = SQL("DELETE FROM neighbour_list WHERE space = ")
            d.bind(name)
            d.append(" AND movie_id = ANY(")
            d.bind(dropped)
            d.append("::int8[])")
            try await run(conn, d)
        }
    }

    /// The space's lists selected by `condition` applied to `ids` (`"ids && "`: lists holding any of them;
    /// `"movie_id = ANY("`: lists owned by them), leaving out lists owned by `andNotOwners`.
    static func lists(
        _ conn: PostgresConnection, _ info: SpaceInfo, where condition: String, _ ids: [MovieID],
        andNotOwners excluded: [MovieID]?
    ) async throws -> [(MovieID, NeighbourList)] {
        var q = SQL("SELECT movie_id, complete, ids, scores FROM neighbour_list WHERE space = ")
        q.bind(info.space.name)
        q.append(" AND \(condition)")
        q.bind(ids)
        q.append(condition.hasSuffix("(") ? "::int8[])" : "::int8[]")
        if let excluded {
            q.append(" AND NOT (movie_id = ANY(")
            q.bind(excluded)
            q.append("::int8[]))")
        }
        return try await all(conn, q).map { try decodeList($0, info) }
    }

    /// The movies among `ids` that have a current vector in the space (read inside a write, before it changes them).
    static func currentVectors(_ conn: PostgresConnection, _ info: SpaceInfo, among ids: [MovieID]) async throws
        -> [MovieID]
    {
        var q = SQL("SELECT e.movie_id FROM \(info.table) e WHERE e.movie_id = ANY(")
        q.bind(ids)
        q.append("::int8[]) AND e.identity = (SELECT identity FROM vector_space WHERE name = ")
        q.bind(info.space.name)
        q.append(")")
        return try await all(conn, q).map { try $0.decode(Int.self) }
    }

    /// Every space, read on `conn` (inside a write: the spaces as that transaction sees them).
    static func spaceInfos(_ conn: PostgresConnection) async throws -> [SpaceInfo] {
        let rows = try await all(
            conn, SQL("SELECT name, dimension, metric, identity, table_name, index_kind FROM vector_space ORDER BY name"))
        return try rows.map { row in
            let name = try row.decode((String, Int, String, String, String, String).self).0
            return try decodeSpace(row, name: name, offset: 1).0
        }
    }

    static func liveCount(_ conn: PostgresConnection, _ info: SpaceInfo) async throws -> Int {
        var q = SQL("SELECT count(*)::int8 FROM \(info.table) WHERE identity = (SELECT identity FROM vector_space WHERE name = ")
        q.bind(info.space.name)
        q.append(")")
        return try await all(conn, q).first?.decode(Int.self) ?? 0
    }

    /// `owner`'s list by an exact scan (the same ranked statement as a query, never the approximate index).
    static func exactList(_ conn: PostgresConnection, _ info: SpaceInfo, owner: MovieID, live: Int) async throws
        -> NeighbourList
    {
        var q = SQL("")
        let spaceParam = q.bindPlaceholder(info.space.name)
        let ownerParam = q.bindPlaceholder(owner)
        let identityExpr = "(SELECT identity FROM vector_space WHERE name = \(spaceParam))"
        let ranked = try rankedSelect(
            info, queryVector: "(SELECT embedding FROM \(info.table) WHERE movie_id = \(ownerParam)::int8)",
            identityExpr: identityExpr, excluding: ownerParam, filter: .none, k: NeighbourList.capacity,
            approximate: false, candidates: NeighbourList.capacity, sql: &q)
        q.append(ranked)
        let entries = try await all(conn, q).map { row in
            let (id, s) = try row.decode((Int, Float).self)
            return NeighbourList.Entry(id: id, key: key(s, info))
        }
        return NeighbourList(entries: entries, complete: live - 1 <= NeighbourList.capacity)
    }

    static func decodeList(_ row: PostgresRow, _ info: SpaceInfo) throws -> (MovieID, NeighbourList) {
        let (owner, complete, ids, scores) = try row.decode((Int, Bool, [Int], [Float]).self)
        guard ids.count == scores.count, ids.count <= NeighbourList.capacity else {
            throw StoreError.corrupt("neighbour list of movie \(owner) in space '\(info.space.name)' is malformed")
        }
        let entries = zip(ids, scores).map { NeighbourList.Entry(id: $0, key: key($1, info)) }
        return (owner, NeighbourList(entries: entries, complete: complete))
    }

    static func writeLists(_ conn: PostgresConnection, _ info: SpaceInfo, _ lists: [MovieID: NeighbourList])
        async throws
    {
        let owners = lists.keys.sorted()
        for start in stride(from: 0, to: owners.count, by: 500) {
            var q = SQL("INSERT INTO neighbour_list (space, movie_id, complete, ids, scores, worst_score, worst_id) VALUES ")
            let spaceParam = q.bindPlaceholder(info.space.name)
            for (i, owner) in owners[start..<min(owners.count, start + 500)].enumerated() {
                let list = lists[owner]!
                q.append(i == 0 ? "(" : ", (")
                q.append("\(spaceParam)::text, ")
                q.bind(owner); q.append("::int8, ")
                q.bind(list.complete); q.append("::bool, ")
                q.bind(list.entries.map(\.id)); q.append("::int8[], ")
                q.bind(list.entries.map { score($0.key, info) }); q.append("::real[], ")
                q.bindOptional(list.entries.last.map { score($0.key, info) }); q.append("::real, ")
                q.bindOptional(list.entries.last?.id); q.append("::int8)")
            }
            q.append("""
                 ON CONFLICT (space, movie_id) DO UPDATE SET complete = EXCLUDED.complete, ids = EXCLUDED.ids,
                    scores = EXCLUDED.scores, worst_score = EXCLUDED.worst_score, worst_id = EXCLUDED.worst_id
                """)
            try await run(conn, q)
        }
    }

    /// A query by id answered from the movie's list, in one statement: a status row (does the movie exist, does it
    /// have a current vector), the movie itself if it passes the filter, the list's status (complete, entries that
    /// pass) and the first `k` entries that pass. Nil when the list cannot answer exactly (no list, or too few
    /// entries pass and it does not hold every other vector): the caller scans.
    func listedQuery(_ info: SpaceInfo, movieID id: MovieID, k: Int, filter: SearchFilter, excludeSelf: Bool)
        async throws -> [SearchMatch]?
    {
        guard k <= NeighbourList.capacity else { return nil }
        var q = SQL("")
        let spaceParam = q.bindPlaceholder(info.space.name)
        let idParam = q.bindPlaceholder(id)
        let kParam = q.bindPlaceholder(k)
        q.append("""
            WITH sp AS (SELECT identity FROM vector_space WHERE name = \(spaceParam)),
            me AS (SELECT e.embedding FROM \(info.table) e WHERE e.movie_id = \(idParam)::int8
                   AND e.identity = (SELECT identity FROM sp)),
            l AS (SELECT complete, ids, scores FROM neighbour_list WHERE space = \(spaceParam) AND movie_id = \(idParam)::int8),
            le AS (SELECT u.id, u.score, u.ord FROM l CROSS JOIN LATERAL unnest(l.ids, l.scores) WITH ORDINALITY AS u(id, score, ord)
                   JOIN movie m ON m.id = u.id
            """)
        let entryFilter = Self.filterSQL(filter, alias: "m", sql: &q)
        if !entryFilter.isEmpty { q.append(" WHERE " + entryFilter) }
        q.append("""
             ORDER BY u.ord LIMIT \(kParam)::int8)
            SELECT 0::int8 AS kind, (SELECT count(*) FROM movie WHERE id = \(idParam)::int8)::int8 AS movie_id,
                   (SELECT count(*) FROM me)::real AS score, 0::int8 AS ord
            UNION ALL
            SELECT 3::int8, (SELECT count(*) FROM le)::int8, (SELECT CASE WHEN complete THEN 1 ELSE 0 END FROM l)::real, 0::int8
            UNION ALL
            SELECT 2::int8, le.id, le.score, le.ord FROM le
            UNION ALL
            SELECT 1::int8, m.id, \(Self.scoreExpr(info, "me.embedding", "me.embedding")), 0::int8
            FROM me, movie m WHERE m.id = \(idParam)::int8
            """)
        let selfFilter = Self.filterSQL(filter, alias: "m", sql: &q)
        if !selfFilter.isEmpty { q.append(" AND " + selfFilter) }
        let statement = q
        let rows = try await read { conn in try await Self.all(conn, statement) }
        var exists = false
        var hasEmbedding = false
        var listComplete: Bool?
        var selfMatch: SearchMatch?
        var entries: [(ord: Int, match: SearchMatch)] = []
        for row in rows {
            let (kind, movie, value, ord) = try row.decode((Int, Int, Float?, Int).self)
            switch kind {
            case 0:
                exists = movie > 0
                hasEmbedding = (value ?? 0) > 0
            case 3: listComplete = value.map { $0 > 0 }
            case 2: if let value { entries.append((ord, SearchMatch(movieID: movie, score: value))) }
            default: if let value { selfMatch = SearchMatch(movieID: movie, score: value) }
            }
        }
        guard exists else { throw StoreError.unknownMovie(id) }
        guard hasEmbedding else { throw StoreError.noEmbedding(movieID: id, space: info.space.name) }
        guard let complete = listComplete else { return nil }
        var result: [SearchMatch] = []
        if !excludeSelf, let selfMatch { result.append(selfMatch) }
        let needed = k - result.count
        guard entries.count >= needed || complete else { return nil }
        result += entries.sorted { $0.ord < $1.ord }.prefix(needed).map(\.match)
        return result
    }

    // MARK: NeighbourListStore

    public func checkNeighbourLists(space name: String, sample: Int?) async throws -> NeighbourListCheck {
        let info = try await spaceInfo(name)
        return try await readSnapshot { conn in
            let live = try await Self.liveCount(conn, info)
            var q = SQL("SELECT n.movie_id, n.complete, n.ids, n.scores FROM neighbour_list n WHERE n.space = ")
            q.bind(name)
            q.append(" ORDER BY n.movie_id")
            var lists: [(MovieID, NeighbourList)] = []
            for row in try await Self.all(conn, q) { lists.append(try Self.decodeList(row, info)) }
            let currentOwners = Set(try await Self.currentVectors(conn, info, among: lists.map(\.0)))
            var dangling = lists.filter { !currentOwners.contains($0.0) }.count
            let members = Array(Set(lists.flatMap { $0.1.entries.map(\.id) }))
            let currentMembers = Set(try await Self.currentVectors(conn, info, among: members))
            dangling += members.filter { !currentMembers.contains($0) }.count
            var owners = lists.filter { currentOwners.contains($0.0) }
            if let sample, sample < owners.count {
                let step = Double(owners.count) / Double(max(1, sample))
                owners = (0..<max(1, sample)).map { owners[Int(Double($0) * step)] }
            }
            var mismatched: [MovieID] = []
            for (owner, list) in owners {
                let exact = try await Self.exactList(conn, info, owner: owner, live: live)
                let completeMatches = !list.complete || list.entries.count == live - 1
                if !exact.entries.starts(with: list.entries) || !completeMatches { mismatched.append(owner) }
            }
            return NeighbourListCheck(
                space: name, vectors: live, lists: lists.count, checked: owners.count, mismatched: mismatched.count,
                mismatchedExamples: Array(mismatched.prefix(10)), dangling: dangling)
        }
    }

    @discardableResult
    public func buildMissingNeighbourLists(
        space name: String, batch: Int = 256, progress: (@Sendable (Int, Int) -> Void)? = nil
    ) async throws -> Int {
        let info = try await spaceInfo(name)
        var q = SQL("SELECT e.movie_id FROM \(info.table) e WHERE e.identity = (SELECT identity FROM vector_space WHERE name = ")
        q.bind(name)
        q.append(") AND NOT EXISTS (SELECT 1 FROM neighbour_list n WHERE n.space = ")
        q.bind(name)
        q.append(" AND n.movie_id = e.movie_id) ORDER BY e.movie_id")
        let statement = q
        let missing = try await read { conn in try await Self.all(conn, statement).map { try $0.decode(Int.self) } }
        progress?(0, missing.count)
        var done = 0
        for start in stride(from: 0, to: missing.count, by: max(1, batch)) {
            let ids = Array(missing[start..<min(missing.count, start + max(1, batch))])
            try await write { conn in
                // Only lists still missing and vectors still current (another writer may have moved on).
                let still = Set(try await Self.currentVectors(conn, info, among: ids))
                var e = SQL("SELECT movie_id FROM neighbour_list WHERE space = ")
                e.bind(name)
                e.append(" AND movie_id = ANY(")
                e.bind(ids)
                e.append("::int8[])")
                let have = Set(try await Self.all(conn, e).map { try $0.decode(Int.self) })
                let live = try await Self.liveCount(conn, info)
                var lists: [MovieID: NeighbourList] = [:]
                for id in ids where still.contains(id) && !have.contains(id) {
                    lists[id] = try await Self.exactList(conn, info, owner: id, live: live)
                }
                try await Self.writeLists(conn, info, lists)
            }
            done += ids.count
            progress?(done, missing.count)
        }
        return missing.count
    }
}
