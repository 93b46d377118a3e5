// Pieces of the server on their own: query decoding and the response cache.
import NIOCore
import Testing

@testable import Server

extension AllServerTests {
    @Suite struct UnitTests {
        @Test func queryDecoding() {
            let q = QueryParameters("a=1&b=x+y%20z&c=%C3%A9t%C3%A9&d=%&e=%zz&f=%FF&a=2&&=v&g&h=+%2B+")
            #expect(q["a"] == "1")  // the first occurrence wins
            #expect(q["b"] == "x y z")
            #expect(q["c"] == "été")
            #expect(q["d"] == "%" && q["e"] == "%zz" && q["f"] == "%FF")  // malformed or not UTF-8: as sent
            #expect(q["g"] == "")
            #expect(q["h"] == " + " && q.text("h") == "+")
            #expect(QueryParameters(nil)["a"] == nil)
            #expect(QueryParameters.trimmed("  x y\t") == "x y" && QueryParameters.trimmed(" \u{3000} ") == "")
        }

        @Test func cacheIsBoundedAndFollowsRevisions() {
            let cache = ResponseCache(ttl: .seconds(60), maxEntries: 3, maxBytes: 1000)
            for i in 0..<5 { cache.insert("k\(i)", body: ByteBuffer(string: "v\(i)"), revision: 1) }
            #expect(cache.lookup("k0", revision: 1) == nil && cache.lookup("k1", revision: 1) == nil)
            #expect(cache.lookup("k4", revision: 1) == ByteBuffer(string: "v4"))
            #expect(cache.counts.entries == 3)
            // Another revision empties it; an answer computed under the old revision is not kept.
            #expect(cache.lookup("k4", revision: 2) == nil)
            cache.insert("old", body: ByteBuffer(string: "x"), revision: 1)
            #expect(cache.lookup("old", revision: 2) == nil)
            // Byte bound.
            cache.insert("big", body: ByteBuffer(repeating: 1, count: 2000), revision: 2)
            #expect(cache.lookup("big", revision: 2) == nil)
            let expired = ResponseCache(ttl: .zero, maxEntries: 3, maxBytes: 1000)
            expired.insert("k", body: ByteBuffer(string: "v"), revision: 1)
            #expect(expired.lookup("k", revision: 1) == nil)
        }
    }
}
