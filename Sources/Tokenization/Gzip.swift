import CZlib
import Foundation

/// gzip (RFC 1952) decoding through the system's zlib, to read CLIP's `bpe_simple_vocab_16e6.txt.gz`. zlib checks
/// each member's CRC-32 and length trailer; output is capped, and every member of a multi-member file is read, so
/// corrupt or hostile input yields `TokenizerError.corruptGzip`.
enum Gzip {
    static func isGzip(_ data: Data) -> Bool {
        data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B
    }

    /// Decompresses all members of a gzip file.
    static func decompress(_ data: Data, maximumOutput: Int = 256 << 20) throws -> [UInt8] {
        var input = [UInt8](data)
        guard input.count >= 2 else { throw TokenizerError.corruptGzip(reason: "truncated header") }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var stream = z_stream()
        // 16 + MAX_WBITS: a gzip wrapper, not zlib's own.
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw TokenizerError.corruptGzip(reason: "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        try input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(source.count)
            while true {
                let status = chunk.withUnsafeMutableBufferPointer { buffer -> Int32 in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = uInt(buffer.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(stream.avail_out)
                guard output.count + produced <= maximumOutput else {
                    throw TokenizerError.corruptGzip(reason: "more than \(maximumOutput) bytes of output")
                }
                output.append(contentsOf: chunk[..<produced])
                switch status {
                case Z_OK:
                    // No progress with no input left: the stream ends early.
                    if produced == 0 && stream.avail_in == 0 { throw TokenizerError.corruptGzip(reason: "truncated stream") }
                case Z_STREAM_END:
                    // Another member follows only if its magic bytes do; anything else after the last one is ignored,
                    // as gzip(1) does with trailing zeros.
                    let rest = Int(stream.avail_in)
                    let at = source.count - rest
                    guard rest >= 2, source[at] == 0x1F, source[at + 1] == 0x8B else { return }
                    guard inflateReset(&stream) == Z_OK else { throw TokenizerError.corruptGzip(reason: "zlib reset failed") }
                case Z_BUF_ERROR:
                    throw TokenizerError.corruptGzip(reason: "truncated stream")
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                    throw TokenizerError.corruptGzip(reason: message)
                }
            }
        }
        return output
    }
}
