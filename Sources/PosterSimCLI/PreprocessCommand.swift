// `postersim preprocess`: decode a poster and write the exact input tensor a model sees, as NumPy .npy, so anyone
// can compare it with the Python reference.
import CommandSupport
import PosterSimCore
import ArgumentParser
import Foundation
import Imaging
import ModelHub
import TensorFiles

struct PreprocessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preprocess",
        abstract: "Write the input tensor a model sees for an image, as a NumPy .npy file.",
        discussion: """
            Decodes IMAGE (JPEG, PNG or WebP, recognised by its bytes) to RGB exactly as Pillow's \
            Image.open(f).convert("RGB") does, then applies the model's own preprocessing as read from its \
            files (preprocessor_config.json for CLIP and ResNet-50, the timm pretrained_cfg in config.json for \
            VGG16): resize with Pillow's arithmetic, center crop, rescale, normalize. The result is a float32 \
            array of shape [1, 3, H, W] (or [3, H, W] with --no-batch-dim).

            Compare with Python, e.g.:
              np.load("clip.npy") vs CLIPProcessor(images=Image.open(IMAGE))["pixel_values"]
            """)

    @Option(
        help: "Model whose preprocessing to apply: clip, resnet50 or vgg16 (also CLIP, ResNet-50, VGG16).",
        transform: ModelName.parseArgument)
    var model: ModelName

    @Argument(help: "The image file.")
    var image: String

    @Option(help: "Where to write the .npy file.")
    var out: String

    @Flag(inversion: .prefixedNo, help: "Write shape [1, 3, H, W] (a batch of one, as the reference processors return).")
    var batchDim = true

    @Flag(help: "Also print a JSON summary (shape, min, max, mean) on standard output.")
    var json = false

    @OptionGroup var location: ModelLocationOptions

    func run() throws {
        let modelDirectory = try location.locate(model).directory
        let preprocessor = try ImagePreprocessor.load(modelDirectory: modelDirectory)
        let decoded = try PosterDecoder().decode(contentsOf: URL(fileURLWithPath: image))
        let tensor = try preprocessor.tensor(for: decoded)
        let shape = batchDim ? [1] + tensor.shape : tensor.shape
        try NPY.write(floats: tensor.values, shape: shape, to: URL(fileURLWithPath: out))
        if json {
            let values = tensor.values
            let summary = PreprocessSummary(
                file: image, model: model.rawValue, out: out, shape: shape,
                min: values.min() ?? 0, max: values.max() ?? 0,
                mean: values.isEmpty ? 0 : Double(values.reduce(0, +)) / Double(values.count))
            print(try encodeJSON(summary))
        }
    }
}

struct PreprocessSummary: Codable {
    var file: String
    var model: String
    var out: String
    var shape: [Int]
    var min: Float
    var max: Float
    var mean: Double
}
