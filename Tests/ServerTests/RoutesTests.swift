// The other routes: titles, search by image and text, models, health, metrics, posters, static files, CORS, limits.
import NIOHTTP1
import PosterSimCore
import Foundation
import Imaging
import Ingest
import ModelHub
import Server
import Store
import Testing

extension AllServerTests {
    @Suite struct RoutesTests {
        @Test func titleAutocomplete() async throws {
            let store = try await Fixtures.populatedStore(count: 12)
            try await withServer(store: store) { server in
                let reply = try await server.get("/api/movies?q=\(q("ame"))&limit=20")
                #expect(reply.status == 200)
                let list = try #require(try reply.json() as? [[String: Any]])
                // Accent-insensitive: "ame" finds "Amélie".
                #expect(list.map { $0["title"] as? String } == ["Amélie"])
                let first = try #require(list.first)
                #expect(first["id"] as? String == "1")
                #expect(first["label"] as? String == "Amélie - \(Fixtures.movie(1).releaseDate!)")
                #expect(first["release_date"] as? String == Fixtures.movie(1).releaseDate)
                #expect(first["poster_path"] as? String == Fixtures.movie(1).posterPath)

                let aliens = try #require(try await server.get("/api/movies?q=ALIEN").json() as? [[String: Any]])
                #expect(aliens.map { $0["title"] as? String } == ["Alien", "Aliens"])  // popular first
                let popular = try #require(try await server.get("/api/movies?limit=3").json() as? [[String: Any]])
                #expect(popular.map { $0["id"] as? String } == ["1", "2", "3"])
                // Matching on the date part of the label, as the original list did.
                let byYear = try #require(try await server.get("/api/movies?q=\(q(Fixtures.movie(4).releaseDate!))").json() as? [[String: Any]])
                #expect(byYear.map { $0["id"] as? String } == ["4"])
                for bad in ["limit=0", "limit=1000", "limit=x"] {
                    let r = try await server.get("/api/movies?q=a&\(bad)")
                    #expect(r.status == 400 && r.errorMessage != nil, "\(bad)")
                }
            }
        }

        @Test func searchByImageRawAndMultipart() async throws {
            let store = try await Fixtures.populatedStore(count: 12)
            try await withServer(store: store) { server in
                let movie = Fixtures.movie(5)
                let bytes = try Fixtures.image(String(movie.posterPath!.dropFirst()))
                for model in ModelName.allCases {
                    let raw = try await server.request(
                        "/api/search/image?model=\(q(model.apiName))&topK=4", method: .POST,
                        headers: [("Content-Type", "application/octet-stream")], body: bytes)
                    #expect(raw.status == 200, "\(model): \(raw.text)")
                    let matches = try raw.decode(MatchesOutput.self)
                    #expect(matches.matches.count == 4)
                    #expect(matches.matches.first?.id == "5", "\(model)")
                    #expect(matches.namespace == model.rawValue)
                }
                let boundary = "----postersim\(UUID().uuidString)"
                var form = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n".utf8)
                form += Array(
                    "--\(boundary)\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".utf8)
                form += bytes + Array("\r\n--\(boundary)--\r\n".utf8)
                let multipart = try await server.request(
                    "/api/search/image", method: .POST, headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)")],
                    body: form)
                #expect(multipart.status == 200, "\(multipart.text)")
                #expect(try multipart.decode(MatchesOutput.self).matches.first?.id == "5")
                #expect(try multipart.decode(MatchesOutput.self).matches.count == 10)

                // Without an image field.
                let noField = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--\(boundary)--\r\n".utf8)
                let missing = try await server.request(
                    "/api/search/image", method: .POST, headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)")],
                    body: noField)
                #expect(missing.status == 400 && missing.errorMessage == "the multipart body has no 'image' field")
            }
        }

        @Test func searchByImageRejectsWhatIsNotAnImage() async throws {
            let store = try await Fixtures.populatedStore(count: 3)
            var configuration = Fixtures.testConfiguration
            configuration.maxBodyBytes = 100_000
            try await withServer(configuration, store: store) { server in
                let text = try await server.request("/api/search/image", method: .POST, body: Array("hello, world".utf8))
                #expect(text.status == 415)
                #expect(text.errorMessage == "not a JPEG, PNG or WebP image (unrecognized signature)")
                let corrupt = try await server.request(
                    "/api/search/image", method: .POST, body: try Fixtures.image("corrupt_huffman_table.jpg"))
                #expect(corrupt.status == 400)
                #expect(corrupt.errorMessage?.hasPrefix("corrupt jpeg image") == true || corrupt.errorMessage?.hasPrefix("truncated") == true)
                let bomb = try await server.request("/api/search/image", method: .POST, body: try Fixtures.image("bomb_20000x20000.png"))
                #expect(bomb.status == 400 && bomb.errorMessage?.contains("more than the limit") == true)
                let empty = try await server.request("/api/search/image", method: .POST, body: [])
                #expect(empty.status == 400 && empty.errorMessage != nil)
                let big = try await server.request(
                    "/api/search/image", method: .POST, body: [0xFF, 0xD8, 0xFF] + [UInt8](repeating: 7, count: 200_000))
                #expect(big.status == 413)
                #expect(big.errorMessage == "request body is larger than 100000 bytes")
                let unknown = try await server.request("/api/search/image?model=Inception", method: .POST, body: [1])
                #expect(unknown.status == 400 && unknown.errorMessage?.hasPrefix("unknown model") == true)
                let noBoundary = try await server.request(
                    "/api/search/image", method: .POST, headers: [("Content-Type", "multipart/form-data")], body: [1, 2])
                #expect(noBoundary.status == 400)
                let garbage = try await server.request(
                    "/api/search/image", method: .POST, headers: [("Content-Type", "multipart/form-data; boundary=x")],
                    body: Array("--x\r\nnonsense without end".utf8))
                #expect(garbage.status == 400)
            }
        }

        @Test func searchByText() async throws {
            let store = try await Fixtures.populatedStore(count: 12)
            try await withServer(store: store) { server in
                let reply = try await server.get("/api/search/text?q=\(q("a lone astronaut on a red planet"))&topK=5")
                #expect(reply.status == 200, "\(reply.text)")
                let matches = try reply.decode(MatchesOutput.self)
                #expect(matches.matches.count == 5 && matches.namespace == "clip")
                let clip = Fixtures.models.first { $0.name == .clip }!
                let vector = try await Fixtures.offThePool { try clip.embed(texts: ["a lone astronaut on a red planet"])[0] }
                let expected = try await store.query(space: "clip", vector: vector, k: 5)
                #expect(matches.matches.map(\.id) == expected.map { String($0.movieID) })
                // `+` is a space, as browsers' forms send it.
                let plus = try await server.get("/api/search/text?q=a+lone+astronaut+on+a+red+planet&topK=5")
                #expect(plus.body == reply.body)
                for bad in ["", "?q=", "?q=%20%20", "?q=x&topK=0", "?q=\(String(repeating: "a", count: 600))"] {
                    let r = try await server.get("/api/search/text\(bad)")
                    #expect(r.status == 400 && r.errorMessage != nil, "\(bad)")
                }
            }
            // Without CLIP, text search is unavailable rather than broken.
            try await withServer(store: store, models: Array(Fixtures.models.dropFirst())) { server in
                let r = try await server.get("/api/search/text?q=anything")
                #expect(r.status == 503 && r.errorMessage != nil)
                let image = try await server.request("/api/search/image?model=CLIP", method: .POST, body: try Fixtures.image(Fixtures.imageFiles[0]))
                #expect(image.status == 503 && image.errorMessage == "CLIP is not loaded on this server")
            }
        }

        @Test func modelsHealthReadinessMetrics() async throws {
            let store = try await Fixtures.populatedStore(count: 4)
            let movie = try #require(try await store.fetchMovies(ids: [1]).first)
            try await store.recordSkips([
                PosterSkip(movieID: movie.id, space: nil, reason: .posterNotFound, httpStatus: 404, message: "404",
                           posterPath: movie.posterPath, source: "http://127.0.0.1/poster.jpg"),
            ], at: Date())
            try await withServer(store: store) { server in
                let models = try #require(try await server.get("/api/models").json() as? [[String: Any]])
                #expect(models.map { $0["name"] as? String } == ["CLIP", "ResNet-50", "VGG16"])
                #expect(models.map { $0["repo"] as? String } == ModelName.allCases.map(\.repoID))
                #expect(models.map { $0["metric"] as? String } == ["cosine", "euclidean", "euclidean"])
                #expect(models.map { $0["dimension"] as? Int } == Fixtures.models.map(\.space.dimension))
                #expect(models.allSatisfy { $0["vectors"] as? Int == 4 && $0["loaded"] as? Bool == true })
                #expect(models.allSatisfy { $0["checkpointMatchesStore"] as? Bool == true })
                #expect(models.allSatisfy { $0["precision"] as? String == "fp32" })
                #expect(models.first?["text"] as? Bool == true)

                #expect(try await server.get("/healthz").text == #"{"status":"ok"}"#)
                let ready = try await server.get("/readyz")
                #expect(ready.status == 200)
                #expect(try ready.object()["movies"] as? Int == 4)

                _ = try await server.get("/api/get-similar-movies?movieId=1&model=CLIP")
                _ = try await server.request("/api/search/image?model=VGG16", method: .POST, body: try Fixtures.image(Fixtures.imageFiles[1]))
                _ = try await server.get("/nope")
                let metrics = try await server.get("/metrics")
                #expect(metrics.status == 200)
                #expect(metrics.headers["Content-Type"].first?.hasPrefix("text/plain") == true)
                let text = metrics.text
                #expect(text.contains(#"postersim_http_requests_total{route="/api/get-similar-movies",method="GET",status="200"} 1"#))
                #expect(text.contains(#"postersim_http_request_duration_seconds_bucket{route="/api/get-similar-movies",method="GET""#))
                #expect(text.contains(#"postersim_http_requests_total{route="NotFound",method="GET",status="404"} 1"#))
                #expect(text.contains(#"postersim_embedding_duration_seconds_count{model="VGG16",input="image"} 1"#))
                #expect(text.contains("postersim_store_movies 4"))
                #expect(text.contains(#"postersim_store_vectors{space="clip"} 4"#))
                #expect(text.contains(#"postersim_store_skips{reason="poster_not_found"} 1"#))
                #expect(text.contains(#"postersim_store_skips{reason="undecodable"} 0"#))
                #expect(text.contains("postersim_store_skipped_movies 1"))
            }
        }

        @Test func postersFromTheCacheElseRedirect() async throws {
            let store = try await Fixtures.populatedStore(count: 2)
            let cacheFolder = try Fixtures.temporaryFolder()
            let jpeg = try Fixtures.image("jpeg_rgb420_120x180.jpg")
            try PosterCache(directory: cacheFolder).write(jpeg, posterPath: "/cached.jpg", size: "original")
            var configuration = Fixtures.testConfiguration
            configuration.posterCacheDirectory = cacheFolder.path
            try await withServer(configuration, store: store) { server in
                let cached = try await server.get("/posters/cached.jpg")
                #expect(cached.status == 200 && cached.body == jpeg)
                #expect(cached.headers["Content-Type"].first == "image/jpeg")
                let remote = try await server.get("/posters/elsewhere.jpg")
                #expect(remote.status == 302)
                #expect(remote.headers["Location"].first == "https://images.example.test/t/p/w500/elsewhere.jpg")
                for bad in ["/posters/..%2F..%2Fetc%2Fpasswd", "/posters/.hidden", "/posters/a%20b.jpg"] {
                    let r = try await server.get(bad)
                    #expect([400, 404].contains(r.status), "\(bad): \(r.status)")
                    #expect(r.errorMessage != nil, "\(bad)")
                }
            }
        }

        @Test func staticPageAndOverride() async throws {
            let store = try await Fixtures.populatedStore(count: 1)
            try await withServer(store: store) { server in
                let page = try await server.get("/")
                #expect(page.status == 200)
                #expect(page.text.contains("<title>PosterSim</title>"))
                #expect(page.headers["Content-Type"].first?.hasPrefix("text/html") == true)
            }
            let folder = try Fixtures.temporaryFolder()
            try Data("<title>Other</title>".utf8).write(to: folder.appendingPathComponent("index.html"))
            try Data("body{}".utf8).write(to: folder.appendingPathComponent("style.css"))
            var configuration = Fixtures.testConfiguration
            configuration.publicDirectory = folder.path
            try await withServer(configuration, store: store) { server in
                #expect(try await server.get("/").text == "<title>Other</title>")
                let css = try await server.get("/style.css")
                #expect(css.status == 200 && css.text == "body{}")
                let missing = try await server.get("/missing.js")
                #expect(missing.status == 404 && missing.errorMessage != nil)
                let traversal = try await server.get("/..%2F..%2Fetc%2Fpasswd")
                #expect([400, 404].contains(traversal.status) && !traversal.text.contains("root:"))
            }
        }

        @Test func cors() async throws {
            let store = try await Fixtures.populatedStore(count: 2)
            var configuration = Fixtures.testConfiguration
            configuration.corsOrigins = ["http://localhost:3000"]
            try await withServer(configuration, store: store) { server in
                let allowed = try await server.get(
                    "/api/get-similar-movies?movieId=1&model=CLIP", headers: [("Origin", "http://localhost:3000")])
                #expect(allowed.headers["Access-Control-Allow-Origin"].first == "http://localhost:3000")
                let error = try await server.get("/api/get-similar-movies", headers: [("Origin", "http://localhost:3000")])
                #expect(error.status == 400 && error.headers["Access-Control-Allow-Origin"].first == "http://localhost:3000")
                let other = try await server.get("/api/get-similar-movies?movieId=1&model=CLIP", headers: [("Origin", "http://evil.test")])
                #expect(other.headers["Access-Control-Allow-Origin"].isEmpty)
                let preflight = try await server.request(
                    "/api/search/image", method: .OPTIONS,
                    headers: [("Origin", "http://localhost:3000"), ("Access-Control-Request-Method", "POST")])
                #expect(preflight.status == 204)
                #expect(preflight.headers["Access-Control-Allow-Methods"].first?.contains("POST") == true)
            }
            configuration.corsOrigins = ["*"]
            try await withServer(configuration, store: store) { server in
                let any = try await server.get("/healthz", headers: [("Origin", "http://anything.test")])
                #expect(any.headers["Access-Control-Allow-Origin"].first == "*")
            }
        }

        /// Odd input never crashes the server nor gets a 500, and errors are JSON without paths.
        @Test func limitsAndOddInput() async throws {
            let store = try await Fixtures.populatedStore(count: 3)
            try await withServer(store: store) { server in
                let long = try await server.get("/api/movies?q=\(String(repeating: "a", count: 5000))")
                #expect(long.status == 414 && long.errorMessage != nil)
                let unknown = try await server.get("/api/unknown")
                #expect(unknown.status == 404 && unknown.errorMessage != nil)
                let wrongMethod = try await server.request("/api/get-similar-movies?movieId=1&model=CLIP", method: .DELETE)
                #expect([404, 405].contains(wrongMethod.status) && wrongMethod.errorMessage != nil)
                let odd = [
                    "/api/get-similar-movies?movieId=%FF%FE&model=%00", "/api/get-similar-movies?movieId=1&model=CLIP&topK=99999999999999999999",
                    "/api/get-similar-movies?&&&=&=", "/api/get-similar-movies?movieId=1&movieId=2&model=CLIP",
                    "/api/movies?q=%", "/api/movies?q=%E2%82", "/api/movies?q=\(q("😀 Amélie 東京"))", "/api/search/text?q=%00%01",
                    "/api/search/text?q=\(q("😀😀😀"))", "/api/get-similar-movies?movieId=1&model=CLIP&yearFrom=2000&yearTo=1900",
                    "/api/models?x=1", "/posters/", "/posters/%00", "/api/get-similar-movies?movieId=1&model=clip&genre=99999999999",
                ]
                for path in odd {
                    let r = try await server.get(path)
                    #expect(r.status < 500, "\(path): \(r.status) \(r.text)")
                    if r.status >= 400 {
                        #expect(r.errorMessage != nil, "\(path): \(r.text)")
                        #expect(!r.text.contains("/work/") && !r.text.contains(".swift"), "\(path)")
                    }
                }
                // Still up.
                #expect(try await server.get("/healthz").status == 200)
            }
        }
    }
}
