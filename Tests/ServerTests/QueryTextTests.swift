// Query strings that are not text: a 400 with a JSON error on every route, never a 500 nor a store call.
import Testing

extension AllServerTests {
    @Suite struct QueryTextTests {
        /// Query strings that are not text (NUL, control characters, malformed escapes, bytes that are not UTF-8) are
        /// a 400 with a JSON error on every route, before any parsing or store access.
        @Test func queryStringsThatAreNotTextAre400() async throws {
            let store = try await Fixtures.populatedStore(count: 3)
            try await withServer(store: store) { server in
                let bad = ["%00", "a%00b", "%01", "%7F", "%", "%4", "%ZZ", "%FF", "%C3", "%E2%82", "%C0%80", "%ED%A0%80"]
                let routes = [
                    ("/api/get-similar-movies?model=CLIP&movieId=", "GET"), ("/api/get-similar-movies?movieId=1&model=", "GET"),
                    ("/api/movies?q=", "GET"), ("/api/movies?q=a&limit=", "GET"), ("/api/search/text?q=", "GET"),
                    ("/api/search/text?q=a&yearFrom=", "GET"), ("/api/search/image?model=", "POST"),
                    ("/api/models?x=", "GET"), ("/readyz?x=", "GET"), ("/posters/a.jpg?x=", "GET"), ("/?q=", "GET"),
                ]
                for (route, method) in routes {
                    for value in bad {
                        let r = try await server.raw(
                            method, route + value, body: method == "POST" ? try Fixtures.image(Fixtures.imageFiles[0]) : [])
                        #expect(r.status == 400, "\(route)\(value): \(r.status) \(r.text)")
                        #expect(r.errorMessage?.hasPrefix("invalid query string") == true, "\(route)\(value): \(r.text)")
                    }
                }
                // Text that is fine stays fine: escapes of UTF-8, tabs and newlines, `+` for spaces.
                for good in ["/api/movies?q=%C3%A9", "/api/movies?q=a%09b%0Ac", "/api/movies?q=a+b", "/api/search/text?q=%E6%9D%B1%E4%BA%AC"] {
                    #expect(try await server.raw("GET", good).status == 200, "\(good)")
                }
            }
        }
    }
}
