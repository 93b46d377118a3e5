import Foundation
import Testing

@testable import Tokenization

/// The real CLIP vocabulary is not committed; `scripts/fetch-clip-vocab` puts it in .cache/clip-vocab. Missing it is a
/// failure, not a skip, so CI cannot pass without checking these ids.
@Suite("Real CLIP vocabulary (bpe_simple_vocab_16e6.txt.gz)")
struct RealVocabularyTests {
    static func loadTokenizer() throws -> CLIPTokenizer {
        try #require(
            FileManager.default.fileExists(atPath: Paths.realBPE.path),
            "\(Paths.realBPE.path) is missing: run scripts/fetch-clip-vocab (downloads open-clip-torch from PyPI)")
        return try CLIPTokenizer(clipBPEFile: Paths.realBPE)
    }

    @Test("vocabulary layout as CLIP builds it")
    func layout() throws {
        try #require(
            FileManager.default.fileExists(atPath: Paths.realBPE.path),
            "\(Paths.realBPE.path) is missing: run scripts/fetch-clip-vocab (downloads open-clip-torch from PyPI)")
        let source = try CLIPBPEVocabulary(contentsOf: Paths.realBPE)
        let reference = try ReferenceTextIds.load("clip_real_vocab_ids.json")
        #expect(source.vocabulary.count == 49408)
        #expect(source.merges.count == 48894)
        #expect(source.vocabulary["<|startoftext|>"] == reference.bos_token_id)
        #expect(source.vocabulary["<|endoftext|>"] == reference.eos_token_id)
        #expect(source.vocabulary["!"] == 0)
        #expect(source.vocabulary["!</w>"] == 256)
    }

    @Test("ids of clip_real_vocab_ids.json (transformers, not open_clip, where they differ)")
    func referenceTexts() throws {
        let tokenizer = try Self.loadTokenizer()
        let reference = try ReferenceTextIds.load("clip_real_vocab_ids.json")
        #expect(tokenizer.startOfText == reference.bos_token_id)
        #expect(tokenizer.endOfText == reference.eos_token_id)
        #expect(tokenizer.vocabularySize == 49408)
        #expect(reference.texts.count == 20)
        for record in reference.texts {
            #expect(tokenizer.encode(record.text) == record.ids, "text \(record.index): \(record.text.debugDescription)")
            #expect(tokenizer.encode(record.text, contextLength: 77) == record.ids_truncated_77,
                    "text \(record.index) truncated")
        }
    }

    @Test("tricky and random texts under the real vocabulary (Goldens/clip_tricky_ids.json)")
    func trickyTexts() throws {
        let tokenizer = try Self.loadTokenizer()
        let golden = try TrickyIds.load()
        let cases = golden.texts.compactMap { record in record.real_vocab.map { (record.text, $0) } }
        #expect(cases.count > 300)
        expectIds(tokenizer, cases, label: "real_vocab")
    }
}
