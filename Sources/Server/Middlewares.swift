import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Store

/// An error answered as `{"error": message}` with `status` (and extra headers, e.g. Retry-After).
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }
}

enum JSONBody {
    static let contentType = "application/json; charset=utf-8"

    static func response(_ buffer: ByteBuffer, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = contentType
        return Response(status: status, headers: fields, body: .init(byteBuffer: buffer))
    }

    static func encode(_ value: some Encodable) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return ByteBuffer(data: try encoder.encode(value))
    }

    static func error(_ error: APIError) -> Response {
        let body = (try? encode(["error": error.message])) ?? ByteBuffer(string: #"{"error":"error"}"#)
        return response(body, status: error.status, headers: error.headers)
    }
}

extension HTTPResponse.Status {
    /// nginx's code for a request whose client went away before the answer.
    static let clientClosedRequest = HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request")
}

/// Outermost: turns every error into a JSON `{"error": …}` response. Known errors keep their status and message;
/// anything else is logged and answered as a generic 500 without details (no paths, no stack).
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return JSONBody.error(error)
        } catch let error as HTTPError {
            let message: String
            switch error.status {
            case .notFound: message = error.body ?? "not found: \(request.method) \(request.uri.path)"
            case .contentTooLarge: message = "request body is larger than \(maxBodyBytes) bytes"
            case .methodNotAllowed: message = "method \(request.method) not allowed here"
            default: message = error.body ?? error.status.reasonPhrase
            }
            return JSONBody.error(APIError(error.status, message, headers: error.headers))
        } catch let error as any HTTPResponseError {
            return JSONBody.error(APIError(error.status, error.status.reasonPhrase))
        } catch let error as HTTPParserError {
            // A malformed request (a broken chunked body, say): Hummingbird answers 400 and closes the connection,
            // which is all that can be done with a stream that has lost its framing.
            throw error
        } catch is ClientClosedRequest, is CancellationError {
            // Nobody reads this answer; it is only logged and counted.
            return JSONBody.error(APIError(.clientClosedRequest, "the client closed the connection"))
        } catch let error as any ServerStoreError where error.isTemporary {
            context.logger.warning("store unavailable", metadata: ["error": "\(error)"])
            return JSONBody.error(APIError(.serviceUnavailable, "the store is unavailable for now; try again shortly",
                                           headers: [.retryAfter: "5"]))
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: type(of: error)))"])
            return JSONBody.error(APIError(.internalServerError, "internal error"))
        }
    }
}

/// Request counts and latency per route (the matched route pattern, so the label set stays small), and one log line
/// per request at `info`.
struct ObservabilityMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let start = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            // Only reached for errors the JSON middleware outside did not see yet; it answers them.
            let status = (error as? any HTTPResponseError)?.status.code ?? (error as? APIError)?.status.code
                ?? (error is HTTPParserError ? 400 : 500)
            finish(request, context: context, status: status, start: start)
            throw error
        }
        finish(request, context: context, status: response.status.code, start: start)
        return response
    }

    func finish(_ request: Request, context: Context, status: Int, start: ContinuousClock.Instant) {
        let duration = ContinuousClock.now - start
        let route = context.endpointPath ?? (status == 404 ? "NotFound" : "static")
        metrics.recordRequest(route: route, method: request.method.rawValue, status: status, duration: duration)
        if context.logger.logLevel <= .info {
            let ms = Double(duration.components.attoseconds) / 1e15 + Double(duration.components.seconds) * 1e3
            context.logger.info(
                "request",
                metadata: [
                    "method": "\(request.method)", "path": "\(request.uri.path)", "route": "\(route)",
                    "status": "\(status)", "ms": "\(String(format: "%.2f", ms))",
                ])
        }
    }
}

/// CORS for the configured origins (`*` for any): answers preflight `OPTIONS` requests and adds
/// `Access-Control-Allow-Origin` to the others.
struct CORSOriginsMiddleware<Context: RequestContext>: RouterMiddleware {
    let origins: [String]

    func allowed(_ origin: String?) -> String? {
        guard let origin else { return nil }
        if origins.contains("*") { return "*" }
        return origins.contains(origin) ? origin : nil
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let origin = request.headers[.origin]
        guard let allow = allowed(origin) else {
            return try await next(request, context)
        }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var headers: HTTPFields = [:]
            headers[.accessControlAllowOrigin] = allow
            headers[.accessControlAllowMethods] = "GET, POST, OPTIONS"
            headers[.accessControlAllowHeaders] = request.headers[.accessControlRequestHeaders] ?? "Content-Type"
            headers[.accessControlMaxAge] = "600"
            if allow != "*" { headers[.vary] = "Origin" }
            return Response(status: .noContent, headers: headers)
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = JSONBody.error(error)
        }
        response.headers[.accessControlAllowOrigin] = allow
        if allow != "*" { response.headers[.vary] = "Origin" }
        return response
    }
}

/// Refuses query strings longer than the limit (414), and those that are not text (400): malformed percent-escapes,
/// bytes that are not UTF-8, NUL and the other control characters, before any handler parses them. Handlers (and the
/// stores behind them: SQLite's C API ends text at a NUL) then only ever see valid text.
struct QueryLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxQueryBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if let query = request.uri.query {
            if query.utf8.count > maxQueryBytes {
                throw APIError(.uriTooLong, "query string is longer than \(maxQueryBytes) bytes")
            }
            if let problem = QueryParameters.invalidText(in: query) {
                throw APIError(.badRequest, "invalid query string: \(problem)")
            }
        }
        return try await next(request, context)
    }
}
