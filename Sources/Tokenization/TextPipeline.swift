import Foundation

/// Normalizer and pre-tokenizer of transformers' `CLIPTokenizer` (transformers 5.x, `models/clip/tokenization_clip.py`,
/// run by `tokenizers`):
///
/// - normalizer: `NFC`, then `Replace(\s+ → " ")`, then `Lowercase` (per character, full mapping, no context rules:
///   'İ' becomes "i̇", a final 'Σ' becomes 'σ');
/// - pre-tokenizer: `Split` keeping only the matches of
///   `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`, then
///   `ByteLevel(add_prefix_space: false)`, whose GPT-2 split changes only one kind of piece: a literal
///   "<|startoftext|>" or "<|endoftext|>" becomes "<|", the name, "|>" as three words.
///
/// `\s` of Oniguruma (the regex engine of `tokenizers`) is the Unicode White_Space property, and `\p{L}`/`\p{N}` are
/// the letter and number general categories; Swift's scalar properties give the same sets, except for characters newer
/// than Oniguruma's Unicode version (see `classify`). Whitespace collapsing is not
/// performed separately: whitespace is never part of a word, and lower-casing never creates or removes whitespace, so
/// the words come out the same.
enum TextPipeline {
    enum ScalarClass: UInt8 { case space, letter, number, other }

    private static let asciiClasses: [ScalarClass] = (0..<128).map { value in
        switch value {
        case 0x09...0x0D, 0x20: return .space
        case 0x41...0x5A, 0x61...0x7A: return .letter
        case 0x30...0x39: return .number
        default: return .other
        }
    }

    @inline(__always)
    static func classify(_ scalar: Unicode.Scalar) -> ScalarClass {
        if scalar.value < 128 { return asciiClasses[Int(scalar.value)] }
        let properties = scalar.properties
        if properties.isWhitespace { return .space }
        let kind: ScalarClass
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: kind = .letter
        case .decimalNumber, .letterNumber, .otherNumber: kind = .number
        default: return .other
        }
        // The Oniguruma tables in tokenizers 0.23 stop at Unicode 16.0 (while its lower-casing, Rust's, knows 17.0,
        // as Swift does): a letter or digit added later is unassigned there, so it belongs to the symbol runs.
        guard let age = properties.age, age.major <= regexUnicodeMajorVersion else { return .other }
        return kind
    }

    /// Unicode version of the reference's regex character classes.
    static let regexUnicodeMajorVersion = 16

    /// NFC followed by per-character lower-casing.
    static func normalize<S: Collection>(_ scalars: S) -> [Unicode.Scalar] where S.Element == Unicode.Scalar {
        // Every scalar below U+0300 is NFC_Quick_Check=Yes and never combines with what precedes it, so such text is
        // already in NFC; this keeps the normalizer out of the common path.
        if scalars.contains(where: { $0.value >= 0x300 }) {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars)
            // The standard library's own normalizer (the one behind String comparison). Foundation's
            // `precomposedStringWithCanonicalMapping` is not used: on Linux it composes a supplementary-plane starter
            // as if it were its low 16 bits (U+E004E U+032D became U+1E4A).
            return lowercased(String(decoding: String(view)._nfcCodeUnits, as: UTF8.self).unicodeScalars)
        }
        return lowercased(scalars)
    }

    /// Full per-character lower-case mapping (Rust's `char::to_lowercase`, which `tokenizers`' `Lowercase` applies).
    private static func lowercased<S: Collection>(_ scalars: S) -> [Unicode.Scalar] where S.Element == Unicode.Scalar {
        var lowered: [Unicode.Scalar] = []
        lowered.reserveCapacity(scalars.count)
        for scalar in scalars {
            if scalar.value < 128 {
                let value = scalar.value
                lowered.append((0x41...0x5A).contains(value) ? Unicode.Scalar(UInt8(value + 32)) : scalar)
            } else if scalar.properties.changesWhenLowercased {
                lowered.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else {
                lowered.append(scalar)
            }
        }
        return lowered
    }

    private static let literalSpecials: [[Unicode.Scalar]] = ["<|startoftext|>", "<|endoftext|>"].map {
        Array($0.unicodeScalars)
    }

    @inline(__always)
    private static func hasPrefix(_ text: [Unicode.Scalar], at index: Int, _ prefix: [Unicode.Scalar]) -> Bool {
        guard text.count - index >= prefix.count else { return false }
        for offset in 0..<prefix.count where text[index + offset] != prefix[offset] { return false }
        return true
    }

    /// Calls `word` with the scalar range of every pre-token of `text` (already normalized), in order.
    static func forEachWord(in text: [Unicode.Scalar], range: Range<Int>, _ word: (Range<Int>) -> Bool) {
        var index = range.lowerBound
        let end = range.upperBound
        while index < end {
            let scalar = text[index]
            let kind = classify(scalar)
            switch kind {
            case .space:
                index += 1
            case .letter:
                var stop = index + 1
                while stop < end, classify(text[stop]) == .letter { stop += 1 }
                if !word(index..<stop) { return }
                index = stop
            case .number:
                if !word(index..<(index + 1)) { return }
                index += 1
            case .other:
                if scalar == "<" {
                    if let literal = literalSpecials.first(where: { hasPrefix(text, at: index, $0) }),
                       index + literal.count <= end {
                        // ByteLevel's GPT-2 split cuts the literal into "<|", name, "|>".
                        let stop = index + literal.count
                        guard word(index..<(index + 2)), word((index + 2)..<(stop - 2)), word((stop - 2)..<stop)
                        else { return }
                        index = stop
                        continue
                    }
                } else if scalar == "'" {
                    let contraction = contractionLength(text, at: index, end: end)
                    if contraction > 0 {
                        if !word(index..<(index + contraction)) { return }
                        index += contraction
                        continue
                    }
                }
                var stop = index + 1
                while stop < end, classify(text[stop]) == .other { stop += 1 }
                if !word(index..<stop) { return }
                index = stop
            }
        }
    }

    /// Length of the contraction (`'s|'t|'re|'ve|'m|'ll|'d`) starting at `index` (an apostrophe), or 0.
    @inline(__always)
    private static func contractionLength(_ text: [Unicode.Scalar], at index: Int, end: Int) -> Int {
        guard index + 1 < end else { return 0 }
        switch text[index + 1] {
        case "s", "t", "m", "d": return 2
        case "r", "v":
            return index + 2 < end && text[index + 2] == "e" ? 3 : 0
        case "l":
            return index + 2 < end && text[index + 2] == "l" ? 3 : 0
        default: return 0
        }
    }
}
