// The data plane of users' indexes (`RecordIndexStore`) and, read-only, of the model indexes
// (`PineconeModelIndex.swift`): upsert, query, fetch, update, delete, list, describe_index_stats.
import Foundation
import HTTPTypes
import Hummingbird
import PosterSimCore
import Store

/// Pinecone's per-request limits.
enum PineconeRequestLimits {
    static let maxUpsertVectors = 1_000
    static let maxFetchIDs = 1_000
    static let maxDeleteIDs = 1_000
    /// `top_k` above this is refused when values or metadata are asked for too.
    static let maxTopKWithPayload = 1_000
    static let maxNamespaceBytes = 512
    static let defaultListLimit = 100
    static let maxListLimit = 10_000
}

extension PineconeAPI {
    static func namespace(_ given: String?) throws -> String {
        let ns = given ?? ""
        guard ns.utf8.count <= PineconeRequestLimits.maxNamespaceBytes, !ns.utf8.contains(0) else {
            throw PineconeError.badRequest("namespace must be at most \(PineconeRequestLimits.maxNamespaceBytes) bytes")
        }
        return ns
    }

    static func filter(_ json: JSONValue?) throws -> MetadataFilter? {
        guard let json, json != .null else { return nil }
        if case .object(let members) = json, members.isEmpty { return nil }
        return try MetadataFilter(json: json)
    }

    static func usage(read: Int) -> PineconeWire.Usage { .init(readUnits: max(1, read)) }

    func upsert(_ request: Request, index: String) async throws -> Response {
        let body = try await decode(PineconeWire.UpsertRequest.self, from: request)
        let namespace = try Self.namespace(body.namespace)
        guard body.vectors.count <= PineconeRequestLimits.maxUpsertVectors else {
            throw PineconeError.badRequest(
                "upsert takes at most \(PineconeRequestLimits.maxUpsertVectors) vectors per request, got \(body.vectors.count)")
        }
        let records: [Record] = try body.vectors.map { v in
            if let sparse = v.sparseValues, !sparse.isEmpty {
                throw PineconeError.badRequest("sparse values are not supported (vector '\(v.id.prefix(64))')")
            }
            guard let values = v.values else {
                throw PineconeError.badRequest("vector '\(v.id.prefix(64))' has no values")
            }
            return Record(id: v.id, values: values, metadata: try RecordMetadataCoding.parse(v.metadata))
        }
        switch try await target(index) {
        case .model(let model): throw Self.readOnly(model)
        case .records(let store, _):
            let count = try await store.upsertRecords(records, index: index, namespace: namespace)
            return try Self.json(PineconeWire.UpsertResponse(upsertedCount: count))
        }
    }

    func query(_ request: Request, index: String) async throws -> Response {
        let body = try await decode(PineconeWire.QueryRequest.self, from: request)
        let namespace = try Self.namespace(body.namespace)
        if body.queries != nil { throw PineconeError.badRequest("'queries' was removed from the API; send one vector") }
        if let sparse = body.sparseVector, !sparse.isEmpty { throw PineconeError.badRequest("sparse vectors are not supported") }
        guard let topK = body.topK else { throw PineconeError.badRequest("topK is required") }
        let includeValues = body.includeValues ?? false
        let includeMetadata = body.includeMetadata ?? false
        guard topK >= 1, topK <= RecordLimits.maxTopK else {
            throw PineconeError.badRequest("topK must be between 1 and \(RecordLimits.maxTopK), got \(topK)")
        }
        if (includeValues || includeMetadata), topK > PineconeRequestLimits.maxTopKWithPayload {
            throw PineconeError.badRequest(
                "topK must be at most \(PineconeRequestLimits.maxTopKWithPayload) when values or metadata are included")
        }
        let spec = RecordQuery(
            topK: topK, filter: try Self.filter(body.filter), includeValues: includeValues, includeMetadata: includeMetadata)
        let out: [PineconeWire.ScoredVector]
        switch (body.vector, body.id) {
        case (.some, .some): throw PineconeError.badRequest("give either vector or id, not both")
        case (.none, .none): throw PineconeError.badRequest("one of vector or id is required")
        case (.some(let vector), .none):
            switch try await target(index) {
            case .model(let model):
                out = try await modelQuery(model, namespace: namespace, vector: vector, query: spec)
            case .records(let store, _):
                out = Self.scored(try await store.queryRecords(index: index, namespace: namespace, vector: vector, query: spec))
            }
        case (.none, .some(let id)):
            switch try await target(index) {
            case .model(let model):
                out = try await modelQuery(model, namespace: namespace, id: id, query: spec)
            case .records(let store, _):
                out = Self.scored(try await store.queryRecords(index: index, namespace: namespace, id: id, query: spec))
            }
        }
        return try Self.json(PineconeWire.QueryResponse(matches: out, namespace: namespace, usage: Self.usage(read: 5)))
    }

    static func scored(_ matches: [RecordMatch]) -> [PineconeWire.ScoredVector] {
        matches.map { m in
            PineconeWire.ScoredVector(
                id: m.id, score: m.score, values: m.values ?? [], metadata: m.metadata.map(RecordMetadataCoding.json))
        }
    }

    func fetch(_ request: Request, index: String) async throws -> Response {
        let params = request.uri.queryParameters
        let ids = params.getAll("ids").map { String($0) }
        let namespace = try Self.namespace(params.get("namespace"))
        guard !ids.isEmpty else { throw PineconeError.badRequest("ids are required") }
        guard ids.count <= PineconeRequestLimits.maxFetchIDs else {
            throw PineconeError.badRequest("fetch takes at most \(PineconeRequestLimits.maxFetchIDs) ids, got \(ids.count)")
        }
        let found: [PineconeWire.VectorOut]
        switch try await target(index) {
        case .model(let model): found = try await modelFetch(model, namespace: namespace, ids: ids)
        case .records(let store, _):
            found = try await store.fetchRecords(index: index, namespace: namespace, ids: ids).map { r in
                .init(id: r.id, values: r.values, metadata: r.metadata.map(RecordMetadataCoding.json))
            }
        }
        var vectors: [String: PineconeWire.VectorOut] = [:]
        for r in found { vectors[r.id] = r }
        return try Self.json(
            PineconeWire.FetchResponse(vectors: vectors, namespace: namespace, usage: Self.usage(read: found.count)))
    }

    func update(_ request: Request, index: String) async throws -> Response {
        let body = try await decode(PineconeWire.UpdateRequest.self, from: request)
        let namespace = try Self.namespace(body.namespace)
        if let sparse = body.sparseValues, !sparse.isEmpty { throw PineconeError.badRequest("sparse values are not supported") }
        if body.filter != nil { throw PineconeError.badRequest("update by filter is not supported; give an id") }
        guard let id = body.id else { throw PineconeError.badRequest("id is required") }
        let setMetadata = try RecordMetadataCoding.parse(body.setMetadata)
        switch try await target(index) {
        case .model(let model): throw Self.readOnly(model)
        case .records(let store, _):
            let found = try await store.updateRecord(
                index: index, namespace: namespace, id: id, values: body.values, setMetadata: setMetadata)
            return try Self.json(JSONValue.object(["matchedRecords": .number(found ? 1 : 0)]))
        }
    }

    func delete(_ request: Request, index: String) async throws -> Response {
        let body = try await decode(PineconeWire.DeleteRequest.self, from: request)
        let namespace = try Self.namespace(body.namespace)
        let selection: RecordSelection
        switch (body.ids, body.deleteAll ?? false, try Self.filter(body.filter)) {
        case (.some(let ids), false, nil):
            guard ids.count <= PineconeRequestLimits.maxDeleteIDs else {
                throw PineconeError.badRequest("delete takes at most \(PineconeRequestLimits.maxDeleteIDs) ids, got \(ids.count)")
            }
            selection = .ids(ids)
        case (nil, true, nil): selection = .all
        case (nil, false, .some(let filter)): selection = .matching(filter)
        default: throw PineconeError.badRequest("give exactly one of ids, deleteAll or filter")
        }
        switch try await target(index) {
        case .model(let model): throw Self.readOnly(model)
        case .records(let store, _):
            try await store.deleteRecords(index: index, namespace: namespace, selection)
            return try Self.json(PineconeWire.Empty())
        }
    }

    func list(_ request: Request, index: String) async throws -> Response {
        let params = request.uri.queryParameters
        let namespace = try Self.namespace(params.get("namespace"))
        let prefix = params.get("prefix") ?? ""
        var limit = PineconeRequestLimits.defaultListLimit
        if let text = params.get("limit") {
            guard let value = Int(text), value >= 1, value <= PineconeRequestLimits.maxListLimit else {
                throw PineconeError.badRequest("limit must be between 1 and \(PineconeRequestLimits.maxListLimit)")
            }
            limit = value
        }
        var after: String?
        if let token = params.get("paginationToken"), !token.isEmpty {
            guard let decoded = Self.decodeToken(token) else { throw PineconeError.badRequest("invalid paginationToken") }
            after = decoded
        }
        let page: RecordIDPage
        switch try await target(index) {
        case .model(let model):
            page = try await modelList(model, namespace: namespace, prefix: prefix, after: after, limit: limit)
        case .records(let store, _):
            page = try await store.listRecordIDs(index: index, namespace: namespace, prefix: prefix, after: after, limit: limit)
        }
        return try Self.json(
            PineconeWire.ListResponse(
                vectors: page.ids.map { .init(id: $0) },
                pagination: page.continueAfter.map { .init(next: Self.encodeToken($0)) }, namespace: namespace,
                usage: Self.usage(read: 1)))
    }

    func stats(_ request: Request, index: String) async throws -> Response {
        let filter: MetadataFilter?
        if request.method == .post {
            filter = try Self.filter(try await decode(PineconeWire.StatsRequest.self, from: request).filter)
        } else {
            filter = nil
        }
        let counts: [String: Int]
        let description: RecordIndexDescription
        switch try await target(index) {
        case .model(let model):
            if filter != nil { throw PineconeError.badRequest("describe_index_stats takes no filter on model indexes") }
            description = try await modelIndexDescription(model)
            let n = try await store.stats().spaces.first { $0.space.name == model.rawValue }?.vectors ?? 0
            counts = n > 0 ? ["": n] : [:]
        case .records(let store, let d):
            description = d
            counts = try await store.recordCounts(index: index, filter: filter)
        }
        return try Self.json(
            PineconeWire.StatsResponse(
                namespaces: counts.mapValues { .init(vectorCount: $0) }, dimension: description.dimension,
                totalVectorCount: counts.values.reduce(0, +), metric: description.metric.rawValue))
    }

    /// Pagination tokens: the last id served, base64url (opaque to clients).
    static func encodeToken(_ id: String) -> String {
        Data(id.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeToken(_ token: String) -> String? {
        var b64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64) else { return nil }
        return String(data: data, encoding: .utf8)
    }
}
