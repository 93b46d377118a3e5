// `/pinecone`: Pinecone's REST API over this server's store, so code written for Pinecone runs here with only its
// host changed. The control plane (`/pinecone/indexes…`) manages users' indexes (`RecordIndexStore`) and lists the
// model spaces as read-only indexes; each index's data plane lives at `/pinecone/index/NAME/…`, its `host`.
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PosterSimCore
import Store

/// The Pinecone handlers' shared state.
struct PineconeAPI: Sendable {
    let configuration: ServerConfiguration
    /// The movie store (model indexes read from it).
    let store: any VectorStore
    /// Users' indexes; nil when the store keeps none (every user-index call then answers 501).
    let records: (any RecordIndexStore)?
    /// Data-plane requests in flight and waiting (429 beyond).
    let gate: EmbeddingPool

    init(configuration: ServerConfiguration, store: any VectorStore) {
        self.configuration = configuration
        self.store = store
        records = store as? any RecordIndexStore
        gate = EmbeddingPool(maxConcurrent: configuration.pineconeConcurrency, maxQueued: configuration.pineconeQueueLimit)
    }

    func addRoutes(to router: Router<ServerRequestContext>) {
        let group = router.group("/pinecone")
            .add(middleware: PineconeErrorMiddleware(maxBodyBytes: configuration.pineconeMaxBodyBytes))
            .add(middleware: PineconeAuthMiddleware(keys: PineconeKeys(configuration.pineconeAPIKeys)))
        group.get("/indexes") { request, _ in try await listIndexes(request) }
        group.post("/indexes") { request, _ in try await createIndex(request) }
        group.get("/indexes/:name") { request, context in try await describeIndex(request, name: try context.name()) }
        group.delete("/indexes/:name") { _, context in try await deleteIndex(name: try context.name()) }
        group.patch("/indexes/:name") { _, _ -> Response in
            throw PineconeError(status: .badRequest, message: "configure_index is not supported by PosterSim")
        }

        let data = group.group("/index/:name")
        data.post("/vectors/upsert") { r, c in try await gated { try await upsert(r, index: try c.name()) } }
        data.post("/query") { r, c in try await gated { try await query(r, index: try c.name()) } }
        data.get("/vectors/fetch") { r, c in try await gated { try await fetch(r, index: try c.name()) } }
        data.post("/vectors/update") { r, c in try await gated { try await update(r, index: try c.name()) } }
        data.post("/vectors/delete") { r, c in try await gated { try await delete(r, index: try c.name()) } }
        data.delete("/vectors/delete") { r, c in try await gated { try await delete(r, index: try c.name()) } }
        data.get("/vectors/list") { r, c in try await gated { try await list(r, index: try c.name()) } }
        data.post("/describe_index_stats") { r, c in try await gated { try await stats(r, index: try c.name()) } }
        data.get("/describe_index_stats") { r, c in try await gated { try await stats(r, index: try c.name()) } }
    }

    func gated(_ body: () async throws -> Response) async throws -> Response {
        try await gate.admit(body)
    }

    // MARK: Shared

    /// What an index name refers to.
    enum Target {
        case records(any RecordIndexStore, RecordIndexDescription)
        case model(ModelName)
    }

    func target(_ name: String) async throws -> Target {
        if let model = ModelName(rawValue: name) { return .model(model) }
        let records = try requireRecords()
        guard let description = try await records.recordIndex(named: name) else {
            throw RecordIndexError.unknownIndex(name)
        }
        return .records(records, description)
    }

    func requireRecords() throws -> any RecordIndexStore {
        guard let records else {
            throw PineconeError(status: .notImplemented, message: "this store keeps no Pinecone indexes")
        }
        return records
    }

    /// The body as `T`, within Pinecone's 2 MB per request; an empty body reads as `{}`.
    func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        let buffer = try await request.body.collect(upTo: configuration.pineconeMaxBodyBytes)
        let data = buffer.readableBytes == 0 ? Data("{}".utf8) : Data(buffer: buffer)
        return try JSONDecoder().decode(T.self, from: data)
    }

    /// The base URL clients reach this server at: `--public-url`, else `http://` and the request's `Host` (which
    /// the allow-list has vetted).
    func origin(_ request: Request) -> String {
        if let url = configuration.publicURL {
            return url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        return "http://" + (request.head.authority ?? "\(configuration.host):\(configuration.port)")
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        JSONBody.response(try JSONBody.encode(value), status: status)
    }

    static func readOnly(_ model: ModelName) -> PineconeError {
        PineconeError(
            status: .forbidden,
            message: "index '\(model.rawValue)' holds the posters' \(model.apiName) vectors and is read-only here; "
                + "`postersim ingest` fills it")
    }
}

extension ServerRequestContext {
    /// The `:name` path parameter.
    func name() throws -> String {
        guard let name = parameters.get("name") else { throw PineconeError.badRequest("missing index name") }
        return name
    }
}

extension API {
    func addPineconeRoutes(to router: Router<ServerRequestContext>) {
        PineconeAPI(configuration: configuration, store: store).addRoutes(to: router)
    }
}
