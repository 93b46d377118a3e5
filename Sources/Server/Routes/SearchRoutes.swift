// `POST /api/search/image` and `GET /api/search/text`: embed the upload or the text on the bounded pool, then search.
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
    func servedModel(_ q: QueryParameters, default fallback: ModelName) throws -> any EmbeddingModel {
        var name = fallback
        if let text = q.text("model") {
            guard let parsed = ModelName(apiName: text) else {
                throw APIError(.badRequest, "unknown model '\(text.prefix(40))': use CLIP, ResNet-50 or VGG16")
            }
            name = parsed
        }
        guard let served = models[name] else {
            throw APIError(.serviceUnavailable, "\(name.apiName) is not loaded on this server")
        }
        return served
    }

    func searchImage(_ request: Request) async throws -> Response {
        let q = QueryParameters(request.uri.query)
        let served = try servedModel(q, default: .clip)
        let k = try q.int("topK", default: 10, range: 1...configuration.maxTopK)!
        let filter = try q.filter()
        // `exact=true`: always the exact scan (big spaces otherwise answer through the neighbour lists).
        let exact = try q.bool("exact", default: false)
        let limit = configuration.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw APIError(.contentTooLarge, "request body is larger than \(limit) bytes")
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "request body is larger than \(limit) bytes")
        }
        let bytes: [UInt8]
        switch MultipartImage.boundary(contentType: request.headers[.contentType]) {
        case .some(.some(let boundary)):
            do {
                guard let part = try MultipartImage.field("image", in: body, boundary: boundary) else {
                    throw APIError(.badRequest, "the multipart body has no 'image' field")
                }
                bytes = part
            } catch let error as APIError {
                throw error
            } catch {
                throw APIError(.badRequest, "malformed multipart body")
            }
        case .some(.none):
            throw APIError(.badRequest, "multipart/form-data without a boundary")
        case .none:
            bytes = body.getBytes(at: body.readerIndex, length: body.readableBytes) ?? []
        }
        guard !bytes.isEmpty else {
            throw APIError(.badRequest, "empty body: send the image bytes, or a multipart form with a field 'image'")
        }
        guard PosterDecoder.sniff(bytes) != nil else {
            throw APIError(.unsupportedMediaType, ImageDecodingError.unknownFormat.description)
        }
        let decoder = self.decoder
        let model = served
        let start = ContinuousClock.now
        let vector: [Float]
        do {
            vector = try await pool.run {
                let image = try decoder.decode(bytes)
                return try model.embed(images: [image])[0]
            }
        } catch is EmbeddingPoolBusy {
            metrics.recordPoolRejection()
            throw APIError(.serviceUnavailable, "too many searches in progress; retry shortly", headers: [.retryAfter: "1"])
        } catch let error as ImageDecodingError {
            throw APIError(.badRequest, error.description)
        } catch PreprocessingError.emptyImage(let width, let height) {
            throw APIError(.badRequest, "the image is \(width)x\(height) pixels: too small to embed")
        } catch PreprocessingError.imageTooLarge(let width, let height) {
            throw APIError(.contentTooLarge, "the image is \(width)x\(height) pixels: too large to embed")
        }
        metrics.recordEmbedding(model: served.name.apiName, kind: "image", duration: ContinuousClock.now - start)
        return JSONBody.response(try await vectorSearch(vector, served: served, k: k, filter: filter, exact: exact))
    }

    func searchText(_ request: Request) async throws -> Response {
        let q = QueryParameters(request.uri.query)
        guard let text = q.text("q") else { throw APIError(.badRequest, "q (the text to search for) is required") }
        guard text.count <= 500 else { throw APIError(.badRequest, "q must be at most 500 characters") }
        let k = try q.int("topK", default: 10, range: 1...configuration.maxTopK)!
        let filter = try q.filter()
        // `exact=true`: always the exact scan (big spaces otherwise answer through the neighbour lists).
        let exact = try q.bool("exact", default: false)
        guard let served = models[.clip], served.supportsText else {
            throw APIError(.serviceUnavailable, "text search needs CLIP with its tokenizer, which is not loaded")
        }
        return try await cached("text|\(k)|\(filter.cacheKey)|\(exact)|\(text)") {
            let model = served
            let start = ContinuousClock.now
            let vector: [Float]
            do {
                vector = try await pool.run { try model.embed(texts: [text])[0] }
            } catch is EmbeddingPoolBusy {
                metrics.recordPoolRejection()
                throw APIError(.serviceUnavailable, "too many searches in progress; retry shortly", headers: [.retryAfter: "1"])
            }
            metrics.recordEmbedding(model: served.name.apiName, kind: "text", duration: ContinuousClock.now - start)
            return try await vectorSearch(vector, served: served, k: k, filter: filter, exact: exact)
        }
    }

    func vectorSearch(
        _ vector: [Float], served: any EmbeddingModel, k: Int, filter: SearchFilter, exact: Bool
    ) async throws -> ByteBuffer {
        let space = served.space.name
        let matches: [SearchMatch]
        do {
            matches = try await store.query(space: space, vector: vector, k: k, filter: filter, exact: exact)
        } catch StoreError.unknownSpace {
            throw APIError(.notFound, "The store has no \(served.name.apiName) vectors yet")
        } catch StoreError.dimensionMismatch(_, let expected, let actual) {
            throw APIError(
                .conflict, "the loaded \(served.name.apiName) makes \(actual)-d vectors but the store holds \(expected)-d ones")
        } catch StoreError.invalidVector(_, let reason) {
            throw APIError(.unprocessableContent, "the image gave an unusable vector: \(reason)")
        }
        return try await matchesBody(matches, space: space, includeValues: false)
    }
}
