import TestSupport
import Foundation
import Testing

@testable import Tokenization

@Suite("CLIP tokenizer against transformers' CLIPTokenizer")
struct CLIPTokenizerTests {
    @Test("tiny fixture vocabulary: ids, truncated ids and tokens of clip_text.json")
    func fixtureTexts() throws {
        let reference = try ReferenceTextIds.load("clip_text.json")
        let tokenizer = try CLIPTokenizer(modelDirectory: Paths.tinyCLIP)
        #expect(tokenizer.startOfText == reference.bos_token_id)
        #expect(tokenizer.endOfText == reference.eos_token_id)
        #expect(tokenizer.padding == reference.pad_token_id)
        #expect(reference.texts.count == 20)
        for record in reference.texts {
            #expect(tokenizer.encode(record.text) == record.ids, "text \(record.index): \(record.text.debugDescription)")
            #expect(tokenizer.encode(record.text, contextLength: 77) == record.ids_truncated_77,
                    "text \(record.index) truncated")
            #expect(tokenizer.encode(record.text, contextLength: 77, truncate: false) == record.ids)
            if let tokens = record.tokens {
                #expect(record.ids.map { tokenizer.token(for: $0) } == tokens, "tokens of text \(record.index)")
            }
        }
    }

    @Test("tiny fixture vocabulary: tricky and random texts (Goldens/clip_tricky_ids.json)")
    func trickyTexts() throws {
        let golden = try TrickyIds.load()
        let tokenizer = try CLIPTokenizer(modelDirectory: Paths.tinyCLIP)
        let cases = golden.texts.compactMap { record in record.fixture.map { (record.text, $0) } }
        #expect(cases.count > 300)
        expectIds(tokenizer, cases, label: "fixture")
    }

    @Test("vocab.json + merges.txt without configuration files: both special tokens matched on raw text")
    func vocabularyAndMergesOnly() throws {
        let folder = try temporaryFolder("tokenization")
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(
                at: Paths.tinyCLIP.appendingPathComponent(name), to: folder.appendingPathComponent(name))
        }
        let tokenizer = try CLIPTokenizer(modelDirectory: folder)
        let golden = try TrickyIds.load()
        let cases = golden.texts.compactMap { record in record.vocab_merges_only.map { (record.text, $0) } }
        #expect(cases.count > 50)
        expectIds(tokenizer, cases, label: "vocab_merges_only")
    }

    @Test("tokenizer.json only, with every added token normalized")
    func tokenizerJSONOnly() throws {
        let tokenizer = try CLIPTokenizer(
            modelDirectory: Paths.goldens.appendingPathComponent("tokenizer_json_all_normalized"))
        let golden = try TrickyIds.load()
        let cases = golden.texts.compactMap { record in record.tokenizer_json_all_normalized.map { (record.text, $0) } }
        #expect(cases.count > 50)
        expectIds(tokenizer, cases, label: "tokenizer_json_all_normalized")
        // The same vocabulary and merges as the fixture folder: ordinary texts agree with clip_text.json.
        let reference = try ReferenceTextIds.load("clip_text.json")
        for record in reference.texts where !record.text.contains("<|") {
            #expect(tokenizer.encode(record.text) == record.ids)
        }
    }

    @Test("init(vocabulary:merges:) equals the model-folder loader")
    func memberwiseInitializer() throws {
        let vocabulary = try JSONDecoder().decode(
            [String: Int].self, from: Data(contentsOf: Paths.tinyCLIP.appendingPathComponent("vocab.json")))
        let merges = try ModelFiles.parseMerges(
            Data(contentsOf: Paths.tinyCLIP.appendingPathComponent("merges.txt")), path: "merges.txt")
        let tokenizer = try CLIPTokenizer(vocabulary: vocabulary, merges: merges)
        let reference = try ReferenceTextIds.load("clip_text.json")
        for record in reference.texts {
            #expect(tokenizer.encode(record.text) == record.ids)
        }
        #expect(tokenizer.vocabularySize == vocabulary.count)
    }

    @Test("truncation keeps the end token last and never exceeds the context length")
    func truncation() throws {
        let tokenizer = try CLIPTokenizer(modelDirectory: Paths.tinyCLIP)
        let text = String(repeating: "an extremely long tagline that keeps going ", count: 40)
        let full = tokenizer.encode(text)
        for length in [2, 3, 10, 76, 77, 78, 200] {
            let ids = tokenizer.encode(text, contextLength: length)
            #expect(ids.count == min(length, full.count))
            #expect(ids.last == tokenizer.endOfText)
            #expect(Array(ids.dropLast()) == Array(full.prefix(ids.count - 1)))
        }
        // As transformers: a context too short for the two special tokens leaves the ids whole.
        #expect(tokenizer.encode(text, contextLength: 1) == full)
        #expect(tokenizer.encode("", contextLength: 77) == [tokenizer.startOfText, tokenizer.endOfText])
    }
}
