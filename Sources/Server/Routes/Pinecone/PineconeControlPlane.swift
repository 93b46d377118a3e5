// The control plane: list, describe, create and delete indexes, in the shape of the API version the client asks
// for (`X-Pinecone-API-Version`): 2024-07 (pinecone 5.x) describes an index by `dimension`, `metric` and `spec`;
// 2026-07 (pinecone 10.x) by a `schema` whose `_values` field is the dense vector, and a `deployment`.
import Foundation
import HTTPTypes
import Hummingbird
import PosterSimCore
import Store

extension PineconeAPI {
    static let apiVersionHeader = HTTPField.Name("X-Pinecone-API-Version")!

    /// Whether the client speaks the schema-based API (2026-01 and later).
    static func wantsSchemaShape(_ request: Request) -> Bool {
        guard let version = request.headers[apiVersionHeader] else { return false }
        return version >= "2026-01"
    }

    /// One index as the client's API version describes it.
    func indexModel(_ d: RecordIndexDescription, request: Request) -> JSONValue {
        let host = JSONValue.string(origin(request) + "/pinecone/index/" + d.name)
        let status = JSONValue.object(["ready": .bool(true), "state": .string("Ready")])
        if Self.wantsSchemaShape(request) {
            return .object([
                "name": .string(d.name), "host": host, "status": status,
                "schema": .object([
                    "fields": .object([
                        "_values": .object([
                            "type": .string("dense_vector"), "dimension": .number(Double(d.dimension)),
                            "metric": .string(d.metric.rawValue),
                        ])
                    ])
                ]),
                "deployment": .object([
                    "deployment_type": .string("managed"), "cloud": .string(d.cloud), "region": .string(d.region),
                ]),
                "deletion_protection": .string("disabled"),
                "tags": .null,
            ])
        }
        return .object([
            "name": .string(d.name), "dimension": .number(Double(d.dimension)), "metric": .string(d.metric.rawValue),
            "host": host, "status": status,
            "spec": .object(["serverless": .object(["cloud": .string(d.cloud), "region": .string(d.region)])]),
            "deletion_protection": .string("disabled"),
            "vector_type": .string("dense"),
        ])
    }

    /// A model space as an index: named by the model's id, its dimension and metric.
    func modelIndexDescription(_ model: ModelName) async throws -> RecordIndexDescription {
        let stats = try await store.stats()
        let space = stats.spaces.first { $0.space.name == model.rawValue }?.space
        let metric: RecordMetric = (space?.metric ?? model.metric) == .cosine ? .cosine : .euclidean
        return RecordIndexDescription(
            name: model.rawValue, dimension: space?.dimension ?? model.embeddingDimension, metric: metric,
            cloud: "aws", region: "local")  // pinecone 5.x accepts only aws, gcp and azure
    }

    func listIndexes(_ request: Request) async throws -> Response {
        var all: [RecordIndexDescription] = []
        for model in ModelName.allCases { all.append(try await modelIndexDescription(model)) }
        if let records { all.append(contentsOf: try await records.recordIndexes()) }
        return try Self.json(JSONValue.object(["indexes": .array(all.map { indexModel($0, request: request) })]))
    }

    func describeIndex(_ request: Request, name: String) async throws -> Response {
        switch try await target(name) {
        case .model(let model): return try Self.json(indexModel(try await modelIndexDescription(model), request: request))
        case .records(_, let d): return try Self.json(indexModel(d, request: request))
        }
    }

    func createIndex(_ request: Request) async throws -> Response {
        let body = try await decode(PineconeWire.CreateIndexRequest.self, from: request)
        let description = try Self.parseCreate(body)
        if ModelName(rawValue: description.name) != nil {
            throw RecordIndexError.indexExists(description.name)
        }
        let records = try requireRecords()
        try await records.createRecordIndex(description)
        return try Self.json(indexModel(description, request: request), status: .created)
    }

    func deleteIndex(name: String) async throws -> Response {
        if let model = ModelName(rawValue: name) { throw Self.readOnly(model) }
        try await requireRecords().deleteRecordIndex(named: name)
        return Response(status: .accepted)
    }

    /// Reads either generation's create request.
    static func parseCreate(_ body: PineconeWire.CreateIndexRequest) throws -> RecordIndexDescription {
        guard let name = body.name else { throw PineconeError.badRequest("name is required") }
        var dimension = body.dimension
        var metricText = body.metric
        var cloud = "aws"
        var region = "us-east-1"
        if let type = body.vector_type, type != "dense" {
            throw PineconeError.badRequest("only dense indexes are supported, got vector_type '\(type.prefix(40))'")
        }
        if let fields = body.schema?[member: "fields"] {
            guard case .object(let members) = fields else { throw PineconeError.badRequest("schema.fields must be an object") }
            for (fieldName, field) in members {
                let type = field[member: "type"]?.stringValue
                if fieldName == "_values" || type == "dense_vector" {
                    guard type == nil || type == "dense_vector" else {
                        throw PineconeError.badRequest("schema field '_values' must be a dense_vector")
                    }
                    dimension = field[member: "dimension"]?.intValue ?? dimension
                    metricText = field[member: "metric"]?.stringValue ?? metricText
                } else if type == "sparse_vector" || type == "semantic_text" {
                    throw PineconeError.badRequest("only dense vector indexes are supported, not \(type!) fields")
                }
                // Other (metadata) fields need no declaration here: every metadata field is filterable.
            }
        }
        if let deployment = body.deployment {
            if let type = deployment[member: "deployment_type"]?.stringValue, type != "managed" {
                throw PineconeError.badRequest("only serverless (managed) deployments are supported, got '\(type.prefix(40))'")
            }
            cloud = deployment[member: "cloud"]?.stringValue ?? cloud
            region = deployment[member: "region"]?.stringValue ?? region
        } else if let spec = body.spec {
            if let serverless = spec[member: "serverless"] {
                cloud = serverless[member: "cloud"]?.stringValue ?? cloud
                region = serverless[member: "region"]?.stringValue ?? region
            } else if spec[member: "pod"] != nil {
                throw PineconeError.badRequest("pod indexes are not supported; use ServerlessSpec")
            }
        }
        guard let dimension else { throw PineconeError.badRequest("dimension is required for dense indexes") }
        let metric: RecordMetric
        if let metricText {
            guard let parsed = RecordMetric(rawValue: metricText.lowercased()) else {
                throw PineconeError.badRequest("metric must be cosine, euclidean or dotproduct, got '\(metricText.prefix(40))'")
            }
            metric = parsed
        } else {
            metric = .cosine
        }
        let description = RecordIndexDescription(name: name, dimension: dimension, metric: metric, cloud: cloud, region: region)
        try description.validate()
        return description
    }
}
