import TestSupport
import Foundation
import Testing

@testable import Tokenization

@Suite("Any string encodes without failing")
struct RobustnessTests {
    static let tokenizer: CLIPTokenizer = {
        // The fixture folder is committed; failing to load it fails the tests using it.
        (try? CLIPTokenizer(modelDirectory: Paths.tinyCLIP))!
    }()
    func checkShape(_ ids: [Int], _ tokenizer: CLIPTokenizer) {
        #expect(ids.first == tokenizer.startOfText)
        #expect(ids.last == tokenizer.endOfText)
        #expect(ids.allSatisfy { tokenizer.token(for: $0) != nil })
    }

    @Test("edge-case strings")
    func edgeCases() {
        let tokenizer = Self.tokenizer
        let texts = ["", " ", "\0", "\u{FEFF}", "\u{0301}", "\u{0301}\u{0301}\u{0301}", "🏳️‍🌈", "👨‍👩‍👧‍👦",
                     "\u{10FFFF}", "\u{E0001}\u{E0041}", "\r\n", "<|", "|>", "<|startoftext|>", "'", "''",
                     String(repeating: "\u{0301}", count: 5000), String(repeating: "🎬", count: 2000)]
        for text in texts {
            let ids = tokenizer.encode(text)
            checkShape(ids, tokenizer)
            let truncated = tokenizer.encode(text, contextLength: 77)
            #expect(truncated.count <= 77)
            #expect(truncated.last == tokenizer.endOfText)
        }
        #expect(tokenizer.encode("") == [tokenizer.startOfText, tokenizer.endOfText])
    }

    @Test("100 kB of random Unicode, and one 100 000-letter word")
    func largeInputs() {
        let tokenizer = Self.tokenizer
        var generator = SplitMix64(seed: 42)
        var scalars: [Unicode.Scalar] = []
        while scalars.count < 100_000 {
            let value = UInt32.random(in: 0...0x10FFFF, using: &generator)
            if let scalar = Unicode.Scalar(value) { scalars.append(scalar) }
            if Bool.random(using: &generator) { scalars.append(" ") }
        }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        let text = String(view)
        #expect(text.utf8.count > 100_000)
        let ids = tokenizer.encode(text)
        checkShape(ids, tokenizer)
        #expect(ids.count > 100_000)
        let truncated = tokenizer.encode(text, contextLength: 77)
        #expect(truncated == Array(ids.prefix(76)) + [tokenizer.endOfText])

        let word = String(repeating: "ab", count: 50_000)
        let wordIds = tokenizer.encode(word)
        checkShape(wordIds, tokenizer)
        #expect(wordIds.count > 2)
    }

    @Test("concurrent encoding gives the same ids as sequential encoding")
    func concurrentUse() async throws {
        let tokenizer = try CLIPTokenizer(modelDirectory: Paths.tinyCLIP)
        let reference = try ReferenceTextIds.load("clip_text.json")
        let results = await withTaskGroup(of: Bool.self) { group in
            for round in 0..<8 {
                group.addTask {
                    reference.texts.shuffled().allSatisfy { tokenizer.encode($0.text) == $0.ids } && round >= 0
                }
            }
            var all: [Bool] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results == Array(repeating: true, count: 8))
    }
}
