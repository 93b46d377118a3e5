import Foundation
import PostgresStore
import Store
import TestSupport
import Testing

/// Each `sslmode` against a real TLS handshake. The tests' PostgreSQL is built without TLS, so the connections go
/// through `scripts/pg-tls-proxy`, which answers PostgreSQL's SSLRequest, completes the handshake with a certificate
/// made here (self-signed for 127.0.0.1 and localhost) and reports per connection whether it was TLS, plain, or a
/// failed handshake; then it forwards to the server.
@Suite(.enabled(if: TestPostgres.shouldRun, Comment(rawValue: TestPostgres.skipMessage)), .serialized)
struct PostgresTLSTests {
    /// The proxy, its certificate and its report, for one test.
    final class Front {
        let folder: URL
        let certificate: URL
        let report: URL
        let process = Process()
        let port: Int
        let upstream: URLComponents

        init() throws {
            folder = URL(fileURLWithPath: try TempStore.newPath()).deletingPathExtension()
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            certificate = folder.appendingPathComponent("server.crt")
            report = folder.appendingPathComponent("connections.txt")
            let key = folder.appendingPathComponent("server.key")
            let portFile = folder.appendingPathComponent("port")
            try Front.run("/usr/bin/env", [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=postersim-test",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout", key.path, "-out", certificate.path,
            ])
            upstream = try #require(URLComponents(string: try TestPostgres.requireURL()))
            var root = URL(fileURLWithPath: #filePath)
            while root.lastPathComponent != "Tests" { root.deleteLastPathComponent() }
            let script = root.deletingLastPathComponent().appendingPathComponent("scripts/pg-tls-proxy")
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "python3", script.path, "--upstream", "\(upstream.host ?? "127.0.0.1"):\(upstream.port ?? 5432)",
                "--cert", certificate.path, "--key", key.path, "--report", report.path, "--port-file", portFile.path,
            ]
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            // The proxy writes its port (atomically) once it listens.
            var found: Int?
            for _ in 0..<200 where found == nil {
                found = (try? String(contentsOf: portFile, encoding: .utf8)).flatMap {
                    Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
                }
                if found == nil { Thread.sleep(forTimeInterval: 0.05) }
            }
            port = try #require(found, "scripts/pg-tls-proxy did not start within 10 s")
        }

        // Not `waitUntilExit()`: off the main thread it spins on the run loop; Foundation reaps the child itself.
        deinit { process.terminate() }

        static func run(_ tool: String, _ arguments: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: tool)
            p.arguments = arguments
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else {
                throw TestPostgres.Missing(description: "\(arguments.first ?? tool) failed (\(p.terminationStatus))")
            }
        }

        /// The test server's URL through the proxy, with `query` added.
        func url(_ query: String) -> String {
            var through = upstream
            through.host = "127.0.0.1"
            through.port = port
            let base = through.string ?? ""
            return base + (base.contains("?") ? "&" : "?") + query
        }

        /// The connections reported since the last call, once there is at least one. The proxy writes a failed
        /// handshake's line when its side of the handshake gives up, which can be after the client has already
        /// given up and `open` has thrown, so reading at once raced it on a busy machine. (The minute is only a hang
        /// detector; the line normally follows within milliseconds.)
        func connections() async throws -> [String] {
            var lines: [String] = []
            for _ in 0..<6000 {
                let text = (try? String(contentsOf: report, encoding: .utf8)) ?? ""
                lines = text.split(separator: "\n").map(String.init)
                if !lines.isEmpty { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            try? FileManager.default.removeItem(at: report)
            return lines
        }

        func open(_ query: String) async throws -> PostgresVectorStore {
            var configuration = try PostgresStoreConfiguration(url: url(query))
            configuration.schema = TestPostgres.freshSchema("tls")
            configuration.retryWindow = .seconds(2)
            return try await PostgresVectorStore.open(configuration: configuration)
        }
    }

    @Test func everySSLModeConnectsAsItSays() async throws {
        let front = try Front()
        let root = front.certificate.path
        let cases: [(query: String, tls: Bool)] = [
            ("sslmode=disable", false), ("sslmode=prefer", true), ("sslmode=require", true),
            ("sslmode=require&sslrootcert=\(root)", true), ("sslmode=verify-ca&sslrootcert=\(root)", true),
            ("sslmode=verify-full&sslrootcert=\(root)", true), ("", true),  // the default is libpq's: prefer
        ]
        for (query, tls) in cases {
            let store = try await front.open(query)
            // The pool's connections, not only the first check, do real work.
            try await store.upsertMovies([VectorStoreContract.movie(1)])
            #expect(try await store.movieCount() == 1)
            await store.shutdown()
            let seen = try await front.connections()
            #expect(!seen.isEmpty, "\(query)")
            #expect(seen.allSatisfy { tls ? $0.hasPrefix("TLS") : $0 == "plain" }, "\(query): \(seen)")
        }
    }

    @Test func verificationTrustsOnlyTheGivenRoot() async throws {
        let front = try Front()
        // The system's authorities do not know the self-signed certificate: the handshake fails, and so does open.
        for mode in ["verify-full", "verify-ca"] {
            await #expect(throws: PostgresStoreError.self) { _ = try await front.open("sslmode=\(mode)") }
            let seen = try await front.connections()
            #expect(!seen.isEmpty && seen.allSatisfy { $0.hasPrefix("failed") }, "\(mode): \(seen)")
        }
        await #expect(throws: PostgresStoreError.invalidURL("sslrootcert '/nonexistent/ca.crt' cannot be read")) {
            _ = try await front.open("sslmode=verify-full&sslrootcert=/nonexistent/ca.crt")
        }
        #expect(throws: PostgresStoreError.self) {
            _ = try PostgresStoreConfiguration(url: "postgres://u@h/d?sslmode=maybe")
        }
    }
}
