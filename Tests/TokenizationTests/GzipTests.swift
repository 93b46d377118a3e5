import Foundation
import Testing

@testable import Tokenization

@Suite("gzip reader")
struct GzipTests {
    func golden(_ name: String) throws -> Data {
        try Data(contentsOf: Paths.goldens.appendingPathComponent(name))
    }

    @Test("dynamic, stored, fixed-Huffman and multi-member streams from Python's gzip/zlib",
          arguments: ["gzip_dynamic.gz", "gzip_stored.gz", "gzip_fixed.gz", "gzip_two_members.gz"])
    func decodes(name: String) throws {
        let payload = try [UInt8](golden("gzip_payload.txt"))
        let data = try golden(name)
        #expect(Gzip.isGzip(data))
        #expect(try Gzip.decompress(data) == payload)
    }

    @Test("every truncation and many single-byte corruptions fail with a typed error, never trap")
    func corruptInput() throws {
        let data = try [UInt8](golden("gzip_dynamic.gz"))
        for length in stride(from: 0, to: data.count, by: 7) {
            #expect(throws: TokenizerError.self) { try Gzip.decompress(Data(data.prefix(length))) }
        }
        for position in stride(from: 10, to: data.count, by: 13) {
            var damaged = data
            damaged[position] ^= 0xFF
            // Either an error or (rarely) a different valid stream caught by CRC: never the original payload.
            let result = try? Gzip.decompress(Data(damaged))
            #expect(result == nil)
        }
        #expect(throws: TokenizerError.self) { try Gzip.decompress(Data(data), maximumOutput: 100) }
    }
}
