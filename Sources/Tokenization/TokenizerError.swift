import Foundation

/// Why a tokenizer could not be built. Every failure while reading model files or assembling a vocabulary is one of
/// these cases; encoding itself never fails once a tokenizer exists.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The model folder has neither `vocab.json` + `merges.txt` nor a `tokenizer.json`.
    case missingFiles(directory: String, expected: [String])
    /// A file exists but could not be read.
    case unreadableFile(path: String, reason: String)
    /// A JSON file is not valid JSON or does not have the expected shape.
    case malformedJSON(path: String, reason: String)
    /// A line of a merges file is not two tokens separated by one space (1-based line number, as `tokenizers` counts).
    case malformedMerges(path: String, line: Int, reason: String)
    /// A vocabulary id is negative or too large.
    case invalidTokenId(token: String, id: Int)
    /// A merge names a token, or produces a token, that the vocabulary does not contain.
    case mergeTokenNotInVocabulary(token: String)
    /// A special token (start/end of text, unknown) is not in the vocabulary.
    case specialTokenNotInVocabulary(role: String, token: String)
    /// The unknown token is needed (some byte symbol is missing from the vocabulary) but is not configured.
    case missingUnknownToken(byteSymbol: String)
    /// A CLIP `bpe_simple_vocab` file is too short, not UTF-8, or has a malformed merge line.
    case malformedBPEFile(path: String, reason: String)
    /// The same token would receive two ids while assembling a vocabulary.
    case duplicateToken(String)
    /// A gzip stream is corrupt or truncated.
    case corruptGzip(reason: String)

    public var description: String {
        switch self {
        case let .missingFiles(directory, expected):
            return "tokenizer files missing in \(directory): expected \(expected.joined(separator: " or "))"
        case let .unreadableFile(path, reason):
            return "cannot read \(path): \(reason)"
        case let .malformedJSON(path, reason):
            return "malformed JSON in \(path): \(reason)"
        case let .malformedMerges(path, line, reason):
            return "malformed merges file \(path), line \(line): \(reason)"
        case let .invalidTokenId(token, id):
            return "token \(token.debugDescription) has invalid id \(id)"
        case let .mergeTokenNotInVocabulary(token):
            return "merge token \(token.debugDescription) is not in the vocabulary"
        case let .specialTokenNotInVocabulary(role, token):
            return "\(role) token \(token.debugDescription) is not in the vocabulary"
        case let .missingUnknownToken(symbol):
            return "byte symbol \(symbol.debugDescription) is not in the vocabulary and no unknown token is configured"
        case let .malformedBPEFile(path, reason):
            return "malformed CLIP BPE file \(path): \(reason)"
        case let .duplicateToken(token):
            return "token \(token.debugDescription) appears twice in the vocabulary"
        case let .corruptGzip(reason):
            return "corrupt gzip data: \(reason)"
        }
    }
}
