// What every `/pinecone` request passes first: its answers' error shape, and the key check.
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PosterSimCore
import Store

/// An error of the Pinecone API, answered in Pinecone's JSON shape: the control plane's
/// `{"error": {"code": "NOT_FOUND", "message": …}, "status": 404}`, the data plane's gRPC-style
/// `{"code": 5, "message": …, "details": []}`.
struct PineconeError: Error, Sendable {
    var status: HTTPResponse.Status
    var message: String
    var headers: HTTPFields = [:]

    static func badRequest(_ message: String) -> PineconeError { .init(status: .badRequest, message: message) }

    /// The gRPC status name and number Pinecone pairs with each HTTP status.
    var code: (name: String, number: Int) {
        switch status.code {
        case 400: return ("INVALID_ARGUMENT", 3)
        case 401: return ("UNAUTHENTICATED", 16)
        case 403: return ("FORBIDDEN", 7)
        case 404: return ("NOT_FOUND", 5)
        case 409: return ("ALREADY_EXISTS", 6)
        case 413: return ("REQUEST_TOO_LARGE", 11)
        case 429: return ("RESOURCE_EXHAUSTED", 8)
        case 501: return ("UNIMPLEMENTED", 12)
        case 503: return ("UNAVAILABLE", 14)
        default: return ("INTERNAL", 13)
        }
    }

    func response(dataPlane: Bool) -> Response {
        let body: JSONValue
        if dataPlane {
            body = .object(["code": .number(Double(code.number)), "message": .string(message), "details": .array([])])
        } else {
            body = .object([
                "error": .object(["code": .string(code.name), "message": .string(message)]),
                "status": .number(Double(status.code)),
            ])
        }
        let buffer = (try? JSONBody.encode(body)) ?? ByteBuffer(string: #"{"message":"error"}"#)
        return JSONBody.response(buffer, status: status, headers: headers)
    }

    /// A decoding error's path and reason, without echoing the body.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "unreadable" }
        func path(_ context: DecodingError.Context) -> String {
            let p = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "" : " at \(p)"
        }
        switch error {
        case .typeMismatch(let type, let c): return "expected \(type)\(path(c))"
        case .valueNotFound(let type, let c): return "missing \(type)\(path(c))"
        case .keyNotFound(let key, let c): return "missing key '\(key.stringValue)'\(path(c))"
        case .dataCorrupted(let c): return "malformed JSON\(path(c))"
        @unknown default: return "unreadable"
        }
    }
}

extension PineconeError {
    /// Any error a `/pinecone` handler throws, as the Pinecone error to answer; nil for those the outer JSON
    /// middleware handles the same way for every route (client gone, a malformed stream).
    init?(_ error: any Error, maxBodyBytes: Int) {
        switch error {
        case let e as PineconeError: self = e
        case let e as RecordIndexError:
            switch e {
            case .unknownIndex: self.init(status: .notFound, message: e.description)
            case .indexExists: self.init(status: .conflict, message: e.description)
            case .invalidArgument(let why): self.init(status: .badRequest, message: why)
            }
        case let e as StoreError:
            switch e {
            case .dimensionMismatch, .invalidVector, .invalidK: self.init(status: .badRequest, message: e.description)
            default: self.init(status: .internalServerError, message: "internal error")
            }
        case is DecodingError:
            self.init(status: .badRequest, message: "the request body is not valid JSON for this call: \(Self.describe(error))")
        case is EmbeddingPoolBusy:
            self.init(status: .tooManyRequests, message: "too many requests at once; retry shortly", headers: [.retryAfter: "1"])
        case let e as any ServerStoreError where e.isTemporary:
            self.init(status: .serviceUnavailable, message: "the store is unavailable for now; try again shortly",
                      headers: [.retryAfter: "5"])
        case is NIOTooManyBytesError:
            self.init(status: .contentTooLarge, message: "request body is larger than the limit of \(maxBodyBytes) bytes")
        case let e as HTTPError where e.status == .contentTooLarge:
            self.init(status: .contentTooLarge, message: "request body is larger than the limit of \(maxBodyBytes) bytes")
        case let e as APIError: self.init(status: e.status, message: e.message, headers: e.headers)
        default: return nil
        }
    }

}

/// The outermost middleware of `/pinecone`: answers every error in Pinecone's shape (the data plane's under
/// `/pinecone/index/`), so an SDK reads a status and message it knows; nothing unexpected becomes more than a
/// generic 500.
struct PineconeErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            guard let mapped = PineconeError(error, maxBodyBytes: maxBodyBytes) else {
                if error is CancellationError || error is ClientClosedRequest { throw error }
                context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: type(of: error)))"])
                return PineconeError(status: .internalServerError, message: "internal error")
                    .response(dataPlane: Self.isDataPlane(request))
            }
            return mapped.response(dataPlane: Self.isDataPlane(request))
        }
    }

    static func isDataPlane(_ request: Request) -> Bool { request.uri.path.hasPrefix("/pinecone/index/") }
}

/// The keys `/pinecone` accepts, compared in constant time (the time taken does not depend on how much of a key a
/// guess got right, nor on which key matched).
struct PineconeKeys: Sendable {
    private let keys: [[UInt8]]

    init(_ keys: [String]) { self.keys = keys.filter { !$0.isEmpty }.map { Array($0.utf8) } }

    var isEmpty: Bool { keys.isEmpty }

    func accepts(_ given: String) -> Bool {
        let candidate = Array(given.utf8)
        var matched: UInt8 = 0
        for key in keys {
            matched |= Self.equal(key, candidate)
        }
        return matched != 0
    }

    /// 1 when equal, else 0, reading every byte of the longer of the two whatever they hold.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> UInt8 {
        var difference = UInt64(a.count ^ b.count)
        let n = max(a.count, b.count)
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            difference |= UInt64(x ^ y)
        }
        return difference == 0 ? 1 : 0
    }
}

/// With keys: every `/pinecone` request needs `Api-Key` equal to one of them (401 otherwise). Without: only clients
/// on loopback are answered (403 to others). The key is never logged or echoed.
struct PineconeAuthMiddleware: RouterMiddleware {
    typealias Context = ServerRequestContext
    let keys: PineconeKeys

    static let apiKey = HTTPField.Name("Api-Key")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if keys.isEmpty {
            guard Self.isLoopback(context.channel.remoteAddress) else {
                throw PineconeError(
                    status: .forbidden,
                    message: "this server has no API key set, so /pinecone answers only clients on this machine "
                        + "(start serve with --api-key)")
            }
        } else {
            guard let given = request.headers[Self.apiKey], keys.accepts(given) else {
                throw PineconeError(status: .unauthorized, message: "Invalid API Key")
            }
        }
        return try await next(request, context)
    }

    static func isLoopback(_ address: SocketAddress?) -> Bool {
        guard let address else { return false }
        switch address {
        case .v4(let a):
            return (UInt32(bigEndian: a.address.sin_addr.s_addr) >> 24) == 127
        case .v6(let a):
            let bytes = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
            if bytes == [UInt8](repeating: 0, count: 15) + [1] { return true }
            // ::ffff:127.x.y.z, an IPv4 loopback client on a dual-stack socket.
            return bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff && bytes[12] == 127
        case .unixDomainSocket:
            return true
        }
    }
}
