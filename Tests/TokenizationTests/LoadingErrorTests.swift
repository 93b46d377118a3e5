import TestSupport
import Foundation
import Testing

@testable import Tokenization

@Suite("Typed errors for missing or malformed files")
struct LoadingErrorTests {
    /// A copy of the fixture folder where `name` is replaced by `contents` (or removed when nil).
    func folder(replacing name: String, with contents: String?) throws -> URL {
        let folder = try temporaryFolder("tokenization")
        for file in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(
                at: Paths.tinyCLIP.appendingPathComponent(file), to: folder.appendingPathComponent(file))
        }
        let target = folder.appendingPathComponent(name)
        try? FileManager.default.removeItem(at: target)
        if let contents { try Data(contents.utf8).write(to: target) }
        return folder
    }

    func loadError(replacing name: String, with contents: String?) throws -> TokenizerError? {
        let folder = try folder(replacing: name, with: contents)
        defer { try? FileManager.default.removeItem(at: folder) }
        do {
            _ = try CLIPTokenizer(modelDirectory: folder)
            return nil
        } catch let error as TokenizerError {
            #expect(!error.description.isEmpty)
            return error
        }
    }

    var fixtureMerges: String {
        get throws { try String(contentsOf: Paths.tinyCLIP.appendingPathComponent("merges.txt"), encoding: .utf8) }
    }

    @Test("missing files")
    func missingFiles() throws {
        let error = try loadError(replacing: "vocab.json", with: nil)
        guard case .missingFiles = error else { Issue.record("got \(String(describing: error))"); return }
        let empty = try temporaryFolder("tokenization")
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: TokenizerError.self) { try CLIPTokenizer(modelDirectory: empty) }
    }

    @Test("malformed JSON")
    func malformedJSON() throws {
        for contents in ["{", "[1, 2]", "{\"a\": \"b\"}", "{\"a\": 1.5}"] {
            let error = try loadError(replacing: "vocab.json", with: contents)
            guard case .malformedJSON = error else { Issue.record("\(contents): got \(String(describing: error))"); continue }
        }
        let error = try loadError(replacing: "tokenizer_config.json", with: "not json")
        guard case .malformedJSON = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test("negative ids")
    func invalidIds() throws {
        let error = try loadError(replacing: "vocab.json", with: "{\"a\": -1}")
        #expect(error == .invalidTokenId(token: "a", id: -1))
    }

    @Test("malformed merges: wrong arity (line numbers as tokenizers counts them), unknown tokens")
    func malformedMerges() throws {
        var lines = try fixtureMerges.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.insert("t h e", at: 3)
        let error = try loadError(replacing: "merges.txt", with: lines.joined(separator: "\n"))
        guard case .malformedMerges(_, 4, _) = error else { Issue.record("got \(String(describing: error))"); return }

        var emptyLine = try fixtureMerges.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        emptyLine.insert("", at: 2)
        guard case .malformedMerges = try loadError(replacing: "merges.txt", with: emptyLine.joined(separator: "\n"))
        else { Issue.record("empty line accepted"); return }

        let unknown = try loadError(replacing: "merges.txt", with: "#version: 0.2\nzz q\n")
        #expect(unknown == .mergeTokenNotInVocabulary(token: "zz"))
        // CRLF line ends are accepted, as by tokenizers.
        let crlf = try folder(replacing: "merges.txt", with: fixtureMerges.replacingOccurrences(of: "\n", with: "\r\n"))
        defer { try? FileManager.default.removeItem(at: crlf) }
        let tokenizer = try CLIPTokenizer(modelDirectory: crlf)
        let reference = try ReferenceTextIds.load("clip_text.json")
        #expect(tokenizer.encode(reference.texts[0].text) == reference.texts[0].ids)
    }

    @Test("special tokens and unknown bytes must be in the vocabulary")
    func missingSpecials() throws {
        #expect(throws: TokenizerError.specialTokenNotInVocabulary(role: "start-of-text", token: "<|startoftext|>")) {
            try CLIPTokenizer(vocabulary: ["<|endoftext|>": 0], merges: [])
        }
        let error = #expect(throws: TokenizerError.self) {
            try CLIPTokenizer(vocabulary: ["<|startoftext|>": 0, "<|endoftext|>": 1], merges: [],
                              unknownToken: nil)
        }
        guard case .missingUnknownToken = error else { Issue.record("got \(String(describing: error))"); return }
        // With an unknown token, a vocabulary lacking byte symbols still encodes, one unknown per byte symbol:
        // transformers' CLIPTokenizer(vocab={"<|startoftext|>": 0, "<|endoftext|>": 1}, merges=[])("hi!") gives
        // [0, 1, 1, 1, 1].
        let tokenizer = try CLIPTokenizer(vocabulary: ["<|startoftext|>": 0, "<|endoftext|>": 1], merges: [])
        #expect(tokenizer.encode("hi!") == [0, 1, 1, 1, 1])
    }

    @Test("malformed CLIP BPE files")
    func malformedBPEFiles() throws {
        let folder = try temporaryFolder("tokenization")
        defer { try? FileManager.default.removeItem(at: folder) }
        let short = folder.appendingPathComponent("short.txt")
        try Data("header\na b\n".utf8).write(to: short)
        #expect(throws: TokenizerError.self) { try CLIPBPEVocabulary(contentsOf: short) }
        let corrupt = folder.appendingPathComponent("corrupt.txt.gz")
        var bytes = try [UInt8](Data(contentsOf: Paths.goldens.appendingPathComponent("gzip_dynamic.gz")))
        bytes[bytes.count / 2] ^= 0x5A
        try Data(bytes).write(to: corrupt)
        #expect(throws: TokenizerError.self) { try CLIPBPEVocabulary(contentsOf: corrupt) }
        #expect(throws: TokenizerError.self) {
            try CLIPBPEVocabulary(contentsOf: folder.appendingPathComponent("absent.gz"))
        }
    }
}
