// Security headers on every answer, the Host allow-list, hidden files.
import Foundation
import Server
import Testing

extension AllServerTests {
    @Suite struct SecurityTests {
        static let securityHeaders = [
            "content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy",
        ]

        /// Pages, assets, API answers, errors of every kind and Hummingbird's own 400 all carry the headers.
        @Test func securityHeadersOnEveryAnswer() async throws {
            let store = try await Fixtures.populatedStore(count: 2)
            try await withServer(store: store) { server in
                let replies = try await Fixtures.offThePool {
                    var replies: [(String, Int, [String: String])] = []
                    for (name, request) in [
                        ("page", rawGET("/")), ("script", rawGET("/app.js")), ("api", rawGET("/api/models")),
                        ("404", rawGET("/nope")), ("400", rawGET("/api/get-similar-movies")),
                        ("405", "DELETE /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
                        ("421", rawGET("/healthz", host: "evil.test")), ("unparsable", "NONSENSE\r\n\r\n"),
                    ] {
                        let connection = try RawConnection(port: server.port)
                        try connection.send(request)
                        let reply = try connection.readResponse()
                        replies.append((name, reply.status, reply.headers))
                    }
                    return replies
                }
                for (name, status, headers) in replies {
                    for header in Self.securityHeaders {
                        #expect(headers[header] != nil, "\(name) (\(status)) lacks \(header)")
                    }
                    #expect(headers["x-content-type-options"] == "nosniff" && headers["x-frame-options"] == "DENY")
                    #expect(headers["referrer-policy"] == "no-referrer")
                }
                let csp = try #require(replies.first?.2["content-security-policy"])
                for directive in [
                    "default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
                    "frame-ancestors 'none'", "img-src 'self' blob: https://images.example.test",
                ] {
                    #expect(csp.contains(directive), "\(csp)")
                }
            }
        }

        /// Loopback names with any port by default; any other name (a rebound DNS name) gets 421 and a JSON error.
        @Test func hostAllowList() async throws {
            let store = try await Fixtures.populatedStore(count: 1)
            @Sendable func statuses(_ server: TestServer, _ hosts: [String]) async throws -> [String: (Int, String)] {
                try await Fixtures.offThePool {
                    var out: [String: (Int, String)] = [:]
                    for host in hosts {
                        let connection = try RawConnection(port: server.port)
                        try connection.send(rawGET("/healthz", host: host))
                        let reply = try connection.readResponse()
                        out[host] = (reply.status, String(decoding: reply.body, as: UTF8.self))
                    }
                    return out
                }
            }
            try await withServer(store: store) { server in
                let allowed = ["localhost", "localhost:8080", "127.0.0.1", "127.0.0.1:\(server.port)", "[::1]", "[::1]:80", "LOCALHOST."]
                let refused = ["evil.test", "evil.test:\(server.port)", "localhost.evil.test", "127.0.0.1.nip.io", "[::2]", "::1"]
                let seen = try await statuses(server, allowed + refused)
                for host in allowed { #expect(seen[host]?.0 == 200, "\(host): \(seen[host]!)") }
                for host in refused {
                    #expect(seen[host]?.0 == 421, "\(host): \(seen[host]!)")
                    #expect(seen[host]?.1.hasPrefix(#"{"error":"#) == true)
                }
            }
            var configuration = Fixtures.testConfiguration
            configuration.allowedHosts = ["posters.example", "*.example.org", "api.example.net:8443"]
            try await withServer(configuration, store: store) { server in
                let seen = try await statuses(
                    server, ["posters.example:443", "a.example.org", "example.org", "api.example.net:8443", "api.example.net", "localhost"])
                #expect(seen.mapValues(\.0) == [
                    "posters.example:443": 200, "a.example.org": 200, "example.org": 421, "api.example.net:8443": 200,
                    "api.example.net": 421, "localhost": 421,
                ])
            }
            configuration.allowedHosts = ["*"]
            try await withServer(configuration, store: store) { server in
                let seen = try await statuses(server, ["anything.test"])
                #expect(seen["anything.test"]?.0 == 200)
            }
        }

        /// Nothing whose path has a segment starting with a dot is served from the public folder, however encoded.
        @Test func hiddenFilesAreNeverServed() async throws {
            let store = try await Fixtures.populatedStore(count: 1)
            let folder = try Fixtures.temporaryFolder()
            for sub in [".git", "assets/.cache"] {
                try FileManager.default.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
            }
            let files = [
                "index.html": "<title>Page</title>", ".env": "SECRET=1", ".git/config": "SECRET=2",
                "assets/.cache/x.js": "SECRET=3", "assets/app.js": "ok",
            ]
            for (path, text) in files { try Data(text.utf8).write(to: folder.appendingPathComponent(path)) }
            var configuration = Fixtures.testConfiguration
            configuration.publicDirectory = folder.path
            try await withServer(configuration, store: store) { server in
                #expect(try await server.get("/assets/app.js").text == "ok")
                for path in [
                    "/.env", "/.git/config", "/assets/.cache/x.js", "/%2eenv", "/%2Eenv", "/.git%2Fconfig",
                    "/assets/%2e%2e/.env", "/assets/..%2F.env", "/assets/%2e%2e%2f.env",
                ] {
                    let reply = try await server.raw("GET", path)
                    #expect([400, 404].contains(reply.status), "\(path): \(reply.status)")
                    #expect(reply.errorMessage != nil && !reply.text.contains("SECRET"), "\(path): \(reply.text)")
                }
            }
        }
    }
}
