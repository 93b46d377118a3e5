import Foundation

extension CLIPTokenizer {
    /// Loads a tokenizer from a Hugging Face model folder: `vocab.json` + `merges.txt`, or `tokenizer.json` (its
    /// `model.vocab`, `model.merges` and `added_tokens`) when those two are absent. Special tokens and their
    /// `normalized` flags come from `tokenizer.json`'s `added_tokens` if present, otherwise from
    /// `tokenizer_config.json` overridden by `special_tokens_map.json`, the way transformers 5.x resolves them.
    public init(modelDirectory: URL) throws {
        let vocabURL = modelDirectory.appendingPathComponent("vocab.json")
        let mergesURL = modelDirectory.appendingPathComponent("merges.txt")
        let tokenizerURL = modelDirectory.appendingPathComponent("tokenizer.json")
        let fileManager = FileManager.default
        let tokenizerJSON: TokenizerJSON? = fileManager.fileExists(atPath: tokenizerURL.path)
            ? try ModelFiles.decode(TokenizerJSON.self, from: tokenizerURL) : nil

        let vocabulary: [String: Int]
        let merges: [(String, String)]
        if fileManager.fileExists(atPath: vocabURL.path), fileManager.fileExists(atPath: mergesURL.path) {
            vocabulary = try ModelFiles.decode([String: Int].self, from: vocabURL)
            merges = try ModelFiles.parseMerges(ModelFiles.read(mergesURL), path: mergesURL.path)
        } else if let tokenizerJSON {
            vocabulary = tokenizerJSON.model.vocab
            merges = try tokenizerJSON.model.merges.enumerated().map { index, entry in
                guard entry.parts.count == 2 else {
                    throw TokenizerError.malformedMerges(
                        path: tokenizerURL.path, line: index + 1,
                        reason: "expected two tokens, found \(entry.parts.count)")
                }
                return (entry.parts[0], entry.parts[1])
            }
        } else {
            throw TokenizerError.missingFiles(
                directory: modelDirectory.path, expected: ["vocab.json + merges.txt", "tokenizer.json"])
        }

        let roles = try ModelFiles.specialTokenRoles(in: modelDirectory)
        var added: [(content: String, id: Int, normalized: Bool)] = []
        if let listed = tokenizerJSON?.added_tokens, !listed.isEmpty {
            added = listed.map { ($0.content, $0.id, $0.normalized ?? false) }
        }
        // Roles not listed in tokenizer.json become special tokens with the flag of their last role.
        for (_, token) in roles where !added.contains(where: { $0.content == token.content }) {
            if let id = vocabulary[token.content] {
                added.append((token.content, id, token.normalized))
            }
        }
        if tokenizerJSON?.added_tokens?.isEmpty ?? true {
            for (_, token) in roles {
                if let index = added.firstIndex(where: { $0.content == token.content }) {
                    added[index].normalized = token.normalized
                }
            }
        }
        func content(_ role: String) -> String? { roles.first { $0.role == role }?.token.content }
        try self.init(
            vocabulary: vocabulary, merges: merges, addedTokens: added,
            startOfText: content("bos_token") ?? "<|startoftext|>",
            endOfText: content("eos_token") ?? "<|endoftext|>",
            unknownToken: content("unk_token") ?? "<|endoftext|>",
            paddingToken: content("pad_token") ?? "<|endoftext|>")
    }
}

/// The parts of `tokenizer.json` the CLIP tokenizer needs.
struct TokenizerJSON: Decodable {
    struct Model: Decodable {
        var vocab: [String: Int]
        var merges: [MergeEntry]
    }

    /// A merge, written either as "left right" (older files) or as ["left", "right"].
    struct MergeEntry: Decodable {
        var parts: [String]

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                // transformers: merge.split(" ")
                parts = text.unicodeScalars.split(separator: " ", omittingEmptySubsequences: false).map {
                    String(String.UnicodeScalarView($0))
                }
            } else {
                parts = try container.decode([String].self)
            }
        }
    }

    struct Added: Decodable {
        var id: Int
        var content: String
        var normalized: Bool?
    }

    var model: Model
    var added_tokens: [Added]?
}

enum ModelFiles {
    static func read(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let data = try read(url)
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw TokenizerError.malformedJSON(path: url.path, reason: String(describing: error))
        }
    }

    /// `merges.txt` as `tokenizers` reads it (`BPE::read_file`): lines starting with "#version" are skipped, every
    /// other line must be exactly two tokens separated by one space. A final line break does not start a new line.
    static func parseMerges(_ data: Data, path: String) throws -> [(String, String)] {
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenizerError.malformedMerges(path: path, line: 0, reason: "not UTF-8")
        }
        var merges: [(String, String)] = []
        // Split on scalars, not Characters: "\r\n" is one Character, and a combining mark after a space would merge
        // with it.
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        for (index, rawLine) in lines.enumerated() {
            let line = rawLine.last == "\r" ? rawLine.dropLast() : rawLine
            if line.starts(with: "#version".unicodeScalars) { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw TokenizerError.malformedMerges(
                    path: path, line: index + 1, reason: "expected two tokens separated by one space")
            }
            merges.append((String(String.UnicodeScalarView(parts[0])), String(String.UnicodeScalarView(parts[1]))))
        }
        return merges
    }

    /// bos/eos/unk/pad as transformers resolves them: `tokenizer_config.json`, overridden key by key by
    /// `special_tokens_map.json`. A plain string is a special token with `normalized` false; an object carries its
    /// own flag (false when absent, transformers' default for special tokens).
    static func specialTokenRoles(in directory: URL) throws -> [(role: String, token: CLIPTokenizer.SpecialToken)] {
        var merged: [String: Any] = [:]
        for name in ["tokenizer_config.json", "special_tokens_map.json"] {
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            let data = try read(url)
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: data)
            } catch {
                throw TokenizerError.malformedJSON(path: url.path, reason: String(describing: error))
            }
            guard let dictionary = object as? [String: Any] else {
                throw TokenizerError.malformedJSON(path: url.path, reason: "top level is not an object")
            }
            for (key, value) in dictionary { merged[key] = value }
        }
        let defaults = ["bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                        "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"]
        var roles: [(role: String, token: CLIPTokenizer.SpecialToken)] = []
        for role in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            let value = merged[role]
            if let text = value as? String {
                roles.append((role, .init(text, normalized: false)))
            } else if let object = value as? [String: Any], let text = object["content"] as? String {
                roles.append((role, .init(text, normalized: (object["normalized"] as? Bool) ?? false)))
            } else if let fallback = defaults[role] {
                roles.append((role, .init(fallback, normalized: false)))
            }
        }
        return roles
    }
}
