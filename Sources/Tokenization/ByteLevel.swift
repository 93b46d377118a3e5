/// The GPT-2 / CLIP byte-to-character table ("bytes_to_unicode" in OpenAI's CLIP `simple_tokenizer.py`, and the
/// `ByteLevel` pre-tokenizer of Hugging Face `tokenizers`): every byte becomes one printable character so that BPE
/// works on text. Printable Latin-1 bytes ('!'...'~', '¡'...'¬', '®'...'ÿ') stand for themselves; the remaining 68
/// bytes, in increasing byte order, become U+0100, U+0101, ...
enum ByteLevel {
    /// `characters[b]` is the character that stands for byte `b`.
    static let characters: [Character] = {
        var table = [Character](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(UInt8(byte)) {
                table[byte] = Character(Unicode.Scalar(UInt8(byte)))
            } else {
                // 256 + n stays far below the surrogate range, so the scalar always exists.
                table[byte] = Character(Unicode.Scalar(next) ?? "?")
                next += 1
            }
        }
        return table
    }()

    /// The 256 byte characters in CLIP's vocabulary order: the self-standing bytes first, then the remapped ones.
    static let vocabularyOrder: [Character] = {
        let kept = (0..<256).filter { isPrintable(UInt8($0)) }.map { characters[$0] }
        let remapped = (0..<256).filter { !isPrintable(UInt8($0)) }.map { characters[$0] }
        return kept + remapped
    }()

    static func isPrintable(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }
}
