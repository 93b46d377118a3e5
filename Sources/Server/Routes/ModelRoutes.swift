// `GET /api/models`: each model's space in the store and whether this server has it loaded.
import Foundation
import HTTPTypes
import Hummingbird
import Imaging
import Logging
import Embedding
import PosterSimCore
import NIOCore
import Store

extension API {
    struct ModelEntry: Encodable {
        let name: String
        let id: String
        let repo: String
        /// The precision the loaded model computes in, else the one of the store's current vectors.
        let precision: String
        let dimension: Int
        let metric: String
        let vectors: Int
        let staleVectors: Int
        let loaded: Bool
        let text: Bool
        let checkpointMatchesStore: Bool?
    }

    func modelList() async throws -> Response {
        let stats = try await store.stats()
        let entries = ModelName.allCases.map { name -> ModelEntry in
            let space = stats.spaces.first { $0.space.name == name.rawValue }
            let served = models[name]
            return ModelEntry(
                name: name.apiName, id: name.rawValue, repo: served?.identity.repo ?? space?.identity.repo ?? name.repoID,
                precision: (served?.identity.precision ?? space?.identity.precision ?? .fp32).rawValue,
                dimension: space?.space.dimension ?? served?.space.dimension ?? name.embeddingDimension,
                metric: (space?.space.metric ?? served?.space.metric ?? name.metric).rawValue,
                vectors: space?.vectors ?? 0, staleVectors: space?.staleVectors ?? 0, loaded: served != nil,
                text: served?.supportsText ?? false,
                checkpointMatchesStore: served.flatMap { s in space.map { $0.identity == s.identity } })
        }
        return JSONBody.response(try JSONBody.encode(entries))
    }
}
