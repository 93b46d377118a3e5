// The real `postersim serve` process: started on port 0, changed by another process's writes, stopped by SIGTERM.
import PosterSimCore
import Foundation
import Store
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension AllServerTests {
    @Suite struct ProcessTests {
        /// `postersim`, built by `swift test` next to the test runner.
        static var binary: URL {
            URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
                .appendingPathComponent("postersim")
        }

        @Test func serveFollowsAnotherProcessAndStopsOnSIGTERM() async throws {
            let store = try await Fixtures.populatedStore(count: 4)
            let process = Process()
            process.executableURL = Self.binary
            process.arguments = ["serve", "--port", "0", "--db", store.path, "--models", "none", "--log-level", "notice"]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            let output = Shared("")
            errors.fileHandleForReading.readabilityHandler = { handle in
                let text = String(decoding: handle.availableData, as: UTF8.self)
                output.withLock { $0 += text }
            }
            try process.run()
            defer {
                errors.fileHandleForReading.readabilityHandler = nil
                if process.isRunning { process.terminate() }
            }
            var port: Int?
            for _ in 0..<600 where port == nil {
                let text = output.value
                if let range = text.range(of: #"url=http://127\.0\.0\.1:[0-9]+/"#, options: .regularExpression) {
                    port = Int(text[range].dropFirst("url=http://127.0.0.1:".count).dropLast())
                } else {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            let listening = try #require(port, "serve did not start: \(output.value)")
            let server = TestServer(port: listening, client: .shared)
            let first = try await server.get("/api/get-similar-movies?movieId=1&model=CLIP&topK=2")
            #expect(first.status == 200)
            #expect(try first.decode(MatchesOutput.self).matches.first?.metadata.title == Fixtures.movie(1).title)

            // This test process writes to the file; the server process sees it (its indexes reload, its cache drops).
            var renamed = Fixtures.movie(1)
            renamed.title = "Renamed By Another Process"
            try await store.upsertMovies([renamed])
            try await store.deleteMovies(ids: [2])
            var title: String?
            for _ in 0..<200 {
                let reply = try await server.get("/api/get-similar-movies?movieId=1&model=CLIP&topK=4")
                let matches = try reply.decode(MatchesOutput.self).matches
                title = matches.first?.metadata.title
                if title == renamed.title, !matches.contains(where: { $0.id == "2" }) { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(title == renamed.title)
            // The deleted movie leaves the server's in-memory index (a reload), not only the metadata it reads.
            var status = 0
            for _ in 0..<200 {
                status = try await server.get("/api/get-similar-movies?movieId=2&model=CLIP").status
                if status == 404 { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(status == 404)

            kill(process.processIdentifier, SIGTERM)
            for _ in 0..<200 where process.isRunning { try await Task.sleep(for: .milliseconds(25)) }
            #expect(!process.isRunning)
            if !process.isRunning {
                #expect(process.terminationStatus == 0 && process.terminationReason == .exit)
            }
        }
    }
}
