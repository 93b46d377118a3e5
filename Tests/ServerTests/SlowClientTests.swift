// Slow and greedy clients: the head, body and idle timeouts, and the connection cap. The timeouts are short here so
// the tests are quick; the assertions are on what the server does (answer 408, close), never on how long it took.
import Foundation
import Server
import Testing

extension AllServerTests {
    @Suite struct SlowClientTests {
        static func configuration(
            head: Duration = .seconds(30), body: Duration = .seconds(30), idle: Duration? = .seconds(30)
        ) -> ServerConfiguration {
            var c = Fixtures.testConfiguration
            c.headTimeout = head
            c.bodyTimeout = body
            c.idleTimeout = idle
            return c
        }

        /// A client that starts a request and never finishes its headers gets 408 and is disconnected.
        @Test func unfinishedHeadersAreCutOff() async throws {
            let store = try await Fixtures.populatedStore(count: 1)
            try await withServer(Self.configuration(head: .milliseconds(300)), store: store) { server in
                let answer = try await Fixtures.offThePool {
                    let connection = try RawConnection(port: server.port)
                    try connection.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1")
                    return String(decoding: try connection.readToEnd(), as: UTF8.self)
                }
                #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
                #expect(answer.contains(#"{"error":"the request headers did not arrive in time"}"#))
                #expect(answer.contains("X-Content-Type-Options: nosniff"))
                // A complete request on a new connection is answered as usual.
                #expect(try await server.get("/healthz").status == 200)
            }
        }

        /// A body that keeps trickling in (so the connection is never idle) is cut off at the body deadline.
        @Test func tricklingBodyGets408() async throws {
            let store = try await Fixtures.populatedStore(count: 1)
            try await withServer(Self.configuration(body: .milliseconds(500)), store: store) { server in
                let answer = try await Fixtures.offThePool {
                    let connection = try RawConnection(port: server.port)
                    try connection.send(
                        "POST /api/search/image?model=CLIP HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n")
                    // One byte at a time until the server hangs up (or, should it never, the read below gives up).
                    let stop = Shared(false)
                    let trickling = DispatchGroup()
                    DispatchQueue.global().async(group: trickling) {
                        while !stop.value, (try? connection.send([0xFF])) != nil { usleep(20_000) }
                    }
                    defer {
                        stop.withLock { $0 = true }
                        trickling.wait()
                        connection.close()
                    }
                    return String(decoding: try connection.readToEnd(), as: UTF8.self)
                }
                #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
                #expect(answer.contains(#"{"error":"the request body did not arrive in time"}"#))
            }
        }

        /// Connections that sit without a request, new or after an answer, are closed at the idle timeout.
        @Test func idleConnectionsAreClosed() async throws {
            let store = try await Fixtures.populatedStore(count: 1)
            try await withServer(Self.configuration(idle: .milliseconds(300)), store: store) { server in
                let (silent, afterAnswer) = try await Fixtures.offThePool {
                    let silent = try RawConnection(port: server.port).readToEnd()
                    let connection = try RawConnection(port: server.port)
                    try connection.send(rawGET("/healthz"))
                    let reply = try connection.readResponse()
                    #expect(reply.status == 200)
                    return (silent, try connection.readToEnd())
                }
                #expect(silent.isEmpty && afterAnswer.isEmpty)
            }
        }

        /// Beyond `maxConnections` a new connection gets 503 with Retry-After and is closed; once one closes, a new
        /// one is served again.
        @Test func connectionCap() async throws {
            let store = try await Fixtures.populatedStore(count: 1)
            var configuration = Self.configuration()
            configuration.maxConnections = 2
            try await withServer(configuration, store: store) { server in
                let held = try await Fixtures.offThePool {
                    try (0..<2).map { _ in
                        let connection = try RawConnection(port: server.port)
                        try connection.send(rawGET("/healthz"))
                        #expect(try connection.readResponse().status == 200)
                        return connection
                    }
                }
                let refused = try await Fixtures.offThePool {
                    let connection = try RawConnection(port: server.port)
                    return String(decoding: try connection.readToEnd(), as: UTF8.self)
                }
                #expect(refused.hasPrefix("HTTP/1.1 503"), "\(refused)")
                #expect(refused.contains("Retry-After: 1") && refused.contains(#""error":"#))
                held[0].close()
                // The server learns of the close asynchronously: try until a new connection is served.
                var served = false
                for _ in 0..<500 where !served {
                    served = try await Fixtures.offThePool {
                        let connection = try RawConnection(port: server.port)
                        try connection.send(rawGET("/healthz", close: true))
                        return String(decoding: try connection.readToEnd(), as: UTF8.self).hasPrefix("HTTP/1.1 200")
                    }
                    if !served { try await Task.sleep(for: .milliseconds(5)) }
                }
                #expect(served)
                held[1].close()
            }
        }
    }
}
