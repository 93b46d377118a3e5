import TestSupport
import Foundation
import Imaging
import Testing
import TensorFiles

// Golden decoding tests: every image in Tests/Fixtures/images/manifest.json must decode exactly to the
// Pillow reference in Tests/Fixtures/decoded.npz (written by tools/reference/make_fixtures.py), or fail with
// the manifest's error kind.

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
    guard let data = try? Data(contentsOf: Fixtures.url("images/manifest.json")),
          let entries = try? JSONDecoder().decode([ManifestEntry].self, from: data)
    else { return [] }
    return entries
}

private let manifest = loadManifest()

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
        let reference = try Fixtures.decoded()
        let expected = try #require(reference[entry.file], "no reference array for \(entry.file)")
        let bytes = try Fixtures.imageBytes(entry.file)
        #expect(PosterDecoder.sniff(bytes)?.rawValue == entry.format)
        let image = try PosterDecoder().decode(bytes)
        #expect(expected.shape == [image.height, image.width, 3])
        if let width = entry.width, let height = entry.height {
            #expect(image.width == width && image.height == height)
        }
        #expect(expected.dtype == .uint8)
        let diff = maxAbsDifference(image.pixels, try expected.uint8s())
        #expect(diff == 0, "max |swift - pillow| = \(diff) over \(image.pixels.count) samples")
    }

    @Test("malformed files fail with the manifest's error kind", arguments: manifest.filter { $0.expect == "error" })
    func failsLikeManifest(_ entry: ManifestEntry) throws {
        let bytes = try Fixtures.imageBytes(entry.file)
        do {
            let image = try PosterDecoder().decode(bytes)
            Issue.record("\(entry.file) decoded to \(image.width)x\(image.height) but should fail with \(entry.error ?? "?")")
        } catch {
            #expect(error.kind == entry.error, "\(entry.file): \(error)")
        }
    }

    @Test("the file-name extension is ignored: a .jpg holding PNG bytes decodes as PNG")
    func decodeFromURLSniffsContent() throws {
        let url = Fixtures.url("images/png_bytes_named.jpg")
        let fromURL = try PosterDecoder().decode(contentsOf: url)
        let fromBytes = try PosterDecoder().decode(try Fixtures.imageBytes("png_bytes_named.jpg"))
        #expect(fromURL == fromBytes)
        #expect(PosterDecoder.sniff(try Fixtures.imageBytes("png_bytes_named.jpg")) == .png)
    }

    @Test("a missing file is a typed error")
    func missingFile() {
        let url = Fixtures.url("images/does-not-exist.png")
        #expect(throws: ImageDecodingError.self) { try PosterDecoder().decode(contentsOf: url) }
    }

    @Test("the pixel limit is applied from the header, before decoding")
    func pixelLimit() throws {
        let bytes = try Fixtures.imageBytes("jpeg_rgb420_120x180.jpg")
        let limit = 120 * 180 - 1
        #expect(throws: ImageDecodingError.tooManyPixels(width: 120, height: 180, limit: limit)) {
            try PosterDecoder(maxPixels: limit).decode(bytes)
        }
        let image = try PosterDecoder(maxPixels: 120 * 180).decode(bytes)
        #expect(image.width == 120 && image.height == 180)
        for name in ["png_rgb8_160x240.png", "webp_lossy_100x150.webp"] {
            let data = try Fixtures.imageBytes(name)
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
        let original = try Fixtures.imageBytes(name)
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

