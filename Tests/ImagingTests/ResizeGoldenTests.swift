import Foundation
import Imaging
import Testing
import TensorFiles

// Goldens: Tests/Fixtures/resize/resize.npz, written by tools/reference/ref_resize.py: Pillow 13's
// `Image.resize((w, h), resample=F)` of decoded fixture images for every filter, keys `<src>__<filter>__<w>x<h>`.
// The sources are the decoded.npz arrays of the same files.

/// One golden: source file, filter and target size parsed from its key.
struct ResizeGoldenCase: Sendable, CustomStringConvertible {
    let key: String
    let source: String
    let filter: ResampleFilter
    let width: Int
    let height: Int
    var description: String { key }

    /// Parses `<src>__<filter>__<w>x<h>`; nil when the key does not have that form.
    init?(key: String) {
        let parts = key.components(separatedBy: "__")
        guard parts.count == 3, let filter = ResampleFilter(interpolationName: parts[1]) else { return nil }
        let size = parts[2].split(separator: "x")
        guard size.count == 2, let width = Int(size[0]), let height = Int(size[1]), width > 0, height > 0 else { return nil }
        self.key = key
        source = parts[0]
        self.filter = filter
        self.width = width
        self.height = height
    }
}

/// The golden keys (empty if the file is missing, which the coverage test reports).
private let resizeGoldenKeys: [String] = (try? Fixtures.npz("resize/resize.npz").names.sorted()) ?? []

@Suite("Resize against Pillow 13, every filter")
struct ResizeGoldenTests {
    @Test("the golden file covers every filter, pass order and size class")
    func goldenCoverage() throws {
        let cases = resizeGoldenKeys.compactMap(ResizeGoldenCase.init(key:))
        #expect(cases.count == resizeGoldenKeys.count, "keys not of the form <src>__<filter>__<w>x<h>")
        let decoded = try Fixtures.decoded()
        for filter in ResampleFilter.allCases {
            let forFilter = cases.filter { $0.filter == filter }
            #expect(forFilter.count >= 20, "\(filter): only \(forFilter.count) goldens")
            var upscale = false, downscale = false, oneAxis = false, verticalFirst = false, degenerate = false
            for c in forFilter {
                let source = try #require(decoded[c.source]).rgbImage()
                let widthLoss = source.width - c.width, heightLoss = source.height - c.height
                upscale = upscale || (widthLoss < 0 && heightLoss < 0)
                downscale = downscale || (widthLoss > 0 && heightLoss > 0)
                oneAxis = oneAxis || (widthLoss == 0) != (heightLoss == 0)
                verticalFirst = verticalFirst || (widthLoss != 0 && heightLoss > 0 && heightLoss > 2 * widthLoss)
                degenerate = degenerate || c.width == 1 || c.height == 1
            }
            #expect(upscale && downscale && oneAxis && verticalFirst && degenerate, "\(filter): size classes missing")
        }
    }

    @Test("resized(width:height:filter:) equals Pillow's Image.resize byte for byte", arguments: ResampleFilter.allCases)
    func matchesPillow(filter: ResampleFilter) throws {
        let archive = try Fixtures.npz("resize/resize.npz")
        let decoded = try Fixtures.decoded()
        var checked = 0, mismatched: [String] = []
        for key in resizeGoldenKeys {
            guard let c = ResizeGoldenCase(key: key), c.filter == filter else { continue }
            let source = try #require(decoded[c.source], "no decoded source \(c.source)").rgbImage()
            let reference = try archive.array(key).rgbImage()
            #expect(reference.width == c.width && reference.height == c.height, "\(key): golden is \(reference.width)x\(reference.height)")
            let ours = source.resized(width: c.width, height: c.height, filter: filter)
            if ours != reference {
                var worst = 0, differing = 0
                if ours.pixels.count == reference.pixels.count {
                    for (a, b) in zip(ours.pixels, reference.pixels) where a != b {
                        differing += 1
                        worst = max(worst, abs(Int(a) - Int(b)))
                    }
                }
                mismatched.append("\(c.source) \(source.width)x\(source.height) -> \(c.width)x\(c.height)")
                Issue.record("\(key): \(differing) of \(reference.pixels.count) samples differ, max |swift - pillow| = \(worst)")
            }
            checked += 1
        }
        #expect(checked >= 20, "\(filter): only \(checked) goldens")
        #expect(mismatched.isEmpty, "\(filter) mismatches: \(mismatched.joined(separator: ", "))")
    }
}
