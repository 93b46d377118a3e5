import CZlib
import Foundation
import Imaging
import Testing

// Golden decoding tests: every image in Tests/Fixtures/images/manifest.json must decode exactly to the
// Pillow reference in Tests/Fixtures/decoded.npz (written by tools/reference/make_fixtures.py), or fail with
// the manifest's error kind.

private let fixturesDirectory: URL = {
    // Tests/ImagingTests/DecodingTests.swift -> package root -> Tests/Fixtures
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
}()

struct ManifestEntry: Decodable, Sendable, CustomStringConvertible {
    var file: String
    var format: String?
    var width: Int?
    var height: Int?
    var expect: String
    var error: String?
    var description: String { file }
}

private func loadManifest() -> [ManifestEntry] {
    let url = fixturesDirectory.appendingPathComponent("images/manifest.json")
    guard let data = try? Data(contentsOf: url),
          let entries = try? JSONDecoder().decode([ManifestEntry].self, from: data)
    else { return [] }
    return entries
}

private let manifest = loadManifest()

private func fixtureBytes(_ name: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: fixturesDirectory.appendingPathComponent("images").appendingPathComponent(name)))
}

/// Reference arrays, loaded once.
private let decodedReference: Result<[String: NPYArray], any Error> = Result {
    try MiniNPZ.read(fixturesDirectory.appendingPathComponent("decoded.npz"))
}

@Suite("Poster decoding against Pillow")
struct DecodingTests {
    @Test("manifest is present and covers every format")
    func manifestLoaded() {
        #expect(manifest.count > 20)
        for format in ImageFormat.allCases {
            #expect(manifest.contains { $0.format == format.rawValue && $0.expect == "ok" })
        }
        #expect(manifest.contains { $0.expect == "error" })
    }

    @Test("ok images decode exactly to Pillow's convert(\"RGB\")", arguments: manifest.filter { $0.expect == "ok" })
    func decodesLikePillow(_ entry: ManifestEntry) throws {
        let reference = try decodedReference.get()
        let expected = try #require(reference[entry.file], "no reference array for \(entry.file)")
        let bytes = try fixtureBytes(entry.file)
        #expect(PosterDecoder.sniff(bytes)?.rawValue == entry.format)
        let image = try PosterDecoder().decode(bytes)
        #expect(expected.shape == [image.height, image.width, 3])
        if let width = entry.width, let height = entry.height {
            #expect(image.width == width && image.height == height)
        }
        #expect(expected.dtype == "|u1")
        let diff = maxAbsDifference(image.pixels, expected.data)
        #expect(diff == 0, "max |swift - pillow| = \(diff) over \(image.pixels.count) samples")
    }

    @Test("malformed files fail with the manifest's error kind", arguments: manifest.filter { $0.expect == "error" })
    func failsLikeManifest(_ entry: ManifestEntry) throws {
        let bytes = try fixtureBytes(entry.file)
        do {
            let image = try PosterDecoder().decode(bytes)
            Issue.record("\(entry.file) decoded to \(image.width)x\(image.height) but should fail with \(entry.error ?? "?")")
        } catch {
            #expect(error.kind == entry.error, "\(entry.file): \(error)")
        }
    }

    @Test("the file-name extension is ignored: a .jpg holding PNG bytes decodes as PNG")
    func decodeFromURLSniffsContent() throws {
        let url = fixturesDirectory.appendingPathComponent("images/png_bytes_named.jpg")
        let fromURL = try PosterDecoder().decode(contentsOf: url)
        let fromBytes = try PosterDecoder().decode(try fixtureBytes("png_bytes_named.jpg"))
        #expect(fromURL == fromBytes)
        #expect(PosterDecoder.sniff(try fixtureBytes("png_bytes_named.jpg")) == .png)
    }

    @Test("a missing file is a typed error")
    func missingFile() {
        let url = fixturesDirectory.appendingPathComponent("images/does-not-exist.png")
        #expect(throws: ImageDecodingError.self) { try PosterDecoder().decode(contentsOf: url) }
    }

    @Test("the pixel limit is applied from the header, before decoding")
    func pixelLimit() throws {
        let bytes = try fixtureBytes("jpeg_rgb420_120x180.jpg")
        let limit = 120 * 180 - 1
        #expect(throws: ImageDecodingError.tooManyPixels(width: 120, height: 180, limit: limit)) {
            try PosterDecoder(maxPixels: limit).decode(bytes)
        }
        let image = try PosterDecoder(maxPixels: 120 * 180).decode(bytes)
        #expect(image.width == 120 && image.height == 180)
        for name in ["png_rgb8_160x240.png", "webp_lossy_100x150.webp"] {
            let data = try fixtureBytes(name)
            let size = try PosterDecoder().dimensions(of: data)
            let limit = size.width * size.height - 1
            #expect(throws: ImageDecodingError.tooManyPixels(width: size.width, height: size.height, limit: limit)) {
                try PosterDecoder(maxPixels: limit).decode(data)
            }
        }
    }

    @Test("error kinds and descriptions")
    func errorDescriptions() {
        let errors: [ImageDecodingError] = [
            .empty, .unknownFormat, .truncated(.jpeg, "x"), .corrupt(.png, "y"),
            .tooManyPixels(width: 1, height: 2, limit: 1), .zeroSize(.webp), .unsupported(.jpeg, "z"),
        ]
        #expect(errors.map(\.kind) == ["empty", "unknownFormat", "truncated", "corrupt", "tooManyPixels", "zeroSize", "unsupported"])
        for error in errors { #expect(!error.description.isEmpty) }
    }

    /// Random byte mutations and truncations of valid files: decoding must return an image or throw, never crash.
    @Test("mutated and truncated fixtures never crash", arguments: [
        "jpeg_rgb420_120x180.jpg", "jpeg_progressive_100x150.jpg", "jpeg_cmyk_adobe_72x108.jpg",
        "png_interlaced_rgb8_67x45.png", "png_palette4_37x23.png", "png_gray16_40x60.png",
        "webp_lossy_alpha_80x80.webp", "webp_lossless_64x96.webp",
    ])
    func fuzz(_ name: String) throws {
        let original = try fixtureBytes(name)
        var rng = SplitMix64(seed: 0x5EED_0000 &+ UInt64(name.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))
        let decoder = PosterDecoder(maxPixels: 4_000_000)
        let iterations = 60
        var decoded = 0, failed = 0
        for iteration in 0..<iterations {
            var bytes = original
            switch iteration % 4 {
            case 0:  // truncate anywhere
                bytes.removeLast(Int(rng.next() % UInt64(bytes.count)))
            case 1:  // flip a few random bytes
                for _ in 0..<(1 + Int(rng.next() % 8)) {
                    bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
            case 2:  // damage the header area, where sizes and tables live
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    let index = Int(rng.next() % UInt64(min(bytes.count, 64)))
                    bytes[index] = UInt8(truncatingIfNeeded: rng.next())
                }
            default:  // overwrite a run with garbage and truncate
                let start = Int(rng.next() % UInt64(bytes.count))
                for index in start..<min(bytes.count, start + 32) { bytes[index] = UInt8(truncatingIfNeeded: rng.next()) }
                bytes.removeLast(Int(rng.next() % UInt64(max(1, bytes.count / 4))))
            }
            do {
                let image = try decoder.decode(bytes)
                #expect(image.pixels.count == image.width * image.height * 3)
                decoded += 1
            } catch {
                #expect(!error.description.isEmpty)
                failed += 1
            }
        }
        #expect(decoded + failed == iterations)
        // Truncations of a quarter of the runs must be reported, not silently accepted.
        #expect(failed > 0)
    }
}

private func maxAbsDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
    guard a.count == b.count else { return Int.max }
    var worst = 0
    for i in a.indices { worst = max(worst, abs(Int(a[i]) - Int(b[i]))) }
    return worst
}

/// Deterministic PRNG for the fuzz test (SplitMix64).
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - Minimal .npz reader (test-only stand-in until TensorFiles' reader lands; swap it then)

private struct NPYArray {
    var dtype: String
    var shape: [Int]
    var data: [UInt8]
}

private enum MiniNPZ {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func read(_ url: URL) throws -> [String: NPYArray] {
        let zip = [UInt8](try Data(contentsOf: url))
        var arrays: [String: NPYArray] = [:]
        for (name, bytes) in try zipEntries(zip) where name.hasSuffix(".npy") {
            arrays[String(name.dropLast(4))] = try parseNPY(bytes)
        }
        return arrays
    }

    private static func u16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
    private static func u32(_ b: [UInt8], _ i: Int) -> Int { u16(b, i) | u16(b, i + 2) << 16 }

    /// Entries from the central directory (numpy's savez_compressed: deflate, sizes in the central directory).
    private static func zipEntries(_ zip: [UInt8]) throws -> [(String, [UInt8])] {
        guard zip.count >= 22,
              let eocd = stride(from: zip.count - 22, through: 0, by: -1).first(where: { u32(zip, $0) == 0x0605_4B50 })
        else { throw Failure(description: "no end-of-central-directory record") }
        let count = u16(zip, eocd + 10)
        var pos = u32(zip, eocd + 16)
        var entries: [(String, [UInt8])] = []
        for _ in 0..<count {
            guard pos + 46 <= zip.count, u32(zip, pos) == 0x0201_4B50 else { throw Failure(description: "bad central directory") }
            let method = u16(zip, pos + 10)
            let compressed = u32(zip, pos + 20), uncompressed = u32(zip, pos + 24)
            let nameLength = u16(zip, pos + 28), extraLength = u16(zip, pos + 30), commentLength = u16(zip, pos + 32)
            let localOffset = u32(zip, pos + 42)
            let name = String(decoding: zip[(pos + 46)..<(pos + 46 + nameLength)], as: UTF8.self)
            pos += 46 + nameLength + extraLength + commentLength
            let dataStart = localOffset + 30 + u16(zip, localOffset + 26) + u16(zip, localOffset + 28)
            guard dataStart + compressed <= zip.count else { throw Failure(description: "entry \(name) out of bounds") }
            let raw = Array(zip[dataStart..<(dataStart + compressed)])
            switch method {
            case 0: entries.append((name, raw))
            case 8: entries.append((name, try inflateRaw(raw, expectedSize: uncompressed)))
            default: throw Failure(description: "unsupported zip method \(method)")
            }
        }
        return entries
    }

    private static func inflateRaw(_ input: [UInt8], expectedSize: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: expectedSize)
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Failure(description: "inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        var input = input
        let status = input.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.next_in = inBuffer.baseAddress
                stream.avail_in = uInt(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = uInt(outBuffer.count)
                return inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == expectedSize else {
            throw Failure(description: "inflate failed (\(status))")
        }
        return output
    }

    private static func parseNPY(_ bytes: [UInt8]) throws -> NPYArray {
        guard bytes.count >= 10, bytes[0] == 0x93, bytes[1...5].elementsEqual("NUMPY".utf8) else {
            throw Failure(description: "not an .npy")
        }
        let major = bytes[6]
        let headerLength = major == 1 ? u16(bytes, 8) : u32(bytes, 8)
        let headerStart = major == 1 ? 10 : 12
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        func value(_ key: String) -> Substring? {
            guard let range = header.range(of: "'\(key)': ") else { return nil }
            return header[range.upperBound...]
        }
        guard let descrStart = value("descr")?.dropFirst(), let descrEnd = descrStart.firstIndex(of: "'"),
              let shapeStart = value("shape")?.dropFirst(), let shapeEnd = shapeStart.firstIndex(of: ")")
        else { throw Failure(description: "bad .npy header \(header)") }
        let shape = shapeStart[..<shapeEnd].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard value("fortran_order")?.hasPrefix("False") == true else { throw Failure(description: "fortran order") }
        return NPYArray(dtype: String(descrStart[..<descrEnd]), shape: shape,
                        data: Array(bytes[(headerStart + headerLength)...]))
    }
}
