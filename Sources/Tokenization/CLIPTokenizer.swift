import Foundation

/// CLIP's byte-level BPE tokenizer, producing the same ids as transformers 5.x `CLIPTokenizer` (which runs the
/// Hugging Face `tokenizers` pipeline built in `models/clip/tokenization_clip.py`):
///
/// 1. special tokens whose `normalized` flag is false are cut out of the raw text first;
/// 2. each remaining piece is normalized (NFC, lower-case; see `TextPipeline`), then special tokens whose flag is
///    true are cut out of the normalized text;
/// 3. the rest is split into words by CLIP's regex, each word is mapped byte by byte to the GPT-2 byte alphabet,
///    gets `</w>` on its last symbol and is merged by BPE rank;
/// 4. `<|startoftext|>` and `<|endoftext|>` wrap the result (the `RobertaProcessing` post-processor).
///
/// Guarantees: encoding never fails or traps for any `String` (unknown symbols become the unknown token), is
/// deterministic, and is safe to call from many threads at once (a shared, bounded per-word cache is lock-protected).
public struct CLIPTokenizer: Sendable {
    /// A token the tokenizer matches as a whole in the input text instead of running BPE on it.
    public struct SpecialToken: Sendable, Hashable {
        /// The token's text, e.g. `<|startoftext|>`.
        public var content: String
        /// Whether it is matched in the normalized (NFC, lower-cased) text rather than in the raw text. transformers
        /// reads this from `tokenizer.json`, or from `special_tokens_map.json`/`tokenizer_config.json`, where a plain
        /// string means false. For openai/clip-vit-base-patch32 the start token is matched normalized, the end token
        /// raw (so `<|ENDOFTEXT|>` in a text is not the end token, `<|STARTOFTEXT|>` is the start token).
        public var normalized: Bool

        public init(_ content: String, normalized: Bool) {
            self.content = content
            self.normalized = normalized
        }
    }

    struct AddedToken: Sendable {
        var pattern: [Unicode.Scalar]
        var id: Int
    }

    /// Id of `<|startoftext|>`, first in every encoding.
    public let startOfText: Int
    /// Id of `<|endoftext|>`, last in every encoding.
    public let endOfText: Int
    /// Id of the padding token (transformers uses `<|endoftext|>` for CLIP).
    public let padding: Int
    /// Number of entries in the vocabulary.
    public let vocabularySize: Int

    private let model: BytePairModel
    private let rawAddedTokens: [AddedToken]
    private let normalizedAddedTokens: [AddedToken]
    private let tokensById: [Int: String]

    /// Builds a tokenizer from a vocabulary (token → id) and merges in rank order.
    ///
    /// The default special tokens are those of openai/clip-vit-base-patch32; `unknownToken` replaces byte symbols
    /// missing from the vocabulary and `paddingToken` defaults to the end token.
    public init(
        vocabulary: [String: Int],
        merges: [(String, String)],
        startOfText: SpecialToken = SpecialToken("<|startoftext|>", normalized: true),
        endOfText: SpecialToken = SpecialToken("<|endoftext|>", normalized: false),
        unknownToken: SpecialToken? = SpecialToken("<|endoftext|>", normalized: false),
        paddingToken: SpecialToken? = nil
    ) throws {
        // transformers adds bos, eos, unk, pad in this order as special tokens; one text given twice keeps the
        // flag of its last role.
        var roles: [(role: String, token: SpecialToken)] = [("start-of-text", startOfText), ("end-of-text", endOfText)]
        if let unknownToken { roles.append(("unknown", unknownToken)) }
        if let paddingToken { roles.append(("padding", paddingToken)) }
        var specials: [(content: String, id: Int, normalized: Bool)] = []
        for (role, token) in roles {
            guard let id = vocabulary[token.content] else {
                throw TokenizerError.specialTokenNotInVocabulary(role: role, token: token.content)
            }
            if let existing = specials.firstIndex(where: { $0.content == token.content }) {
                specials[existing].normalized = token.normalized
            } else {
                specials.append((token.content, id, token.normalized))
            }
        }
        try self.init(
            vocabulary: vocabulary, merges: merges, addedTokens: specials,
            startOfText: startOfText.content, endOfText: endOfText.content,
            unknownToken: unknownToken?.content, paddingToken: paddingToken?.content ?? endOfText.content)
    }

    /// Common initializer: `addedTokens` are all tokens matched whole in the text, with their ids.
    init(
        vocabulary: [String: Int],
        merges: [(String, String)],
        addedTokens: [(content: String, id: Int, normalized: Bool)],
        startOfText: String,
        endOfText: String,
        unknownToken: String?,
        paddingToken: String
    ) throws {
        for (token, id) in vocabulary where id < 0 || id > Int(Int32.max) {
            throw TokenizerError.invalidTokenId(token: token, id: id)
        }
        for added in addedTokens where added.id < 0 || added.id > Int(Int32.max) {
            throw TokenizerError.invalidTokenId(token: added.content, id: added.id)
        }
        model = try BytePairModel(vocabulary: vocabulary, merges: merges, unknownToken: unknownToken)
        func id(of content: String, role: String) throws -> Int {
            if let added = addedTokens.first(where: { $0.content == content }) { return added.id }
            if let id = vocabulary[content] { return id }
            throw TokenizerError.specialTokenNotInVocabulary(role: role, token: content)
        }
        self.startOfText = try id(of: startOfText, role: "start-of-text")
        self.endOfText = try id(of: endOfText, role: "end-of-text")
        self.padding = try id(of: paddingToken, role: "padding")
        // Patterns of normalized tokens are normalized themselves, as `tokenizers`' AddedVocabulary does.
        rawAddedTokens = addedTokens.filter { !$0.normalized && !$0.content.isEmpty }.map {
            AddedToken(pattern: Array($0.content.unicodeScalars), id: $0.id)
        }
        normalizedAddedTokens = addedTokens.filter { $0.normalized && !$0.content.isEmpty }.map {
            AddedToken(pattern: TextPipeline.normalize($0.content.unicodeScalars), id: $0.id)
        }
        var tokensById = [Int: String](minimumCapacity: vocabulary.count + addedTokens.count)
        for (token, id) in vocabulary { tokensById[id] = token }
        for added in addedTokens { tokensById[added.id] = added.content }
        self.tokensById = tokensById
        vocabularySize = vocabulary.count
    }

    /// `<|startoftext|>`, the tokens of `text`, `<|endoftext|>`: all of them, without padding or truncation
    /// (transformers' `tokenizer(text)["input_ids"]`).
    public func encode(_ text: String) -> [Int] {
        var ids = [startOfText]
        ids.reserveCapacity(text.utf8.count / 2 + 8)
        appendContent(of: text, limit: Int.max, to: &ids)
        ids.append(endOfText)
        return ids
    }

    /// Like `encode(_:)`, truncated when `truncate` is true to at most `contextLength` ids by dropping content
    /// tokens from the end, so that the end token stays last (transformers with `truncation=True,
    /// max_length=contextLength`). As in transformers, a `contextLength` below 2 cannot hold the two special tokens
    /// and leaves the ids untruncated. No padding is added.
    public func encode(_ text: String, contextLength: Int = 77, truncate: Bool = true) -> [Int] {
        guard truncate, contextLength >= 2 else { return encode(text) }
        var ids = [startOfText]
        ids.reserveCapacity(contextLength)
        // Words are tokenized independently, so the first words' ids do not depend on what follows: stop early.
        let limit = contextLength - 2
        appendContent(of: text, limit: limit, to: &ids)
        if ids.count > limit + 1 { ids.removeSubrange((limit + 1)...) }
        ids.append(endOfText)
        return ids
    }

    /// The vocabulary entry of `id` (byte-level text, e.g. `movie</w>`), or nil for an unknown id.
    public func token(for id: Int) -> String? {
        tokensById[id]
    }

    /// Appends content ids to `ids` until at least `limit` content ids were appended (or the text ends).
    private func appendContent(of text: String, limit: Int, to ids: inout [Int]) {
        let start = ids.count
        let scalars = Array(text.unicodeScalars)
        var wordBytes: [UInt8] = []
        wordBytes.reserveCapacity(64)
        Self.split(scalars, 0..<scalars.count, on: rawAddedTokens) { piece in
            switch piece {
            case let .special(id):
                ids.append(id)
            case let .text(range):
                let normalized = TextPipeline.normalize(scalars[range])
                return Self.split(normalized, 0..<normalized.count, on: normalizedAddedTokens) { inner in
                    switch inner {
                    case let .special(id):
                        ids.append(id)
                    case let .text(innerRange):
                        TextPipeline.forEachWord(in: normalized, range: innerRange) { word in
                            wordBytes.removeAll(keepingCapacity: true)
                            for scalar in normalized[word] {
                                UTF8.encode(scalar) { wordBytes.append($0) }
                            }
                            model.appendTokens(ofWord: wordBytes, to: &ids)
                            return ids.count - start < limit
                        }
                    }
                    return ids.count - start < limit
                }
            }
            return ids.count - start < limit
        }
    }

    private enum Piece {
        case text(Range<Int>)
        case special(Int)
    }

    /// Splits `text[range]` at occurrences of added tokens, leftmost first and the longest at one position (the
    /// `LeftmostLongest` Aho-Corasick match of `tokenizers`). `body` returns false to stop; so does this function.
    @discardableResult
    private static func split(
        _ text: [Unicode.Scalar], _ range: Range<Int>, on tokens: [AddedToken], _ body: (Piece) -> Bool
    ) -> Bool {
        guard !tokens.isEmpty else { return range.isEmpty || body(.text(range)) }
        var pieceStart = range.lowerBound
        var index = range.lowerBound
        while index < range.upperBound {
            var best: AddedToken?
            for token in tokens where token.pattern.count <= range.upperBound - index
                && token.pattern.count > (best?.pattern.count ?? 0) {
                if text[index] == token.pattern[0],
                   text[index..<(index + token.pattern.count)].elementsEqual(token.pattern) {
                    best = token
                }
            }
            if let best {
                if pieceStart < index, !body(.text(pieceStart..<index)) { return false }
                if !body(.special(best.id)) { return false }
                index += best.pattern.count
                pieceStart = index
            } else {
                index += 1
            }
        }
        if pieceStart < range.upperBound { return body(.text(pieceStart..<range.upperBound)) }
        return true
    }
}
