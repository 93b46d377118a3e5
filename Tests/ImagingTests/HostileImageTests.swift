import Foundation
import Imaging
import Testing

// Issue 13, "uploads that cost far more than their size": each hostile class gets a typed error or the correct
// image, and the assertions are on deterministic quantities the codecs report (bytes held, scans read, error
// kinds), never on time. The files are built in HostileFiles.swift.

@Suite("Hostile images: bounded cost, typed errors")
struct HostileImageTests {
    /// Many zTXt / iTXt chunks and an iCCP that each inflate to 8 MB (libpng's default per-chunk cap): libpng used
    /// to inflate and keep every one of them until the reader was destroyed.
    @Test func pngAncillaryChunkBombsAreSkipped() throws {
        let eightMB = HostilePNG.deflate([], thenZeros: 8_000_000 - 64)
        var chunks: [[UInt8]] = [HostilePNG.chunk("iCCP", Array("icc".utf8) + [0, 0] + eightMB)]
        for index in 0..<40 {
            chunks.append(HostilePNG.chunk("zTXt", Array("Comment\(index)".utf8) + [0, 0] + eightMB))
            chunks.append(HostilePNG.chunk("iTXt", Array("Title\(index)".utf8) + [0, 1, 0, 0, 0] + eightMB))
        }
        let hostile = HostilePNG.image(width: 64, height: 96, extraChunks: chunks)
        #expect(hostile.count < 1_000_000)  // about 650 MB once inflated
        let plain = try PosterDecoder().decode(HostilePNG.image(width: 64, height: 96))

        var statistics = DecodingStatistics()
        let image = try PosterDecoder().decode(hostile, statistics: &statistics)
        let same = image == plain
        #expect(same, "the chunks changed the pixels")
        // Row buffers and zlib's window: well under 1 MB whatever the chunks hold.
        #expect(statistics.peakWorkingMemory > 0 && statistics.peakWorkingMemory < 256 << 10,
                "libpng held \(statistics.peakWorkingMemory) bytes")
        // The budget is enforced, not just measured: the same file decodes under a 1 MB budget.
        let tight = PosterDecoder(limits: DecodingLimits(maxWorkingMemory: 1 << 20))
        #expect(try tight.decode(hostile) == plain)
    }

    /// libpng's working memory is held to the budget by the allocator: a budget below what the rows need is a
    /// typed error, not an allocation.
    @Test func pngWorkingMemoryBudgetIsEnforced() throws {
        let png = HostilePNG.image(width: 4000, height: 200)
        let refusal = workingMemoryLimit(decodingError(png, PosterDecoder(limits: DecodingLimits(maxWorkingMemory: 16 << 10))))
        #expect(refusal?.format == .png && refusal?.limit == 16 << 10)
        var statistics = DecodingStatistics()
        _ = try PosterDecoder().decode(png, statistics: &statistics)
        #expect(statistics.peakWorkingMemory > 16 << 10)
    }

    /// The image data's zlib stream is split by another chunk, and the rest of it (after the image data run)
    /// inflates to 48 MB. libpng stops at the interruption ("Not enough image data"); the check of where the
    /// zlib stream ends used to inflate every IDAT in the file (seconds of CPU for a 2 MB file), then accepted
    /// the image as "stream ended early". Like Pillow, it is truncated: data after the IDAT run is not image data.
    @Test func pngCompressedDataAfterTheImageDataIsNotInflated() throws {
        let width = 1000, height = 1000
        let raw = HostilePNG.scanlines(width: width, height: height) { x, y in (UInt8(x & 0xFF), UInt8(y & 0xFF), 7) }
        let stream = HostilePNG.deflate(raw, thenZeros: 48 << 20)
        let split = 200
        let file = HostilePNG.signature + HostilePNG.ihdr(width: width, height: height)
            + HostilePNG.chunk("IDAT", Array(stream[0..<split]))
            + HostilePNG.chunk("tEXt", Array("Comment".utf8) + [0] + Array("interruption".utf8))
            + HostilePNG.chunk("IDAT", Array(stream[split...])) + HostilePNG.chunk("IEND", [])
        do {
            let image = try PosterDecoder().decode(file)
            Issue.record("decoded to \(image.width)x\(image.height); expected a truncation error")
        } catch {
            #expect(error.kind == "truncated", "\(error)")
        }
    }

    /// A progressive JPEG whose last scan repeats 2,000 times: each repeat is a pass over the coefficient buffer,
    /// and libjpeg only warns. The decoder stops with a typed error once the scans cover the image 32 times (or,
    /// were that unlimited, at scan 501).
    @Test func jpegWithThousandsOfScansIsRefusedAtTheScanLimit() throws {
        let progressive = try Fixtures.imageBytes("jpeg_progressive_100x150.jpg")
        var statistics = DecodingStatistics()
        let reference = try PosterDecoder().decode(progressive, statistics: &statistics)
        let realScans = statistics.scans
        #expect(realScans >= 2 && realScans < 20)

        let hostile = HostileJPEG.repeatingLastScan(progressive, extra: 2_000)
        // The scan count alone (coverage unlimited here): refused at scan 501.
        let scansOnly = PosterDecoder(limits: DecodingLimits(maxScanPasses: 0))
        statistics = DecodingStatistics()
        #expect(decodingError(hostile, scansOnly, statistics: &statistics) == .limitExceeded(.jpeg, .scans(limit: 500)))
        #expect(statistics.scans == 501)
        // By default the scans' coverage stops it much earlier: each repeat covers the luma blocks, 247 of the
        // image's 387, so 32 passes are spent after about 45 repeats.
        statistics = DecodingStatistics()
        #expect(decodingError(hostile, statistics: &statistics) == .limitExceeded(.jpeg, .scanPasses(limit: 32)))
        #expect(statistics.scans > realScans + 30 && statistics.scans < realScans + 60, "\(statistics.scans) scans")

        // Under the limit the repeats are decoded, as Pillow does (the warnings are ignored).
        let fewRepeats = HostileJPEG.repeatingLastScan(progressive, extra: 20)
        statistics = DecodingStatistics()
        let image = try PosterDecoder().decode(fewRepeats, statistics: &statistics)
        #expect(statistics.scans == realScans + 20)
        #expect(image.width == reference.width && image.height == reference.height)
        let lowLimit = PosterDecoder(limits: DecodingLimits(maxScans: realScans))
        #expect(decodingError(fewRepeats, lowLimit) == .limitExceeded(.jpeg, .scans(limit: realScans)))
        #expect(try lowLimit.decode(progressive) == reference)
    }

    /// A progressive JPEG's whole-image coefficient buffer counts against the working-memory budget; a baseline
    /// JPEG needs only a few rows and decodes under the same small budget.
    @Test func jpegCoefficientBufferIsWithinTheBudget() throws {
        let progressive = try Fixtures.imageBytes("jpeg_progressive_100x150.jpg")
        var statistics = DecodingStatistics()
        _ = try PosterDecoder().decode(progressive, statistics: &statistics)
        // 100x150 4:2:0: Y 13x19 blocks, Cb and Cr 7x10 blocks (each rounded up to whole iMCU rows), 128 bytes each.
        #expect(statistics.peakWorkingMemory >= (13 * 19 + 2 * 7 * 10) * 128)
        #expect(statistics.peakWorkingMemory < 64 << 10)

        let small = PosterDecoder(limits: DecodingLimits(maxWorkingMemory: 16 << 10))
        let refusal = workingMemoryLimit(decodingError(progressive, small))
        #expect(refusal?.format == .jpeg && refusal?.limit == 16 << 10)
        let baseline = try Fixtures.imageBytes("jpeg_rgb420_120x180.jpg")
        #expect(try small.decode(baseline) == (try PosterDecoder().decode(baseline)))
    }

    /// Shapes inside the pixel limit that no poster has: refused from the header, before any pixel memory.
    @Test(arguments: [
        (20_000_000, 1, "side"),  // one row of 20 M 16-bit RGBA pixels: 160 MB row buffers, twice, in libpng
        (1, 20_000, "side"),
        (15, 16_000, "aspectRatio"),  // 224 x 238,933 after the shortest-edge resize
        (16_384, 511, "aspectRatio"),
    ])
    func extremeShapesAreRefusedFromTheHeader(width: Int, height: Int, violation: String) throws {
        // The IDAT holds one byte of garbage: the header alone must decide.
        let file = HostilePNG.signature + HostilePNG.ihdr(width: width, height: height, depth: 16, colorType: 6)
            + HostilePNG.chunk("IDAT", [0]) + HostilePNG.chunk("IEND", [])
        #expect(width * height <= PosterDecoder.defaultMaxPixels)
        do {
            _ = try PosterDecoder().decode(file)
            Issue.record("\(width)x\(height) was decoded")
        } catch {
            switch (error, violation) {
            case (.limitExceeded(.png, .side(width, height, DecodingLimits.defaultMaxSide)), "side"),
                 (.limitExceeded(.png, .aspectRatio(width, height, DecodingLimits.defaultMaxAspectRatio)), "aspectRatio"):
                break
            default:
                Issue.record("\(width)x\(height): unexpected \(error)")
            }
        }
        #expect(throws: ImageDecodingError.self) { try PosterDecoder().dimensions(of: file) }
    }

    @Test func shapesAtTheLimitsAreAccepted() {
        let limits = DecodingLimits()
        #expect(limits.shapeViolation(width: 16_384, height: 512) == nil)
        #expect(limits.shapeViolation(width: 30, height: 1) == nil)  // the 30x1 fixture
        #expect(limits.shapeViolation(width: 2_000, height: 3_000) == nil)
        #expect(limits.shapeViolation(width: 33, height: 1) != nil)
        #expect(limits.shapeViolation(width: 16_385, height: 16_000) != nil)
    }

    /// An animated WebP whose 4000x4000 canvas holds 300 tiny frames: WebPAnimDecoder allocated two RGBA canvases
    /// (128 MB) before decoding anything. Only the first frame is decoded, straight into the output, as Pillow
    /// shows it (zero canvas, frame at its offset).
    @Test func animatedWebPDecodesOnlyTheFirstFrameWithoutCanvases() throws {
        let side = 4000, frameSize = 16, offset = 100
        let file = HostileWebP.animated(canvasWidth: side, canvasHeight: side, frames: 300, frameSize: frameSize,
                                        offset: offset)
        #expect(file.count < 20_000)
        var statistics = DecodingStatistics()
        let decoder = PosterDecoder(limits: DecodingLimits(maxWorkingMemory: 2 << 20))
        let image = try decoder.decode(file, statistics: &statistics)
        #expect(image.width == side && image.height == side)
        #expect(statistics.peakWorkingMemory < 2 << 20)
        var expected = [UInt8](repeating: 0, count: side * side * 3)
        for y in offset..<(offset + frameSize) {
            for x in offset..<(offset + frameSize) {
                expected.replaceSubrange(((y * side + x) * 3)..<((y * side + x) * 3 + 3), with: [200, 40, 90])
            }
        }
        let same = image.pixels == expected  // a Bool, so a failure does not print 48 MB of pixels
        #expect(same, "not the first frame on a zero canvas")
    }

    /// A first frame that needs more than the budget is refused before libwebp decodes it.
    @Test func webPFrameBeyondTheBudgetIsRefused() throws {
        let file = HostileWebP.animated(canvasWidth: 3000, canvasHeight: 3000, frames: 2, frameSize: 3000, offset: 0)
        let refusal = workingMemoryLimit(decodingError(file, PosterDecoder(limits: DecodingLimits(maxWorkingMemory: 8 << 20))))
        #expect(refusal?.format == .webp && refusal?.limit == 8 << 20)
        let image = try PosterDecoder().decode(file)
        #expect(image[1500, 1500] == (200, 40, 90))
    }
}

/// The error decoding `bytes` throws, or nil (without printing the image when it decodes).
private func decodingError(_ bytes: [UInt8], _ decoder: PosterDecoder = PosterDecoder(),
                           statistics: inout DecodingStatistics) -> ImageDecodingError? {
    do {
        _ = try decoder.decode(bytes, statistics: &statistics)
        return nil
    } catch {
        return error
    }
}

private func decodingError(_ bytes: [UInt8], _ decoder: PosterDecoder = PosterDecoder()) -> ImageDecodingError? {
    var statistics = DecodingStatistics()
    return decodingError(bytes, decoder, statistics: &statistics)
}

/// The format and byte limit of a working-memory refusal, or nil for any other outcome.
private func workingMemoryLimit(_ error: ImageDecodingError?) -> (format: ImageFormat, limit: Int)? {
    guard case .limitExceeded(let format, .workingMemory(let limit, _))? = error else { return nil }
    return (format, limit)
}
