import Foundation
import Hummingbird

/// The names a `Host` header may give. DNS rebinding points a name the attacker owns at 127.0.0.1, so a page from
/// that name can call a server bound to loopback as if same-origin; its requests still carry the attacker's name in
/// `Host`, which this list refuses.
struct HostAllowList: Sendable {
    private var any = false
    private var exact: [(name: String, port: String?)] = []
    private var suffixes: [String] = []

    /// Entries: `name` (any port), `name:port`, `[v6]`, `[v6]:port`, `*.domain` (its subdomains, any port), `*`.
    init(_ entries: [String]) {
        for entry in entries.map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            if entry == "*" {
                any = true
            } else if entry.hasPrefix("*.") {
                suffixes.append(Self.normalized(String(entry.dropFirst())))
            } else if let (name, port) = Self.split(entry) {
                exact.append((name, port))
            }
        }
    }

    func allows(_ host: String?) -> Bool {
        if any { return true }
        guard let host, let (name, port) = Self.split(host) else { return false }
        if exact.contains(where: { $0.name == name && ($0.port == nil || $0.port == port) }) { return true }
        return suffixes.contains { name.hasSuffix($0) && name.count > $0.count }
    }

    /// `host[:port]` into a lowercased name without a trailing dot and the port digits; nil when malformed.
    static func split(_ text: String) -> (name: String, port: String?)? {
        var name: Substring
        var rest: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            name = text[...close]
            rest = text[text.index(after: close)...]
        } else if let colon = text.lastIndex(of: ":") {
            name = text[..<colon]
            rest = text[colon...]
        } else {
            name = Substring(text)
            rest = ""
        }
        var port: String?
        if !rest.isEmpty {
            guard rest.first == ":", rest.count > 1, rest.dropFirst().allSatisfy(\.isASCIIDigit) else { return nil }
            port = String(rest.dropFirst())
        }
        guard !name.isEmpty, !name.contains(":") || name.hasPrefix("[") else { return nil }
        return (normalized(String(name)), port)
    }

    static func normalized(_ name: String) -> String {
        let lower = name.lowercased()
        return lower.hasSuffix(".") ? String(lower.dropLast()) : lower
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

/// Refuses requests whose `Host` is not on the allow-list (421, as for a request that reached the wrong server).
struct HostAllowListMiddleware<Context: RequestContext>: RouterMiddleware {
    let allowList: HostAllowList

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let host = request.head.authority
        guard allowList.allows(host) else {
            guard let host else { throw APIError(.badRequest, "the request has no Host header") }
            throw APIError(
                .misdirectedRequest,
                "this server does not answer for host '\(host.prefix(100))' (see --allowed-host)")
        }
        return try await next(request, context)
    }
}

/// Never serves a path with a segment that starts with a dot: hidden files (`.env`, `.git/…`) that a `--public-dir`
/// may hold, and `..` however it is spelled (`%2e%2e`, `%2F`), which the decoded path shows as a segment.
struct HiddenPathMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard let path = request.uri.path.removingPercentEncoding else {
            throw APIError(.badRequest, "invalid percent-encoding in the path")
        }
        if path.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
            throw APIError(.notFound, "not found: \(request.method) \(request.uri.path.prefix(200))")
        }
        return try await next(request, context)
    }
}
