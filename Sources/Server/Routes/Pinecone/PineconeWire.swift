// The JSON bodies of Pinecone's REST API as both SDK generations send and read them (camelCase on the data plane,
// snake_case on the control plane). Requests decode loosely (unknown keys are ignored, as Pinecone ignores them);
// responses encode only what the SDKs read.
import Foundation
import PosterSimCore
import Store

enum PineconeWire {
    // MARK: Data plane requests

    struct UpsertRequest: Decodable {
        var vectors: [VectorIn]
        var namespace: String?
    }

    struct VectorIn: Decodable {
        var id: String
        var values: [Float]?
        var metadata: JSONValue?
        var sparseValues: SparseIn?
    }

    struct SparseIn: Decodable {
        var indices: [Int]?
        var values: [Float]?
        var isEmpty: Bool { (indices ?? []).isEmpty && (values ?? []).isEmpty }
    }

    struct QueryRequest: Decodable {
        var namespace: String?
        var topK: Int?
        var filter: JSONValue?
        var includeValues: Bool?
        var includeMetadata: Bool?
        var vector: [Float]?
        var id: String?
        var sparseVector: SparseIn?
        var queries: JSONValue?
    }

    struct UpdateRequest: Decodable {
        var id: String?
        var values: [Float]?
        var setMetadata: JSONValue?
        var namespace: String?
        var sparseValues: SparseIn?
        var filter: JSONValue?
    }

    struct DeleteRequest: Decodable {
        var ids: [String]?
        var deleteAll: Bool?
        var namespace: String?
        var filter: JSONValue?
    }

    struct StatsRequest: Decodable {
        var filter: JSONValue?
    }

    // MARK: Data plane responses

    struct Usage: Encodable {
        var readUnits: Int?
        var writeUnits: Int?
    }

    struct ScoredVector: Encodable {
        var id: String
        var score: Float
        var values: [Float]
        var metadata: JSONValue?
    }

    struct QueryResponse: Encodable {
        var results: [String] = []
        var matches: [ScoredVector]
        var namespace: String
        var usage: Usage
    }

    struct VectorOut: Encodable {
        var id: String
        var values: [Float]
        var metadata: JSONValue?
    }

    struct FetchResponse: Encodable {
        var vectors: [String: VectorOut]
        var namespace: String
        var usage: Usage
    }

    struct UpsertResponse: Encodable {
        var upsertedCount: Int
    }

    struct ListItem: Encodable {
        var id: String
    }

    struct Pagination: Encodable {
        var next: String
    }

    struct ListResponse: Encodable {
        var vectors: [ListItem]
        var pagination: Pagination?
        var namespace: String
        var usage: Usage
    }

    struct NamespaceSummary: Encodable {
        var vectorCount: Int
    }

    struct StatsResponse: Encodable {
        var namespaces: [String: NamespaceSummary]
        var dimension: Int
        var indexFullness: Double = 0
        var totalVectorCount: Int
        var metric: String
        var vectorType = "dense"
    }

    struct Empty: Encodable {}

    // MARK: Control plane

    /// `POST /indexes`, in either generation: 2024-07 sends `dimension`, `metric` and `spec`; 2026-07 sends a
    /// `schema` whose `_values` field is the dense vector, and a `deployment`.
    struct CreateIndexRequest: Decodable {
        var name: String?
        var dimension: Int?
        var metric: String?
        var spec: JSONValue?
        var schema: JSONValue?
        var deployment: JSONValue?
        var deletion_protection: String?
        var vector_type: String?
    }
}
