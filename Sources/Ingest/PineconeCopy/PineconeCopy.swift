import Foundation
import PosterSimCore
import Store

/// What `postersim pinecone copy` did.
public struct PineconeCopySummary: Sendable, Codable, Equatable {
    public var source: String
    public var index: String
    public var namespace: String
    public var toIndex: String
    /// Records copied by this run.
    public var copied: Int
    /// Records the destination namespace holds at the end.
    public var destinationCount: Int
    /// Pages of `list` read by this run.
    public var pages: Int
    /// Whether the run continued an interrupted one.
    public var resumed: Bool
    /// False when the run stopped before the last page (the state file is kept for the next run).
    public var finished: Bool
    public var seconds: Double
}

/// Copies one namespace of an index from any Pinecone-speaking server into a `RecordIndexStore`, page by page
/// (`list` then `fetch`, then one upsert per page, which is one transaction). Resumable: after each stored page the
/// pagination token is written to `stateFile`; a later run with the same source, index and namespace starts from it
/// (a page stored twice changes nothing: upserts replace by id). The state file is removed when the copy finishes.
public struct PineconeCopier: Sendable {
    public var client: PineconeSourceClient
    public var store: any RecordIndexStore
    public var index: String
    public var namespace: String
    public var toIndex: String
    public var stateFile: URL
    public var pageSize = 100
    /// Stop after this many pages, leaving the state file (a test's stand-in for an interrupted run).
    public var stopAfterPages: Int?
    public var progress: @Sendable (_ copied: Int, _ total: Int, _ elapsed: Double) -> Void = { _, _, _ in }

    public init(client: PineconeSourceClient, store: any RecordIndexStore, index: String, namespace: String, toIndex: String, stateFile: URL) {
        self.client = client
        self.store = store
        self.index = index
        self.namespace = namespace
        self.toIndex = toIndex
        self.stateFile = stateFile
    }

    struct State: Codable {
        var source: String
        var index: String
        var namespace: String
        var toIndex: String
        var token: String?
        var copied: Int
    }

    public func run() async throws -> PineconeCopySummary {
        let started = ContinuousClock.now
        let (host, description) = try await client.describe(index: index)
        var target = description
        target.name = toIndex
        if let existing = try await store.recordIndex(named: toIndex) {
            guard existing.dimension == description.dimension, existing.metric == description.metric else {
                throw PineconeCopyError.incompatible(
                    "index \(toIndex) exists with dimension \(existing.dimension) and metric \(existing.metric.rawValue); "
                        + "the source has \(description.dimension) and \(description.metric.rawValue)")
            }
        } else {
            try await store.createRecordIndex(target)
        }
        // The total, for the progress bar: the source's count of the namespace when it says.
        let total = (try? await sourceCount(host: host)) ?? 0

        var state = State(source: client.controlURL, index: index, namespace: namespace, toIndex: toIndex, token: nil, copied: 0)
        var resumed = false
        if let data = try? Data(contentsOf: stateFile), let saved = try? JSONDecoder().decode(State.self, from: data),
            saved.source == state.source, saved.index == index, saved.namespace == namespace, saved.toIndex == toIndex
        {
            state = saved
            resumed = true
        }
        var copiedThisRun = 0
        var pages = 0
        repeat {
            try Task.checkCancellation()
            let page = try await client.list(host: host, namespace: namespace, limit: pageSize, token: state.token)
            let records = try await client.fetch(host: host, namespace: namespace, ids: page.ids)
            try await store.upsertRecords(records, index: toIndex, namespace: namespace)
            pages += 1
            copiedThisRun += records.count
            state.copied += records.count
            state.token = page.next
            try save(state)
            progress(state.copied, max(total, state.copied), (ContinuousClock.now - started).seconds)
            if page.ids.isEmpty { break }
            if let stop = stopAfterPages, pages >= stop, state.token != nil {
                return try await summary(finished: false, copied: copiedThisRun, pages: pages, resumed: resumed, started: started)
            }
        } while state.token != nil
        try? FileManager.default.removeItem(at: stateFile)
        return try await summary(finished: true, copied: copiedThisRun, pages: pages, resumed: resumed, started: started)
    }

    func summary(finished: Bool, copied copiedThisRun: Int, pages: Int, resumed: Bool, started: ContinuousClock.Instant)
        async throws -> PineconeCopySummary
    {
        do {
            let counts = try await store.recordCounts(index: toIndex, filter: nil)
            return PineconeCopySummary(
                source: client.controlURL, index: index, namespace: namespace, toIndex: toIndex, copied: copiedThisRun,
                destinationCount: counts[namespace] ?? 0, pages: pages, resumed: resumed, finished: finished,
                seconds: (ContinuousClock.now - started).seconds)
        }
    }

    func sourceCount(host: String) async throws -> Int {
        let json = try await client.get(host + "/describe_index_stats")
        if case .number(let n)? = json[member: "namespaces"]?[member: namespace]?[member: "vectorCount"] { return Int(n) }
        return 0
    }

    func save(_ state: State) throws {
        let data = try JSONEncoder().encode(state)
        let tmp = stateFile.appendingPathExtension("tmp")
        try data.write(to: tmp)
        guard rename(tmp.path, stateFile.path) == 0 else {
            throw PineconeCopyError.incompatible("cannot write the state file \(stateFile.path)")
        }
    }
}
