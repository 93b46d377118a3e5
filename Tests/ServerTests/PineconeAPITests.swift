// `/pinecone` in-process: keys, the loopback rule, error shapes, the body limit, the model indexes' read-only rule.
// (Tests/PineconeSDKTests drives the whole API with Pinecone's own SDKs against the real binary.)
import Foundation
import NIOCore
import PosterSimCore
import Store
import Testing

@testable import Server

extension AllServerTests {
    @Suite struct PineconeAPITests {
        static let key = "k-\(UUID().uuidString)"

        @Test func keysCompareWholly() {
            let keys = PineconeKeys(["alpha", "beta-key", ""])
            #expect(keys.accepts("alpha") && keys.accepts("beta-key"))
            #expect(!keys.accepts("alph") && !keys.accepts("alphaa") && !keys.accepts("") && !keys.accepts("beta"))
            #expect(PineconeKeys([""]).isEmpty)
        }

        @Test func loopbackClientsOnly() throws {
            #expect(PineconeAuthMiddleware.isLoopback(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
            #expect(PineconeAuthMiddleware.isLoopback(try SocketAddress(ipAddress: "127.8.9.10", port: 1)))
            #expect(PineconeAuthMiddleware.isLoopback(try SocketAddress(ipAddress: "::1", port: 1)))
            #expect(PineconeAuthMiddleware.isLoopback(try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 1)))
            #expect(!PineconeAuthMiddleware.isLoopback(try SocketAddress(ipAddress: "10.0.0.1", port: 1)))
            #expect(!PineconeAuthMiddleware.isLoopback(try SocketAddress(ipAddress: "::ffff:10.0.0.1", port: 1)))
            #expect(!PineconeAuthMiddleware.isLoopback(try SocketAddress(ipAddress: "2001:db8::1", port: 1)))
            #expect(!PineconeAuthMiddleware.isLoopback(nil))
        }

        @Test func keysAreRequiredAndNeverShown() async throws {
            var configuration = Fixtures.testConfiguration
            configuration.pineconeAPIKeys = [Self.key]
            let store = try await Fixtures.populatedStore(count: 3)
            try await withServer(configuration, store: store, models: []) { server in
                let none = try await server.get("/pinecone/indexes")
                #expect(none.status == 401)
                let wrong = try await server.get("/pinecone/indexes", headers: [("Api-Key", Self.key + "x")])
                #expect(wrong.status == 401 && !wrong.text.contains(Self.key))
                let error = try JSONValue.parse(Data(wrong.body))
                #expect(error[member: "error"]?[member: "code"]?.stringValue == "UNAUTHENTICATED")
                let right = try await server.get("/pinecone/indexes", headers: [("Api-Key", Self.key)])
                #expect(right.status == 200)
                // The movie API needs no key.
                #expect(try await server.get("/api/models").status == 200)
                let metrics = try await server.get("/metrics")
                #expect(!metrics.text.contains(Self.key))
            }
        }

        @Test func errorsInPineconeShapes() async throws {
            let store = try await Fixtures.populatedStore(count: 3)
            try await withServer(store: store, models: []) { server in
                // No key configured: loopback clients (this test) are answered.
                let create = try await server.request(
                    "/pinecone/indexes", method: .POST,
                    body: Array(#"{"name":"t1","dimension":2,"metric":"euclidean","spec":{"serverless":{"cloud":"aws","region":"us-east-1"}}}"#.utf8))
                #expect(create.status == 201)
                let again = try await server.request("/pinecone/indexes", method: .POST, body: Array(#"{"name":"t1","dimension":2}"#.utf8))
                #expect(again.status == 409)
                let bad = try await server.request("/pinecone/index/t1/query", method: .POST, body: Array("{oops".utf8))
                #expect(bad.status == 400)
                let shape = try JSONValue.parse(Data(bad.body))
                #expect(shape[member: "code"]?.intValue == 3 && shape[member: "message"]?.stringValue != nil)
                let big = [UInt8](repeating: UInt8(ascii: " "), count: 2 * 1024 * 1024 + 1)
                #expect(try await server.request("/pinecone/index/t1/vectors/upsert", method: .POST, body: big).status == 413)
                #expect(try await server.get("/pinecone/indexes/none").status == 404)
                let write = try await server.request(
                    "/pinecone/index/clip/vectors/upsert", method: .POST, body: Array(#"{"vectors":[{"id":"1","values":[1]}]}"#.utf8))
                #expect(write.status == 403 && write.text.contains("postersim ingest"))
                #expect(try await server.request("/pinecone/indexes/clip", method: .DELETE).status == 403)
                #expect(try await server.request("/pinecone/indexes/t1", method: .DELETE).status == 202)
            }
        }

        /// `--public-url` is the origin `describe_index` gives as the index's host (behind a proxy); without it, the
        /// request's own Host.
        @Test func publicURLSetsTheHost() async throws {
            var configuration = Fixtures.testConfiguration
            configuration.publicURL = "https://vectors.example.org/"
            let store = try await Fixtures.populatedStore(count: 1)
            try await withServer(configuration, store: store, models: []) { server in
                let clip = try JSONValue.parse(Data(try await server.get("/pinecone/indexes/clip").body))
                #expect(clip[member: "host"]?.stringValue == "https://vectors.example.org/pinecone/index/clip")
                let v2 = try await server.get("/pinecone/indexes/clip", headers: [("X-Pinecone-API-Version", "2026-07")])
                let schema = try JSONValue.parse(Data(v2.body))[member: "schema"]?[member: "fields"]?[member: "_values"]
                let stored = try await store.stats().spaces.first { $0.space.name == "clip" }?.space.dimension
                #expect(stored != nil && schema?[member: "dimension"]?.intValue == stored)
            }
            try await withServer(store: store, models: []) { server in
                let clip = try JSONValue.parse(Data(try await server.get("/pinecone/indexes/clip").body))
                #expect(clip[member: "host"]?.stringValue == "http://127.0.0.1:\(server.port)/pinecone/index/clip")
            }
        }
    }
}
