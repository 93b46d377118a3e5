import CZlib
import Foundation

// Builders for the hostile files of HostileImageTests, made at test time from first principles (PNG chunks with
// zlib and CRC, JPEG scans spliced from a fixture, WebP containers around a hand-coded VP8L bitstream), so no
// opaque binary fixture is needed.

enum HostilePNG {
    /// A PNG chunk: length, type, data, CRC over type and data.
    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        var crc = crc32(0, nil, 0)
        crc = (typeBytes + data).withUnsafeBufferPointer { crc32(crc, $0.baseAddress, uInt($0.count)) }
        return bigEndian(UInt32(data.count)) + typeBytes + data + bigEndian(UInt32(truncatingIfNeeded: crc))
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    /// IHDR data: 8-bit or 16-bit samples, no interlace.
    static func ihdr(width: Int, height: Int, depth: UInt8 = 8, colorType: UInt8 = 2) -> [UInt8] {
        chunk("IHDR", bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [depth, colorType, 0, 0, 0])
    }

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// One zlib stream of `data` followed by `zeros` zero bytes, fed in pieces so nothing big is held.
    static func deflate(_ data: [UInt8], thenZeros zeros: Int = 0) -> [UInt8] {
        var stream = z_stream()
        precondition(deflateInit_(&stream, 9, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        defer { deflateEnd(&stream) }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        func feed(_ input: [UInt8], finish: Bool) {
            var input = input
            input.withUnsafeMutableBufferPointer { inputBuffer in
                stream.next_in = inputBuffer.baseAddress
                stream.avail_in = uInt(inputBuffer.count)
                repeat {
                    let status = buffer.withUnsafeMutableBufferPointer { out -> Int32 in
                        stream.next_out = out.baseAddress
                        stream.avail_out = uInt(out.count)
                        return CZlib.deflate(&stream, finish ? Z_FINISH : Z_NO_FLUSH)
                    }
                    precondition(status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR)
                    output += buffer[0..<(buffer.count - Int(stream.avail_out))]
                } while stream.avail_out == 0 || (finish && stream.avail_in > 0)
            }
        }
        feed(data, finish: false)
        var remaining = zeros
        let block = [UInt8](repeating: 0, count: 1 << 20)
        while remaining > 0 {
            let n = min(remaining, block.count)
            feed(Array(block[0..<n]), finish: false)
            remaining -= n
        }
        feed([], finish: true)
        return output
    }

    /// Filtered scanlines (filter 0) of an 8-bit RGB image.
    static func scanlines(width: Int, height: Int, pixel: (Int, Int) -> (UInt8, UInt8, UInt8)) -> [UInt8] {
        var raw: [UInt8] = []
        raw.reserveCapacity(height * (1 + 3 * width))
        for y in 0..<height {
            raw.append(0)
            for x in 0..<width {
                let (r, g, b) = pixel(x, y)
                raw += [r, g, b]
            }
        }
        return raw
    }

    /// A small valid RGB PNG with `extraChunks` between IHDR and IDAT.
    static func image(width: Int, height: Int, extraChunks: [[UInt8]] = []) -> [UInt8] {
        let raw = scanlines(width: width, height: height) { x, y in
            (UInt8(x * 5 & 0xFF), UInt8(y * 3 & 0xFF), UInt8((x ^ y) & 0xFF))
        }
        return signature + ihdr(width: width, height: height) + extraChunks.joined()
            + chunk("IDAT", deflate(raw)) + chunk("IEND", [])
    }
}

enum HostileJPEG {
    /// `jpeg` with its last scan (SOS segment and entropy data, up to EOI) repeated `extra` more times. libjpeg
    /// accepts the repeats with a "bogus progression" warning, so this is what a many-scan attack file looks like.
    static func repeatingLastScan(_ jpeg: [UInt8], extra: Int) -> [UInt8] {
        // Markers are FF xx with xx not 00 (stuffing) and not FF (fill); the last FF DA starts the last scan.
        var lastSOS: Int? = nil
        var i = 0
        while i + 1 < jpeg.count {
            if jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA { lastSOS = i }
            i += 1
        }
        guard let start = lastSOS, jpeg.count >= 2, jpeg[jpeg.count - 2] == 0xFF, jpeg[jpeg.count - 1] == 0xD9 else {
            preconditionFailure("not a JPEG ending in a scan and EOI")
        }
        let scan = Array(jpeg[start..<(jpeg.count - 2)])
        var out = Array(jpeg[0..<(jpeg.count - 2)])
        out.reserveCapacity(out.count + scan.count * extra + 2)
        for _ in 0..<extra { out += scan }
        return out + [0xFF, 0xD9]
    }
}

enum HostileWebP {
    /// LSB-first bit writer, the order VP8L uses.
    private struct Bits {
        var bytes: [UInt8] = []
        var used = 0
        mutating func write(_ value: UInt32, _ count: Int) {
            for bit in 0..<count {
                if used % 8 == 0 { bytes.append(0) }
                if (value >> UInt32(bit)) & 1 == 1 { bytes[bytes.count - 1] |= UInt8(1 << (used % 8)) }
                used += 1
            }
        }
    }

    /// A VP8L (lossless) bitstream of a `width` x `height` image of one colour: no transforms, no colour cache,
    /// and five one-symbol prefix codes, so every pixel takes zero bits.
    static func losslessSolid(width: Int, height: Int, rgb: (UInt8, UInt8, UInt8)) -> [UInt8] {
        var bits = Bits()
        bits.write(0x2F, 8)  // signature
        bits.write(UInt32(width - 1), 14)
        bits.write(UInt32(height - 1), 14)
        bits.write(0, 1)  // alpha unused
        bits.write(0, 3)  // version
        bits.write(0, 1)  // no transform
        bits.write(0, 1)  // no colour cache
        bits.write(0, 1)  // no meta prefix codes
        for symbol in [rgb.1, rgb.0, rgb.2, 255] {  // green, red, blue, alpha
            bits.write(1, 1)  // simple code
            bits.write(0, 1)  // one symbol
            bits.write(1, 1)  // 8-bit symbol
            bits.write(UInt32(symbol), 8)
        }
        bits.write(1, 1); bits.write(0, 1); bits.write(0, 1); bits.write(0, 1)  // distance code: symbol 0
        return bits.bytes
    }

    static func le(_ value: Int, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8((value >> (8 * $0)) & 0xFF) }
    }

    static func chunk(_ fourcc: String, _ payload: [UInt8]) -> [UInt8] {
        Array(fourcc.utf8) + le(payload.count, 4) + payload + (payload.count % 2 == 1 ? [0] : [])
    }

    /// An animated WebP: a `canvasWidth` x `canvasHeight` canvas and `frames` one-colour lossless frames of
    /// `frameSize` pixels at (`offset`, `offset`) (even, as ANMF stores offsets halved).
    static func animated(canvasWidth: Int, canvasHeight: Int, frames: Int, frameSize: Int, offset: Int) -> [UInt8] {
        var body = Array("WEBP".utf8)
        body += chunk("VP8X", [0x02, 0, 0, 0] + le(canvasWidth - 1, 3) + le(canvasHeight - 1, 3))
        body += chunk("ANIM", [0, 0, 0, 0, 0, 0])
        for index in 0..<frames {
            let colour = (UInt8(200), UInt8(truncatingIfNeeded: 17 * index + 40), UInt8(90))
            let bitstream = chunk("VP8L", losslessSolid(width: frameSize, height: frameSize, rgb: colour))
            let header = le(offset / 2, 3) + le(offset / 2, 3) + le(frameSize - 1, 3) + le(frameSize - 1, 3)
                + le(100, 3) + [0]
            body += chunk("ANMF", header + bitstream)
        }
        return Array("RIFF".utf8) + le(body.count, 4) + body
    }
}
