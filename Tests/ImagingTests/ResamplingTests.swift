import Foundation
import Imaging
import Testing

@Suite struct ResamplingTests {
    /// Every `__resized` golden is Pillow 13's `Image.resize` of the decoded image (bicubic for clip/resnet50,
    /// bilinear for vgg16) to the golden's own size; ours must match byte for byte.
    @Test(arguments: [("clip", ResampleFilter.bicubic), ("resnet50", .bicubic), ("vgg16", .bilinear)])
    func matchesPillowGoldens(model: String, filter: ResampleFilter) throws {
        let decoded = try ResampleFixtures.decoded()
        let golden = try ResampleFixtureArchive(url: ResampleFixtures.root.appendingPathComponent("preprocess/\(model).npz"))
        var checked = 0
        for key in golden.keys.sorted() where key.hasSuffix("__resized") {
            let file = String(key.dropLast("__resized".count))
            let source = try #require(decoded[file]).rgbImage()
            let reference = try golden.array(key).rgbImage()
            let ours = source.resized(width: reference.width, height: reference.height, filter: filter)
            #expect(ours == reference, "\(model) \(file) \(source.width)x\(source.height) -> \(reference.width)x\(reference.height)")
            checked += 1
        }
        #expect(checked > 0)
    }

    @Test func sameSizeIsACopy() {
        let image = Self.pattern(width: 13, height: 7)
        for filter in ResampleFilter.allCases {
            #expect(image.resized(width: 13, height: 7, filter: filter) == image)
        }
    }

    /// Normalised fixed-point weights sum to 1 within rounding, so a flat image stays flat at any scale.
    @Test(arguments: ResampleFilter.allCases)
    func flatImageStaysFlat(filter: ResampleFilter) {
        let flat = RGBImage(width: 37, height: 23, pixels: [UInt8]((0..<(37 * 23)).flatMap { _ in [200, 0, 255] as [UInt8] }))
        for (w, h) in [(1, 1), (5, 90), (300, 4), (37, 11), (74, 23), (224, 336)] {
            let out = flat.resized(width: w, height: h, filter: filter)
            #expect(out.width == w && out.height == h)
            #expect(out.pixels == [UInt8]((0..<(w * h)).flatMap { _ in [200, 0, 255] as [UInt8] }), "\(filter) \(w)x\(h)")
        }
    }

    /// Resizing one axis only runs one pass, so a two-axis resize equals the two single-axis resizes in the order
    /// Pillow 13 picks: vertical first when the height shrinks by more than twice the width's shrink.
    @Test func passOrderMatchesSingleAxisComposition() {
        let image = Self.pattern(width: 40, height: 60)
        for filter in [ResampleFilter.bicubic, .bilinear, .lanczos] {
            // height shrinks a lot, width grows: vertical first
            let verticalFirst = image.resized(width: 40, height: 13, filter: filter).resized(width: 57, height: 13, filter: filter)
            #expect(image.resized(width: 57, height: 13, filter: filter) == verticalFirst)
            // both shrink evenly: horizontal first
            let horizontalFirst = image.resized(width: 20, height: 60, filter: filter).resized(width: 20, height: 30, filter: filter)
            #expect(image.resized(width: 20, height: 30, filter: filter) == horizontalFirst)
        }
    }

    /// Large images take the two-thread path; the result must not depend on it (rows are split, not the sums).
    @Test func parallelPathAgreesWithRowByRowComposition() {
        let image = Self.pattern(width: 600, height: 900)
        let both = image.resized(width: 224, height: 300, filter: .bicubic)
        let stepwise = image.resized(width: 224, height: 900, filter: .bicubic).resized(width: 224, height: 300, filter: .bicubic)
        #expect(both == stepwise)
        // Each output row of a horizontal-only resize depends on its own source row only.
        let strip = RGBImage(width: 600, height: 1, pixels: Array(image.pixels[(500 * 600 * 3)..<(501 * 600 * 3)]))
        let wide = image.resized(width: 224, height: 900, filter: .bicubic)
        #expect(Array(wide.pixels[(500 * 224 * 3)..<(501 * 224 * 3)]) == strip.resized(width: 224, height: 1, filter: .bicubic).pixels)
    }

    @Test func croppingPadsWithBlack() {
        let image = Self.pattern(width: 4, height: 3)
        let inside = image.cropped(x: 1, y: 1, width: 2, height: 2)
        #expect(inside.pixels == Array(image.pixels[15..<21]) + Array(image.pixels[27..<33]))
        let outside = image.cropped(x: -2, y: -1, width: 8, height: 5)
        #expect(outside.width == 8 && outside.height == 5)
        for y in 0..<5 {
            for x in 0..<8 {
                let sx = x - 2, sy = y - 1
                let got = Array(outside.pixels[((y * 8 + x) * 3)..<((y * 8 + x) * 3 + 3)])
                if sx >= 0 && sx < 4 && sy >= 0 && sy < 3 {
                    #expect(got == Array(image.pixels[((sy * 4 + sx) * 3)..<((sy * 4 + sx) * 3 + 3)]))
                } else {
                    #expect(got == [0, 0, 0])
                }
            }
        }
        #expect(image.cropped(x: 10, y: 10, width: 2, height: 2).pixels == [UInt8](repeating: 0, count: 12))
    }

    @Test func filterNumbersArePillows() {
        #expect(ResampleFilter(rawValue: 3) == .bicubic)
        #expect(ResampleFilter(rawValue: 2) == .bilinear)
        #expect(ResampleFilter(interpolationName: "bilinear") == .bilinear)
        #expect(ResampleFilter(interpolationName: "area") == nil)
    }

    /// Deterministic content with edges and texture (so rounding differences would show).
    static func pattern(width: Int, height: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        var state: UInt32 = 12345
        for y in 0..<height {
            for x in 0..<width {
                state = state &* 1_103_515_245 &+ 12345
                let i = (y * width + x) * 3
                pixels[i] = UInt8(truncatingIfNeeded: x * 255 / max(width - 1, 1))
                pixels[i + 1] = (x / 3 + y / 5) % 2 == 0 ? 255 : 0
                pixels[i + 2] = UInt8(truncatingIfNeeded: state >> 24)
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
