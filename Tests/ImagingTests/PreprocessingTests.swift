import Foundation
import Imaging
import Testing
import TensorFiles

// Goldens: Tests/Fixtures/preprocess/{clip,resnet50,vgg16}.npz and decoded.npz, written by
// tools/reference/ref_preprocess.py (transformers CLIPImageProcessorPil / ConvNextImageProcessorPil, timm eval
// transform). Inputs are the Pillow-decoded RGB arrays, so these tests do not depend on the decoder.

/// The three reference processors and the checkpoint directory holding each one's config.
let preprocessingModels = ["clip", "resnet50", "vgg16"]

@Suite struct PreprocessingGoldenTests {
    @Test(arguments: preprocessingModels)
    func resizedAndTensorMatchReference(model: String) throws {
        let preprocessor = try ImagePreprocessor.load(modelDirectory: Fixtures.checkpoint(model))
        let decoded = try Fixtures.decoded()
        let golden = try Fixtures.npz("preprocess/\(model).npz")

        var resizedChecked = 0, tensorsChecked = 0
        var maxDifference: Float = 0
        for key in golden.names.sorted() {
            guard let split = key.range(of: "__", options: .backwards) else { continue }
            let file = String(key[..<split.lowerBound]), kind = String(key[split.upperBound...])
            let input = try #require(decoded[file], "no decoded input for \(file)")
            let image = try input.rgbImage()
            let expected = try golden.array(key)
            switch kind {
            case "resized":
                let resized = try preprocessor.resize(image)
                let reference = try expected.rgbImage()
                #expect(resized.width == reference.width && resized.height == reference.height,
                        "\(model) \(file): resized to \(resized.width)x\(resized.height), reference \(reference.width)x\(reference.height)")
                #expect(resized.pixels == reference.pixels, "\(model) \(file): resized bytes differ from Pillow")
                resizedChecked += 1
            case "tensor":
                let tensor = try preprocessor.tensor(for: image)
                #expect(tensor.shape == expected.shape, "\(model) \(file): shape \(tensor.shape) vs \(expected.shape)")
                let reference = try expected.float32Values()
                guard tensor.values.count == reference.count else { continue }
                var difference: Float = 0
                for (a, b) in zip(tensor.values, reference) { difference = max(difference, abs(a - b)) }
                #expect(difference <= 1e-6, "\(model) \(file): max |difference| \(difference)")
                maxDifference = max(maxDifference, difference)
                tensorsChecked += 1
            default:
                continue
            }
        }
        print("\(model): \(resizedChecked) resized images exact, \(tensorsChecked) tensors, max |difference| \(maxDifference)")
        #expect(resizedChecked > 0 && tensorsChecked > 0, "\(model): the golden file holds no arrays")
    }

    /// Every ok image goes through every pipeline without error and gives a [3, 224, 224] tensor; the uint8
    /// image after resize+crop equals the crop of the resized image taken at the reference offsets.
    @Test(arguments: preprocessingModels)
    func everyDecodedImageGivesModelInput(model: String) throws {
        let preprocessor = try ImagePreprocessor.load(modelDirectory: Fixtures.checkpoint(model))
        let decoded = try Fixtures.decoded()
        #expect(decoded.count > 10)
        for (file, array) in decoded {
            let tensor = try preprocessor.tensor(for: array.rgbImage())
            #expect(tensor.shape == [3, 224, 224], "\(model) \(file)")
            #expect(tensor.values.allSatisfy { $0.isFinite }, "\(model) \(file)")
        }
    }

    @Test func batchStacksTensors() throws {
        let preprocessor = try ImagePreprocessor.load(modelDirectory: Fixtures.checkpoint("clip"))
        let decoded = try Fixtures.decoded()
        let names = decoded.keys.sorted().prefix(3)
        let images = try names.map { try decoded[$0]!.rgbImage() }
        let batch = try preprocessor.batch(images)
        #expect(batch.shape == [3, 3, 224, 224])
        let singles = try images.flatMap { try preprocessor.tensor(for: $0).values }
        #expect(batch.values == singles)
        let empty = try preprocessor.batch([])
        #expect(empty.values.isEmpty && empty.shape.first == 0)
    }
}

@Suite struct PreprocessingConfigTests {
    private func transformers(_ json: String) throws -> PreprocessingConfig {
        try PreprocessingConfig.fromTransformers(json: Data(json.utf8))
    }

    private func timm(_ json: String) throws -> PreprocessingConfig {
        try PreprocessingConfig.fromTimm(json: Data(json.utf8))
    }

    @Test func loadsEachFixtureCheckpointKind() throws {
        let clip = try PreprocessingConfig.load(modelDirectory: Fixtures.checkpoint("clip"))
        #expect(clip.filter == .bicubic)
        #expect(clip.centerCrops.map(\.rounding) == [.transformers])
        let resnet = try PreprocessingConfig.load(modelDirectory: Fixtures.checkpoint("resnet50"))
        #expect(resnet.filter == .bicubic)
        #expect(resnet.centerCrops.map(\.rounding) == [.transformers])
        let vgg = try PreprocessingConfig.load(modelDirectory: Fixtures.checkpoint("vgg16"))
        #expect(vgg.filter == .bilinear)
        #expect(vgg.centerCrops.map(\.rounding) == [.torchvision])
        #expect(vgg.rescale == .divideBy255InFloat32)
    }

    @Test func sizeForms() throws {
        // An int size is a shortest edge (default_to_square is False for both classes); a dict is taken as is.
        let a = try transformers(#"{"image_processor_type": "CLIPImageProcessor", "size": 300}"#)
        let b = try transformers(#"{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 300}}"#)
        #expect(a == b)
        #expect(a.resize == .shortestEdge(300))
        let c = try transformers(#"{"image_processor_type": "CLIPImageProcessor", "size": {"height": 10, "width": 20}, "crop_size": [5, 6]}"#)
        #expect(c.resize == .exact(width: 20, height: 10))
        #expect(c.centerCrops == [.init(width: 6, height: 5, rounding: .transformers)])
        // null means "class default", as in transformers.
        let d = try transformers(#"{"image_processor_type": "CLIPImageProcessor", "size": null, "resample": null}"#)
        #expect(d == (try transformers(#"{"image_processor_type": "CLIPImageProcessor"}"#)))
    }

    @Test func convNextBranches() throws {
        // Below 384: shortest edge int(size / crop_pct), then a square crop; from 384: warp, no crop.
        let small = try transformers(#"{"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 224}, "crop_pct": 0.5}"#)
        #expect(small.resize == .shortestEdge(448))
        #expect(small.centerCrops == [.init(width: 224, height: 224, rounding: .transformers)])
        let large = try transformers(#"{"feature_extractor_type": "ConvNextFeatureExtractor", "size": 384}"#)
        #expect(large.resize == .exact(width: 384, height: 384))
        #expect(large.centerCrops.isEmpty)
        let image = RGBImage(width: 30, height: 50, pixels: [UInt8](repeating: 7, count: 30 * 50 * 3))
        let tensor = try ImagePreprocessor(config: large).tensor(for: image)
        #expect(tensor.shape == [3, 384, 384])
        #expect(throws: PreprocessingError.self) {
            try transformers(#"{"image_processor_type": "ConvNextImageProcessor", "size": {"height": 5, "width": 5}}"#)
        }
    }

    @Test func timmModes() throws {
        let squash = try timm(#"{"pretrained_cfg": {"input_size": [3, 100, 200], "crop_pct": 1.0, "crop_mode": "squash"}}"#)
        #expect(squash.resize == .exact(width: 200, height: 100))
        #expect(squash.filter == .bicubic)  // timm's default interpolation
        #expect(throws: PreprocessingError.unsupported("timm crop_mode border")) {
            try timm(#"{"pretrained_cfg": {"crop_mode": "border"}}"#)
        }
        #expect(throws: PreprocessingError.self) {
            try timm(#"{"pretrained_cfg": {"input_size": [3, 224, 288]}}"#)
        }
    }

    @Test(arguments: [
        "",
        "not json",
        "[1, 2]",
        #"{"size": 224}"#,
        #"{"image_processor_type": "ViTImageProcessor"}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "size": "big"}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "size": 0}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "size": 1e12}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "size": 22.5}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "size": {"longest_edge": 5}}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "resample": 9}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "do_resize": "yes"}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "image_mean": [0.5, 0.5]}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "image_std": [0.5, 0, 0.5]}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "crop_size": {"shortest_edge": 3}}"#,
        #"{"image_processor_type": "ConvNextImageProcessor", "size": 224, "crop_pct": -1}"#,
        #"{"image_processor_type": "ConvNextImageProcessor", "size": 224, "crop_pct": 0.00001}"#,
        #"{"image_processor_type": "ConvNextImageProcessor", "do_center_crop": true}"#,
    ])
    func badTransformersConfigsThrow(json: String) {
        #expect(throws: PreprocessingError.self) { try transformers(json) }
    }

    @Test(arguments: [
        #"{"pretrained_cfg": 3}"#,
        #"{"pretrained_cfg": {"input_size": [3, 224]}}"#,
        #"{"pretrained_cfg": {"input_size": [1, 224, 224]}}"#,
        #"{"pretrained_cfg": {"input_size": [3, -4, 224]}}"#,
        #"{"pretrained_cfg": {"interpolation": "cubic-ish"}}"#,
        #"{"pretrained_cfg": {"mean": [0.1, "x", 0.2]}}"#,
        #"{"pretrained_cfg": {"std": [1, 1]}}"#,
        #"{"pretrained_cfg": {"crop_pct": "high"}}"#,
    ])
    func badTimmConfigsThrow(json: String) {
        #expect(throws: PreprocessingError.self) { try timm(json) }
    }

    @Test func missingConfigAndEmptyImageAreErrors() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("postersim-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: PreprocessingError.configNotFound(directory: empty.path)) {
            try ImagePreprocessor.load(modelDirectory: empty)
        }
        let preprocessor = try ImagePreprocessor.load(modelDirectory: Fixtures.checkpoint("vgg16"))
        #expect(throws: PreprocessingError.emptyImage(width: 0, height: 5)) {
            try preprocessor.tensor(for: RGBImage(width: 0, height: 5, pixels: []))
        }
        // A 1 x 100000 strip would need a 224 x 22.4M intermediate: refused, not allocated.
        let strip = RGBImage(width: 1, height: 100_000, pixels: [UInt8](repeating: 0, count: 300_000))
        #expect(throws: PreprocessingError.self) { try preprocessor.resize(strip) }
    }
}
