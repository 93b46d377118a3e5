import Foundation
import Testing

@testable import Tokenization

/// Locations of fixtures, found from this file's path (Tests/TokenizationTests/Support.swift → package root).
enum Paths {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures")
    static let tinyCLIP = fixtures.appendingPathComponent("checkpoints/clip")
    static let goldens = packageRoot.appendingPathComponent("Tests/TokenizationTests/Goldens")
    static let realBPE = packageRoot.appendingPathComponent(".cache/clip-vocab/bpe_simple_vocab_16e6.txt.gz")
}

/// Tests/Fixtures/embeddings/clip_text.json and clip_real_vocab_ids.json (written by tools/reference).
struct ReferenceTextIds: Decodable {
    struct Record: Decodable {
        var index: Int
        var text: String
        var ids: [Int]
        var ids_truncated_77: [Int]
        var tokens: [String]?
        var open_clip_ids_differ: Bool?
    }

    var bos_token_id: Int
    var eos_token_id: Int
    var pad_token_id: Int?
    var texts: [Record]

    static func load(_ name: String) throws -> ReferenceTextIds {
        let url = Paths.fixtures.appendingPathComponent("embeddings/\(name)")
        return try JSONDecoder().decode(ReferenceTextIds.self, from: Data(contentsOf: url))
    }
}

/// Goldens/clip_tricky_ids.json (written by Goldens/make_goldens.py).
struct TrickyIds: Decodable {
    struct Expected: Decodable {
        var ids: [Int]
        var ids_truncated_77: [Int]?
    }

    struct Record: Decodable {
        var text: String
        var fixture: Expected?
        var vocab_merges_only: Expected?
        var tokenizer_json_all_normalized: Expected?
        var real_vocab: Expected?
    }

    var configurations: [String]
    var texts: [Record]

    static func load() throws -> TrickyIds {
        let url = Paths.goldens.appendingPathComponent("clip_tricky_ids.json")
        return try JSONDecoder().decode(TrickyIds.self, from: Data(contentsOf: url))
    }
}

/// Compares a tokenizer against expected ids for every text; returns the number of texts checked.
@discardableResult
func expectIds(
    _ tokenizer: CLIPTokenizer, _ cases: [(text: String, expected: TrickyIds.Expected)], label: String,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Int {
    for (text, expected) in cases {
        #expect(tokenizer.encode(text) == expected.ids, "\(label): \(text.debugDescription)",
                sourceLocation: sourceLocation)
        #expect(tokenizer.encode(text, contextLength: 77) == (expected.ids_truncated_77 ?? expected.ids),
                "\(label) truncated: \(text.debugDescription)", sourceLocation: sourceLocation)
    }
    return cases.count
}
