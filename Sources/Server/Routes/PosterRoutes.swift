// `GET /posters/FILE`: the ingest's cached poster, else a redirect to the image CDN.
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
    /// A poster from the local cache (any size the ingest stored, the configured one first), else a redirect to the
    /// image CDN at the configured size.
    func poster(file: String) throws -> Response {
        let posterPath = "/" + file
        guard (try? PosterCache(directory: URL(fileURLWithPath: "/")).fileURL(posterPath: posterPath, size: "w500")) != nil else {
            throw APIError(.badRequest, "invalid poster path")
        }
        if let posterCache {
            var sizes = [configuration.posterSize, "original", "w780", "w500", "w342", "w185"]
            var seen = Set<String>()
            sizes = sizes.filter { seen.insert($0).inserted }
            for size in sizes {
                if let bytes = posterCache.read(posterPath: posterPath, size: size), let format = PosterDecoder.sniff(bytes) {
                    let type: String
                    switch format {
                    case .jpeg: type = "image/jpeg"
                    case .png: type = "image/png"
                    case .webp: type = "image/webp"
                    }
                    return Response(
                        status: .ok, headers: [.contentType: type, .cacheControl: "public, max-age=86400"],
                        body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
                }
            }
        }
        return Response(
            status: .found,
            headers: [.location: "\(configuration.imageBaseURL)/\(configuration.posterSize)\(posterPath)",
                      .cacheControl: "public, max-age=3600"])
    }
}
