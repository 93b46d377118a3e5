import Foundation

/// A small gzip (RFC 1952) + DEFLATE (RFC 1951) decoder, so the module needs nothing beyond Foundation to read
/// CLIP's `bpe_simple_vocab_16e6.txt.gz`. Decoding follows the canonical-Huffman scheme of the RFC (as in zlib's
/// reference decoder "puff"); every read is bounds-checked, the CRC-32 and length trailers are verified, and output is
/// capped, so corrupt or hostile input yields `TokenizerError.corruptGzip`.
enum Gzip {
    static func isGzip(_ data: Data) -> Bool {
        data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B
    }

    /// Decompresses all members of a gzip file.
    static func decompress(_ data: Data, maximumOutput: Int = 256 << 20) throws -> [UInt8] {
        let bytes = [UInt8](data)
        var output: [UInt8] = []
        var offset = 0
        repeat {
            offset = try decompressMember(bytes, at: offset, into: &output, maximumOutput: maximumOutput)
        } while offset < bytes.count && bytes[offset] == 0x1F
        return output
    }

    private static func decompressMember(
        _ bytes: [UInt8], at start: Int, into output: inout [UInt8], maximumOutput: Int
    ) throws -> Int {
        func need(_ count: Int, at position: Int) throws {
            guard count >= 0, position <= bytes.count - count else { throw TokenizerError.corruptGzip(reason: "truncated header") }
        }
        try need(10, at: start)
        guard bytes[start] == 0x1F, bytes[start + 1] == 0x8B else {
            throw TokenizerError.corruptGzip(reason: "not a gzip stream")
        }
        guard bytes[start + 2] == 8 else { throw TokenizerError.corruptGzip(reason: "compression method is not deflate") }
        let flags = bytes[start + 3]
        var position = start + 10
        if flags & 0x04 != 0 {  // FEXTRA
            try need(2, at: position)
            let length = Int(bytes[position]) | Int(bytes[position + 1]) << 8
            position += 2
            try need(length, at: position)
            position += length
        }
        for flag in [UInt8(0x08), 0x10] where flags & flag != 0 {  // FNAME, FCOMMENT: zero-terminated
            while true {
                try need(1, at: position)
                position += 1
                if bytes[position - 1] == 0 { break }
            }
        }
        if flags & 0x02 != 0 { try need(2, at: position); position += 2 }  // FHCRC
        let outputStart = output.count
        var inflater = Inflater(bytes: bytes, position: position, maximumOutput: maximumOutput)
        try inflater.inflate(into: &output)
        position = inflater.nextByteOffset
        try need(8, at: position)
        let storedCRC = UInt32(bytes[position]) | UInt32(bytes[position + 1]) << 8
            | UInt32(bytes[position + 2]) << 16 | UInt32(bytes[position + 3]) << 24
        let storedSize = UInt32(bytes[position + 4]) | UInt32(bytes[position + 5]) << 8
            | UInt32(bytes[position + 6]) << 16 | UInt32(bytes[position + 7]) << 24
        let produced = output.count - outputStart
        guard storedSize == UInt32(truncatingIfNeeded: produced) else {
            throw TokenizerError.corruptGzip(reason: "length mismatch")
        }
        guard storedCRC == CRC32.checksum(output[outputStart...]) else {
            throw TokenizerError.corruptGzip(reason: "CRC-32 mismatch")
        }
        return position + 8
    }
}

enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 != 0 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}

/// Raw DEFLATE decoder.
private struct Inflater {
    let bytes: [UInt8]
    var position: Int
    let maximumOutput: Int
    var bitBuffer: UInt32 = 0
    var bitCount = 0

    init(bytes: [UInt8], position: Int, maximumOutput: Int) {
        self.bytes = bytes
        self.position = position
        self.maximumOutput = maximumOutput
    }

    /// First byte after the deflate stream (the partially used last byte counts as consumed).
    var nextByteOffset: Int { position }

    /// Canonical Huffman code: number of codes per length and the symbols ordered by code.
    struct Huffman {
        var counts = [Int](repeating: 0, count: 16)
        var symbols: [Int]

        init(lengths: [Int]) throws {
            symbols = [Int](repeating: 0, count: lengths.count)
            for length in lengths { counts[length] += 1 }
            var left = 1
            for length in 1..<16 {
                left <<= 1
                left -= counts[length]
                guard left >= 0 else { throw TokenizerError.corruptGzip(reason: "over-subscribed Huffman code") }
            }
            var offsets = [Int](repeating: 0, count: 16)
            for length in 1..<15 { offsets[length + 1] = offsets[length] + counts[length] }
            for (symbol, length) in lengths.enumerated() where length != 0 {
                symbols[offsets[length]] = symbol
                offsets[length] += 1
            }
        }
    }

    mutating func bits(_ count: Int) throws -> Int {
        while bitCount < count {
            guard position < bytes.count else { throw TokenizerError.corruptGzip(reason: "truncated deflate data") }
            bitBuffer |= UInt32(bytes[position]) << UInt32(bitCount)
            position += 1
            bitCount += 8
        }
        let value = Int(bitBuffer & ((1 << UInt32(count)) - 1))
        bitBuffer >>= UInt32(count)
        bitCount -= count
        return value
    }

    mutating func decode(_ code: Huffman) throws -> Int {
        var value = 0, first = 0, index = 0
        for length in 1..<16 {
            value |= try bits(1)
            let count = code.counts[length]
            if value - count < first { return code.symbols[index + (value - first)] }
            index += count
            first += count
            first <<= 1
            value <<= 1
        }
        throw TokenizerError.corruptGzip(reason: "invalid Huffman code")
    }

    static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
                             131, 163, 195, 227, 258]
    static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025,
                               1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12,
                                12, 13, 13]

    mutating func inflate(into output: inout [UInt8]) throws {
        let start = output.count
        var last = false
        repeat {
            last = try bits(1) == 1
            switch try bits(2) {
            case 0: try stored(into: &output)
            case 1: try codes(into: &output, start: start, try Self.fixedCodes())
            case 2: try codes(into: &output, start: start, try dynamicCodes())
            default: throw TokenizerError.corruptGzip(reason: "invalid block type")
            }
        } while !last
        // Drop the unused bits of the last byte.
        bitBuffer = 0
        bitCount = 0
    }

    mutating func stored(into output: inout [UInt8]) throws {
        bitBuffer = 0
        bitCount = 0
        guard position <= bytes.count - 4 else { throw TokenizerError.corruptGzip(reason: "truncated stored block") }
        let length = Int(bytes[position]) | Int(bytes[position + 1]) << 8
        let complement = Int(bytes[position + 2]) | Int(bytes[position + 3]) << 8
        guard length == ~complement & 0xFFFF else { throw TokenizerError.corruptGzip(reason: "stored length mismatch") }
        position += 4
        guard position <= bytes.count - length else { throw TokenizerError.corruptGzip(reason: "truncated stored block") }
        guard output.count <= maximumOutput - length else { throw TokenizerError.corruptGzip(reason: "output too large") }
        output.append(contentsOf: bytes[position..<(position + length)])
        position += length
    }

    static func fixedCodes() throws -> (Huffman, Huffman) {
        var lengths = [Int](repeating: 8, count: 288)
        for symbol in 144..<256 { lengths[symbol] = 9 }
        for symbol in 256..<280 { lengths[symbol] = 7 }
        return (try Huffman(lengths: lengths), try Huffman(lengths: [Int](repeating: 5, count: 30)))
    }

    mutating func dynamicCodes() throws -> (Huffman, Huffman) {
        let literalCount = try bits(5) + 257
        let distanceCount = try bits(5) + 1
        let codeLengthCount = try bits(4) + 4
        guard literalCount <= 286, distanceCount <= 30 else {
            throw TokenizerError.corruptGzip(reason: "bad code counts")
        }
        let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
        var codeLengths = [Int](repeating: 0, count: 19)
        for index in 0..<codeLengthCount { codeLengths[order[index]] = try bits(3) }
        let lengthCode = try Huffman(lengths: codeLengths)
        var lengths: [Int] = []
        while lengths.count < literalCount + distanceCount {
            let symbol = try decode(lengthCode)
            switch symbol {
            case 0..<16:
                lengths.append(symbol)
            case 16:
                guard let previous = lengths.last else { throw TokenizerError.corruptGzip(reason: "repeat with no length") }
                lengths.append(contentsOf: repeatElement(previous, count: 3 + (try bits(2))))
            case 17:
                lengths.append(contentsOf: repeatElement(0, count: 3 + (try bits(3))))
            default:
                lengths.append(contentsOf: repeatElement(0, count: 11 + (try bits(7))))
            }
        }
        guard lengths.count == literalCount + distanceCount else {
            throw TokenizerError.corruptGzip(reason: "too many code lengths")
        }
        guard lengths[256] != 0 else { throw TokenizerError.corruptGzip(reason: "no end-of-block code") }
        return (try Huffman(lengths: Array(lengths[0..<literalCount])), try Huffman(lengths: Array(lengths[literalCount...])))
    }

    mutating func codes(into output: inout [UInt8], start: Int, _ tables: (Huffman, Huffman)) throws {
        let (literals, distances) = tables
        while true {
            let symbol = try decode(literals)
            if symbol < 256 {
                guard output.count < maximumOutput else { throw TokenizerError.corruptGzip(reason: "output too large") }
                output.append(UInt8(symbol))
            } else if symbol == 256 {
                return
            } else {
                let lengthIndex = symbol - 257
                guard lengthIndex < Self.lengthBase.count else { throw TokenizerError.corruptGzip(reason: "bad length code") }
                let length = Self.lengthBase[lengthIndex] + (try bits(Self.lengthExtra[lengthIndex]))
                let distanceIndex = try decode(distances)
                guard distanceIndex < Self.distanceBase.count else {
                    throw TokenizerError.corruptGzip(reason: "bad distance code")
                }
                let distance = Self.distanceBase[distanceIndex] + (try bits(Self.distanceExtra[distanceIndex]))
                guard distance <= output.count - start else { throw TokenizerError.corruptGzip(reason: "distance too far back") }
                guard output.count <= maximumOutput - length else { throw TokenizerError.corruptGzip(reason: "output too large") }
                var from = output.count - distance
                for _ in 0..<length {
                    output.append(output[from])
                    from += 1
                }
            }
        }
    }
}
