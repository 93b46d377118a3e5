// `GET /healthz`, `GET /readyz`, `GET /metrics`.
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
    struct Readiness: Encodable {
        let status: String
        let movies: Int
        let models: [String]
    }

    func ready() async throws -> Response {
        do {
            let movies = try await store.movieCount()
            let names = ModelName.allCases.filter { models[$0] != nil }.map(\.apiName)
            return JSONBody.response(try JSONBody.encode(Readiness(status: "ready", movies: movies, models: names)))
        } catch {
            throw APIError(.serviceUnavailable, "the store is not available")
        }
    }

    func metricsText() async -> Response {
        let stats = try? await store.stats()
        metrics.updateGauges(stats: stats, pool: pool, cache: cache)
        var buffer: [UInt8] = []
        metrics.registry.emit(into: &buffer)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
    }
}
