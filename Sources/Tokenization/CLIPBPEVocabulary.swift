import Foundation

/// CLIP's vocabulary rebuilt from OpenAI's merges file `bpe_simple_vocab_16e6.txt(.gz)` (shipped with CLIP and
/// open_clip), exactly as CLIP's `simple_tokenizer.py` assembles it: the 256 byte characters, the same with `</w>`,
/// the concatenation of each of the first 48 894 merges (file lines 2 ... 48 895; 49 152 - 256 - 2 of them), then
/// `<|startoftext|>` and `<|endoftext|>` — 49 408 tokens. The Hugging Face `openai/clip-vit-*` vocab.json/merges.txt
/// hold the same ids.
public struct CLIPBPEVocabulary: Sendable {
    /// Token → id.
    public let vocabulary: [String: Int]
    /// Merges in rank order.
    public let merges: [(String, String)]

    /// Number of merges CLIP keeps from the file.
    public static let mergeCount = 49152 - 256 - 2

    /// Reads the file, gzip-compressed or plain.
    public init(contentsOf url: URL) throws {
        let data = try ModelFiles.read(url)
        let bytes = Gzip.isGzip(data) ? try Gzip.decompress(data) : [UInt8](data)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw TokenizerError.malformedBPEFile(path: url.path, reason: "not UTF-8")
        }
        try self.init(text: text, path: url.path)
    }

    init(text: String, path: String) throws {
        // simple_tokenizer.py: split("\n"), skip the header line, keep the next 48 894 lines, each split on
        // whitespace into a pair.
        let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count > Self.mergeCount else {
            throw TokenizerError.malformedBPEFile(
                path: path, reason: "\(lines.count) lines, expected at least \(Self.mergeCount + 1)")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(Self.mergeCount)
        for (offset, line) in lines[1...Self.mergeCount].enumerated() {
            let parts = line.split(whereSeparator: { $0.properties.isWhitespace })
            guard parts.count == 2 else {
                throw TokenizerError.malformedBPEFile(
                    path: path, reason: "line \(offset + 2) is not two whitespace-separated symbols")
            }
            merges.append((String(String.UnicodeScalarView(parts[0])), String(String.UnicodeScalarView(parts[1]))))
        }
        let symbols = ByteLevel.vocabularyOrder.map { String($0) }
        var tokens = symbols + symbols.map { $0 + BytePairModel.endOfWordSuffix }
        tokens.append(contentsOf: merges.map { $0.0 + $0.1 })
        tokens.append(contentsOf: ["<|startoftext|>", "<|endoftext|>"])
        var vocabulary = [String: Int](minimumCapacity: tokens.count)
        for (id, token) in tokens.enumerated() {
            guard vocabulary.updateValue(id, forKey: token) == nil else { throw TokenizerError.duplicateToken(token) }
        }
        self.vocabulary = vocabulary
        self.merges = merges
    }
}

extension CLIPTokenizer {
    /// The tokenizer of openai/clip-vit-base-patch32 built from CLIP's `bpe_simple_vocab_16e6.txt(.gz)`, with the
    /// special tokens of that model's Hugging Face configuration.
    public init(clipBPEFile url: URL) throws {
        let source = try CLIPBPEVocabulary(contentsOf: url)
        try self.init(vocabulary: source.vocabulary, merges: source.merges)
    }
}
