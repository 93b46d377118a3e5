// `GET /api/movies`: the title autocomplete.
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
    struct TitleEntry: Encodable {
        let id: String
        let label: String
        let title: String
        let release_date: String?
        let poster_path: String?
        let vote_average: Double?
        let popularity: Double?
    }

    func movies(_ request: Request) async throws -> Response {
        let q = QueryParameters(request.uri.query)
        let text = q["q"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard text.count <= 200 else { throw APIError(.badRequest, "q must be at most 200 characters") }
        let limit = try q.int("limit", default: 20, range: 1...configuration.maxTitleLimit)!
        return try await cached("titles|\(limit)|\(text)") {
            let found = try await store.searchTitles(text, limit: limit)
            return try JSONBody.encode(
                found.map {
                    TitleEntry(
                        id: String($0.id), label: $0.label, title: $0.title, release_date: $0.releaseDate,
                        poster_path: $0.posterPath, vote_average: $0.voteAverage, popularity: $0.popularity)
                })
        }
    }
}
