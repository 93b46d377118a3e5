import Foundation
import TensorFiles
import Tensors

// VGG16 fc7 features as timm's `vgg16.tv_in1k` and torchvision's `vgg16` compute them (references: timm
// models/vgg.py `VGG.forward_features` + `ConvMlp` as `pre_logits`; torchvision models/vgg.py with
// `classifier[:-1]`): 13 3×3 convs with ReLU, max pool 2×2/2 after conv 2, 4, 7, 10, 13, then fc6 (a 7×7 conv in
// timm = a linear layer on the flattened 7×7 map in torchvision, same weights) + ReLU and fc7 + ReLU.
// Eval mode: dropout is the identity. Channel widths are read from the checkpoint's tensor shapes.

/// VGG16 feature extractor returning fc7 after its ReLU (4096-d for the real weights).
///
/// Guarantees: immutable after load; `embed` is safe to call concurrently; batch results equal one-by-one results.
public final class VGG16Model: Sendable {
    /// Indices of the convolutions inside `features` (`features.N.weight`), and after which of them a pool follows.
    static let convIndices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    static let poolAfter: Set<Int> = [1, 3, 6, 9, 12]

    public enum Layout: Sendable, Equatable {
        /// timm: `pre_logits.fc1` (conv 7×7), `pre_logits.fc2` (conv 1×1).
        case timm
        /// torchvision: `avgpool` to 7×7, `classifier.0` and `classifier.3` (linear).
        case torchvision
    }

    public let layout: Layout
    public let dimension: Int
    let convs: [Conv2d]
    let pool: MaxPool2d
    let fc6: Linear
    let fc7: Linear
    private let workspaces = WorkspacePool()

    public init(checkpoint: some CheckpointReader, imageSize: Int = 224) throws {
        var convs: [Conv2d] = []
        var inChannels = 3
        var size = imageSize
        for (position, index) in VGG16Model.convIndices.enumerated() {
            let name = "features.\(index)"
            guard let info = checkpoint.info("\(name).weight") else { throw CheckpointError.missingTensor("\(name).weight") }
            guard info.shape.count == 4, info.shape[1] == inChannels, info.shape[2] == 3, info.shape[3] == 3 else {
                throw CheckpointError.shapeMismatch(name: "\(name).weight", expected: [info.shape.first ?? 0, inChannels, 3, 3],
                                                    actual: info.shape)
            }
            let out = info.shape[0]
            convs.append(try Conv2d(weight: try checkpoint.values("\(name).weight", shape: info.shape),
                                    weightShape: info.shape, bias: try checkpoint.values("\(name).bias", shape: [out]),
                                    stride: 1, padding: 1, activation: .relu, expectedInput: (size, size)))
            if VGG16Model.poolAfter.contains(position) { size /= 2 }
            inChannels = out
        }
        self.convs = convs
        pool = try MaxPool2d(kernelSize: 2, stride: 2)

        let flattened = inChannels * 7 * 7
        let fc6Name: String, fc7Name: String
        if checkpoint.info("pre_logits.fc1.weight") != nil {
            layout = .timm
            (fc6Name, fc7Name) = ("pre_logits.fc1", "pre_logits.fc2")
        } else if checkpoint.info("classifier.0.weight") != nil {
            layout = .torchvision
            (fc6Name, fc7Name) = ("classifier.0", "classifier.3")
        } else {
            throw CheckpointError.missingTensor("pre_logits.fc1.weight (timm) or classifier.0.weight (torchvision)")
        }
        guard let fc6Shape = checkpoint.info("\(fc6Name).weight")?.shape, let hidden = fc6Shape.first else {
            throw CheckpointError.missingTensor("\(fc6Name).weight")
        }
        let fc6Expected = layout == .timm ? [hidden, inChannels, 7, 7] : [hidden, flattened]
        let fc7Expected = layout == .timm ? [hidden, hidden, 1, 1] : [hidden, hidden]
        fc6 = try Linear(weight: try checkpoint.values("\(fc6Name).weight", shape: fc6Expected), outFeatures: hidden,
                         inFeatures: flattened, bias: try checkpoint.values("\(fc6Name).bias", shape: [hidden]),
                         activation: .relu)
        fc7 = try Linear(weight: try checkpoint.values("\(fc7Name).weight", shape: fc7Expected), outFeatures: hidden,
                         inFeatures: hidden, bias: try checkpoint.values("\(fc7Name).bias", shape: [hidden]),
                         activation: .relu)
        dimension = hidden
    }

    /// Loads a timm checkpoint directory (`model.safetensors` or `pytorch_model.bin`) or a torchvision state dict file.
    public convenience init(path: URL, imageSize: Int = 224) throws {
        var isDirectory: ObjCBool = false
        var weights = path
        if FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory), isDirectory.boolValue {
            let safetensors = path.appendingPathComponent("model.safetensors")
            weights = FileManager.default.fileExists(atPath: safetensors.path)
                ? safetensors : path.appendingPathComponent("pytorch_model.bin")
        }
        try self.init(checkpoint: try openCheckpoint(at: weights), imageSize: imageSize)
    }

    /// fc7 after ReLU for `[N, 3, H, W]` pixels; returns `[N, dimension]`.
    public func callAsFunction(_ pixels: Tensor, workspace: Workspace) throws -> Tensor {
        guard pixels.shape.count == 4, pixels.shape[1] == 3 else {
            throw ModelError.badInput("expected [N, 3, H, W] pixels, got \(pixels.shape)")
        }
        var hidden = pixels
        for (position, conv) in convs.enumerated() {
            hidden = try conv(hidden, workspace: workspace)
            if VGG16Model.poolAfter.contains(position) { hidden = try pool(hidden, workspace: workspace) }
        }
        let (height, width) = (hidden.shape[2], hidden.shape[3])
        switch layout {
        case .torchvision:
            // torchvision always pools adaptively to 7×7 (the identity at 224×224 input).
            hidden = try adaptiveAvgPool2d(hidden, outputSize: (7, 7), workspace: workspace)
        case .timm:
            // timm's ConvMlp pools up to the 7×7 kernel only when the map is smaller; a larger map would make fc6
            // a sliding conv followed by global pooling, which this engine does not implement.
            guard height <= 7, width <= 7 else {
                throw ModelError.badInput("timm VGG16 fc6 on a \(height)×\(width) map (image larger than 224)")
            }
            if height < 7 || width < 7 { hidden = try adaptiveAvgPool2d(hidden, outputSize: (7, 7), workspace: workspace) }
        }
        return try fc7(fc6(hidden, workspace: workspace), workspace: workspace)
    }

    /// Embeds `count` images of 3×H×W stored back to back.
    public func embed(pixels: [Float], count: Int, height: Int, width: Int) throws -> [[Float]] {
        guard count >= 1, height >= 1, width >= 1, pixels.count / count / height / width == 3,
              pixels.count == count * 3 * height * width else {
            throw ModelError.badInput("\(pixels.count) values for \(count) images of 3×\(height)×\(width)")
        }
        let input = try Tensor(shape: [count, 3, height, width], values: pixels)
        let flat = try workspaces.withWorkspace { workspace in try self(input, workspace: workspace).toArray() }
        return (0..<count).map { Array(flat[($0 * dimension)..<(($0 + 1) * dimension)]) }
    }
}
