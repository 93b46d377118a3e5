import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// The headers every answer carries, whoever writes it (a route, the JSON error middleware, the static files,
/// Hummingbird's own 400 for an unparsable request, or our 408 and 503 below the codec).
enum SecurityHeaders {
    /// `Content-Security-Policy` for the page in `Public`: its script and stylesheet are files of this origin (no
    /// inline code or styles, no `eval`); it fetches only this origin's API; posters come from this origin's
    /// `/posters/`, which redirects to the TMDB image CDN for posters not cached (a CSP also checks where a redirect
    /// lands, so the CDN's origin is allowed too), and the image being searched is previewed from a `blob:` URL. Nothing
    /// may frame it (`frame-ancestors`; `X-Frame-Options` for older browsers).
    static func contentSecurityPolicy(imageBaseURL: String) -> String {
        var images = ["'self'", "blob:"]
        if let origin = origin(of: imageBaseURL) { images.append(origin) }
        return [
            "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src \(images.joined(separator: " "))",
            "connect-src 'self'", "font-src 'self'", "manifest-src 'self'", "base-uri 'none'", "form-action 'self'",
            "frame-ancestors 'none'",
        ].joined(separator: "; ")
    }

    static func fields(imageBaseURL: String) -> HTTPFields {
        var fields = HTTPFields()
        fields[.contentSecurityPolicy] = contentSecurityPolicy(imageBaseURL: imageBaseURL)
        fields[.xContentTypeOptions] = "nosniff"
        fields[.xFrameOptions] = "DENY"
        // The page's URL holds the search (`?q=…`, `?movie=…`); the image CDN need not learn it.
        fields[.referrerPolicy] = "no-referrer"
        return fields
    }

    /// `scheme://host[:port]` of an http(s) URL, as CSP source expressions spell an origin; nil for anything else.
    static func origin(of url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else { return nil }
        let port = components.port.map { ":\($0)" } ?? ""
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(scheme)://\(bracketed)\(port)"
    }
}

extension HTTPField.Name {
    static let contentSecurityPolicy = Self("Content-Security-Policy")!
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let xFrameOptions = Self("X-Frame-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
}

/// Adds the security headers to every response head leaving the connection (a header the route set itself wins).
final class SecurityHeadersHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let fields: HTTPFields

    init(fields: HTTPFields) { self.fields = fields }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .head(var head) = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        for field in fields where head.headerFields[field.name] == nil { head.headerFields.append(field) }
        context.write(wrapOutboundOut(.head(head)), promise: promise)
    }
}
