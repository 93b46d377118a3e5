// The response cache's byte bound counts keys, and no answer is held twice.
import NIOCore
import Testing

@testable import Server

extension AllServerTests {
    @Suite struct CacheTests {
        @Test func keysCountTowardTheByteBound() {
            let cache = ResponseCache(ttl: .seconds(60), maxEntries: 10, maxBytes: 100)
            let key = String(repeating: "k", count: 60)
            cache.insert(key, body: ByteBuffer(repeating: 1, count: 30), revision: 1)
            #expect(cache.counts.bytes == 90)
            // A second one would make 180 bytes: the first goes.
            cache.insert(String(repeating: "j", count: 60), body: ByteBuffer(repeating: 2, count: 30), revision: 1)
            #expect(cache.counts.entries == 1 && cache.counts.bytes == 90)
        }

        /// A key that expired and came back is evicted in its new place in the order, not its old one (the old
        /// place, left in the order list, used to evict the new entry before older ones).
        @Test func reinsertedKeyIsNotEvictedTwice() {
            let cache = ResponseCache(ttl: .zero, maxEntries: 2, maxBytes: 1000)  // every entry expires at once
            cache.insert("a", body: ByteBuffer(repeating: 1, count: 10), revision: 1)
            #expect(cache.lookup("a", revision: 1) == nil)  // expired: dropped
            cache.insert("b", body: ByteBuffer(repeating: 2, count: 20), revision: 1)
            cache.insert("a", body: ByteBuffer(repeating: 3, count: 10), revision: 1)
            cache.insert("c", body: ByteBuffer(repeating: 4, count: 1), revision: 1)  // b is now the oldest
            #expect(cache.counts.entries == 2)
            #expect(cache.counts.bytes == (1 + 10) + (1 + 1), "b should have gone, not a")
        }

        /// One similar-movies answer is cached under its canonical key and its raw query string, but its body is
        /// held (and counted) once.
        @Test func anAnswerIsHeldOnce() async throws {
            let store = try await Fixtures.populatedStore(count: 12)
            try await withServer(store: store) { server in
                let reply = try await server.get("/api/get-similar-movies?movieId=1&model=CLIP&topK=12")
                #expect(reply.status == 200)
                #expect(try await server.get("/api/get-similar-movies?movieId=1&model=CLIP&topK=12").body == reply.body)
                let metrics = try await server.get("/metrics").text
                let size = try #require(Self.gauge("postersim_response_cache_size_bytes", in: metrics))
                #expect(size > reply.body.count, "keys count too")
                #expect(size < reply.body.count + 400, "the body is held once: \(size) for \(reply.body.count)")
            }
        }

        static func gauge(_ name: String, in metrics: String) -> Int? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
                .map { Int($0) }
        }
    }
}
