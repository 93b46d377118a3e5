import Imaging
import Testing
import TestSupport

// Resizing only the pixels a centre crop keeps (issue 13: a 15 x 40,000 strip resized by its shortest edge used to
// build a 224 x 597,333 image, 400 MB, before keeping 224 x 224 of it). The region must be the same bytes as
// cropping the full resize, for every filter and both pass orders.

@Suite struct CropRegionTests {
    private static func noise(width: Int, height: Int, seed: UInt64) -> RGBImage {
        var rng = SplitMix64(seed: seed)
        return RGBImage(width: width, height: height,
                        pixels: (0..<(width * height * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
    }

    /// (source size, target size): upscales, downscales, strips both ways, and the vertical-first order (height
    /// shrinking by more than twice the width).
    static let shapes: [((Int, Int), (Int, Int))] = [
        ((15, 600), (224, 8960)), ((600, 15), (8960, 224)), ((300, 900), (280, 120)), ((97, 61), (224, 224)),
        ((320, 240), (298, 224)), ((30, 1), (6720, 224)), ((50, 80), (50, 33)), ((50, 80), (21, 80)),
    ]

    @Test(arguments: ResampleFilter.allCases)
    func regionEqualsCropOfTheFullResize(filter: ResampleFilter) {
        for (index, (source, target)) in Self.shapes.enumerated() {
            let image = Self.noise(width: source.0, height: source.1, seed: UInt64(index))
            let full = image.resized(width: target.0, height: target.1, filter: filter)
            let (w, h) = target
            let regions: [(Range<Int>, Range<Int>)] = [
                (0..<w, 0..<h), ((w - min(w, 224)) / 2..<((w + min(w, 224)) / 2), (h - min(h, 224)) / 2..<((h + min(h, 224)) / 2)),
                (0..<1, (h - 1)..<h), ((w - 1)..<w, 0..<min(h, 3)), (w / 3..<w / 2 + 1, h / 5..<h / 4 + 1),
            ]
            for (columns, rows) in regions {
                let region = image.resized(width: w, height: h, filter: filter, columns: columns, rows: rows)
                let expected = full.cropped(x: columns.lowerBound, y: rows.lowerBound, width: columns.count,
                                            height: rows.count)
                let same = region == expected  // a Bool, so a failure does not print megabytes of pixels
                #expect(same, "\(filter) \(source) -> \(target), columns \(columns), rows \(rows)")
            }
        }
    }

    /// `resizeAndCrop` (region) against the composition it replaces, `resize` then every centre crop, for the three
    /// fixture checkpoints and configs whose crop pads or follows an exact resize.
    @Test func resizeAndCropEqualsResizeThenCrop() throws {
        var preprocessors = try preprocessingModels.map { try ImagePreprocessor.load(modelDirectory: Fixtures.checkpoint($0)) }
        for (resize, crop, rounding) in [
            (PreprocessingConfig.Resize.exact(width: 100, height: 50), (120, 40), PreprocessingConfig.CropRounding.torchvision),
            (.exact(width: 100, height: 50), (99, 61), .transformers), (.shortestEdge(64), (80, 80), .torchvision),
        ] {
            preprocessors.append(ImagePreprocessor(config: PreprocessingConfig(
                processorName: "test", resize: resize, filter: .bilinear,
                centerCrops: [.init(width: crop.0, height: crop.1, rounding: rounding)], rescale: .none, mean: nil, std: nil)))
        }
        for (index, (source, _)) in Self.shapes.enumerated() {
            let image = Self.noise(width: source.0, height: source.1, seed: 100 + UInt64(index))
            for preprocessor in preprocessors {
                var expected = try preprocessor.resize(image)
                for crop in preprocessor.config.centerCrops {
                    let x: Int, y: Int
                    switch crop.rounding {
                    case .transformers:
                        x = Int((Double(expected.width - crop.width) / 2).rounded(.down))
                        y = Int((Double(expected.height - crop.height) / 2).rounded(.down))
                    case .torchvision:
                        // torchvision pads (crop - size) // 2 before when the crop is larger, else rounds half to even.
                        func offset(_ size: Int, _ c: Int) -> Int {
                            if c > size { return -((c - size) / 2) }
                            return Int((Double(size - c) / 2).rounded(.toNearestOrEven))
                        }
                        x = offset(expected.width, crop.width)
                        y = offset(expected.height, crop.height)
                    }
                    expected = expected.cropped(x: x, y: y, width: crop.width, height: crop.height)
                }
                let ours = try preprocessor.resizeAndCrop(image)
                let same = ours == expected
                #expect(same, "\(preprocessor.config.processorName) \(source)")
            }
        }
    }

    /// The strip of the issue: 15 x 40,000 (600 k pixels) resized by its shortest edge is 224 x 597,333 (400 MB; 256 x
    /// 682,666 for ResNet-50 and VGG16, which `resize` refuses to build); the tensor is made from the crop alone.
    @Test(arguments: preprocessingModels)
    func extremeStripCostsOnlyItsCrop(model: String) throws {
        let preprocessor = try ImagePreprocessor.load(modelDirectory: Fixtures.checkpoint(model))
        let strip = Self.noise(width: 15, height: 40_000, seed: 7)
        let size = try preprocessor.resizedSize(width: 15, height: 30_000)  // under resize's cap for all three
        #expect(size.width * size.height > 100_000_000)
        let tensor = try preprocessor.tensor(for: strip)
        #expect(tensor.shape == [3, 224, 224])
        #expect(tensor.values.allSatisfy { $0.isFinite })
    }
}
