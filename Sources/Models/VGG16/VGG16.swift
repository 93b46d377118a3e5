import Embedding
import Foundation
import Imaging
import PosterSimCore
import TensorFiles
import Tensors

// VGG16's fc7 after its ReLU, as the reference computes it in eval mode (dropout is the identity):
//
// - timm 1.0.31 timm/models/vgg.py (`timm/vgg16.tv_in1k`): `forward_features` is `self.features` (13 conv 3×3 /
//   padding 1 + ReLU, max pool 2×2/2 after each of the 5 blocks; no adaptive pool after it). `forward_head(x,
//   pre_logits=True)` runs `self.pre_logits`, a `ConvMlp`: if the map is smaller than the 7×7 kernel in either
//   dimension it is first adaptive-average-pooled to (max(7, H), max(7, W)) ("keep the input size >= 7x7"); then
//   fc1 (7×7 conv, no padding) → ReLU → dropout → fc2 (1×1 conv) → ReLU. Then `self.head` (ClassifierHead) with
//   pre_logits=True applies only its global pool (`global_pool`, "avg") and flattens. For a 224×224 input the
//   map is exactly 7×7, so fc1 yields one position and the pool is the identity.
// - torchvision torchvision/models/vgg.py: `features` (same layers, same keys), `avgpool` = AdaptiveAvgPool2d((7, 7)),
//   `torch.flatten(x, 1)` (NCHW order), then `classifier[:-1]` = Linear(C·49 → 4096), ReLU, Dropout,
//   Linear(4096 → 4096), ReLU, Dropout.
//
// How, not what, differs here: a 7×7 conv over a 7×7 map is a linear layer over the NCHW-flattened map, whose
// index c·49 + y·7 + x is exactly the flattened conv weight `[out, c, ky, kx]`; so both layouts share one pair of
// matmuls (`DenseLayer`), and a larger map runs the same matmul on its 7×7 windows (`patches`). Each ReLU is fused
// into the preceding conv or matmul; activations stay in oneDNN's blocked layout through `features`.


/// Reads VGG16 tensors by name, turning missing or misshaped tensors into `ModelError`s that name them.
struct VGGTensorSource: Sendable {
    let reader: any CheckpointReader

    func shape(_ name: String) throws -> [Int] {
        guard let info = reader.info(name) else { throw ModelError.missingTensor(name) }
        return info.shape
    }

    func floats(_ name: String, shape expected: [Int]) throws -> FloatTensor {
        let found = try shape(name)
        guard found == expected else { throw ModelError.wrongShape(name: name, expected: expected, found: found) }
        return try reader.floats(name)
    }
}

/// `features.N` + `features.N+1`: Conv2d(3×3, padding 1) and its ReLU, fused into one oneDNN convolution.
struct VGGConvLayer: Sendable {
    let key: String
    let conv: Conv2d

    /// Output width from the checkpoint's `features.N.weight` shape; the input width must be `inChannels`.
    init(_ source: VGGTensorSource, index: Int, inChannels: Int, expectedInput: Int,
         convolutions: ConvolutionAlgorithm, precision: Precision) throws {
        key = "features.\(index)"
        let weightName = "\(key).weight", biasName = "\(key).bias"
        let found = try source.shape(weightName)
        let outChannels = found.first ?? 0
        let shape = [outChannels, inChannels, 3, 3]
        guard found.count == 4, outChannels >= 1 else {
            throw ModelError.wrongShape(name: weightName, expected: [max(outChannels, 1), inChannels, 3, 3], found: found)
        }
        let weight = try source.floats(weightName, shape: shape).values
        let bias = try source.floats(biasName, shape: [outChannels]).values
        // Another input size may need the weights again (Winograd layouts are made per map size): re-read them.
        conv = try Conv2d(weight: weight, weightShape: shape, bias: bias, stride: 1, padding: 1, activation: .relu,
                          expectedInput: (expectedInput, expectedInput), algorithm: convolutions,
                          weightSource: { try source.floats(weightName, shape: shape).values }, precision: precision)
    }
}

/// `features`: VGG16's 13 conv layers (configuration "D") in 5 blocks, each block closed by MaxPool2d(2, 2).
/// The module indices are those of `nn.Sequential` in both timm and torchvision (conv, ReLU, …, pool).
struct VGGFeatures: Sendable {
    enum Step: Sendable {
        case conv(VGGConvLayer)
        /// An int8 layer (`--precision int8`): u8 in, u8 out, see `VGG16+Int8.swift`.
        case quantized(QuantizedConv2d)
        case pool(MaxPool2d)
    }

    /// Conv layers per block in VGG16.
    static let blockDepths = [2, 2, 3, 3, 3]

    let steps: [Step]
    let inChannels: Int
    let outChannels: Int
    /// Output width of each conv layer, in order, as read from the checkpoint.
    let widths: [Int]
    /// For int8 layers, the scale of the final map's u8 values (value / scale is the float activation); nil when
    /// the last layer computes in float.
    let outputScale: Float?

    init(steps: [Step], inChannels: Int, widths: [Int], outputScale: Float?) {
        self.steps = steps
        self.inChannels = inChannels
        self.outChannels = widths.last ?? inChannels
        self.widths = widths
        self.outputScale = outputScale
    }

    init(_ source: VGGTensorSource, expectedInput: Int = 224, convolutions: ConvolutionAlgorithm,
         precision: Precision) throws {
        let first = try source.shape("features.0.weight")
        guard first.count == 4, first[1] >= 1 else {
            throw ModelError.wrongShape(name: "features.0.weight", expected: [first.first ?? 1, 3, 3, 3], found: first)
        }
        inChannels = first[1]
        var steps: [Step] = []
        var widths: [Int] = []
        var index = 0, channels = inChannels, size = expectedInput
        for depth in VGGFeatures.blockDepths {
            for _ in 0..<depth {
                let layer = try VGGConvLayer(source, index: index, inChannels: channels, expectedInput: max(size, 1),
                                             convolutions: convolutions, precision: precision)
                steps.append(.conv(layer))
                channels = layer.conv.outChannels
                widths.append(channels)
                index += 2 // conv, ReLU
            }
            steps.append(.pool(try MaxPool2d(kernelSize: 2, stride: 2)))
            index += 1
            size /= 2
        }
        self.steps = steps
        self.widths = widths
        outChannels = channels
        outputScale = nil
    }

    /// Spatial size of the final map for an `height`×`width` input (floor division by 2 per pool).
    static func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        (height >> blockDepths.count, width >> blockDepths.count)
    }
}

/// Two fully-connected layers with ReLU (fc6 and fc7), shared by both heads below.
struct VGGFullyConnected: Sendable {
    let fc6: DenseLayer
    let fc7: DenseLayer

    /// - Parameters: names and shapes as stored (conv `[out, in, kh, kw]` or linear `[out, in]`), read as
    ///   `[out, in·kh·kw]` matrices.
    /// At bf16 both layers hold bfloat16 weights (packed: float32 memory cannot be read in place as bf16). At int8
    /// fc6 holds s8 weights and quantises its input with `int8InputScale` (the convolutions' output scale, so the
    /// u8 map is read back exactly), and fc7, whose output is the vector, stays float32.
    init(_ source: VGGTensorSource, fc6 name6: String, inFeatures: Int, fc7 name7: String,
         storage: VGG16.HeadWeights, precision: Precision, int8InputScale: Float? = nil) throws {
        fc6 = try VGGFullyConnected.dense(source, name6, inFeatures: inFeatures, storage: storage, precision: precision,
                                          inputScale: int8InputScale)
        // fc6's float32 rows (411 MB for the real network) were read once to quantise them: let their pages go now
        // rather than at the end of loading, so they are not resident next to the s8 copies (the load's peak).
        if precision == .int8 { source.reader.dropResidentPages() }
        fc7 = try VGGFullyConnected.dense(source, name7, inFeatures: fc6.outFeatures, storage: storage,
                                          precision: precision == .int8 ? .fp32 : precision)
    }

    private static func dense(_ source: VGGTensorSource, _ key: String, inFeatures: Int,
                              storage: VGG16.HeadWeights, precision: Precision,
                              inputScale: Float? = nil) throws -> DenseLayer {
        let weightName = "\(key).weight"
        let found = try source.shape(weightName)
        // The caller already checked rank and trailing dims through `inFeatures` when the stored shape is 4-D.
        let out = found.first ?? 0
        let stored = found.dropFirst().reduce(1, *)
        guard out >= 1, found.count >= 2, stored == inFeatures else {
            throw ModelError.wrongShape(name: weightName, expected: [max(out, 1), inFeatures], found: found)
        }
        let weight = try source.floats(weightName, shape: found)
        let bias = try source.floats("\(key).bias", shape: [out]).values
        // In place only when the values are a zero-copy view of the mapped file (the view keeps it mapped).
        let mode: DenseWeightStorage = storage == .mapped && weight.isView
            ? .borrowed(owner: weight) : .packed(expectedRows: 8)
        return try weight.withUnsafeBufferPointer { values in
            try DenseLayer(weights: values, outFeatures: out, inFeatures: inFeatures, bias: bias, activation: .relu,
                           storage: mode, precision: precision, inputScale: inputScale)
        }
    }
}

/// timm `pre_logits` (`ConvMlp`: fc1 k×k conv, ReLU, dropout, fc2 1×1 conv, ReLU) followed by the
/// `ClassifierHead` global pool that `forward_head(pre_logits=True)` applies.
struct VGGConvMlp: Sendable {
    let layers: VGGFullyConnected
    /// fc1's kernel size, also the minimum map size ConvMlp pools up to.
    let kernel: Int
    let pooling: RowPooling

    init(_ source: VGGTensorSource, inChannels: Int, globalPool: String?, storage: VGG16.HeadWeights,
         precision: Precision, int8InputScale: Float? = nil) throws {
        let fc1 = try source.shape("pre_logits.fc1.weight")
        // timm's VGG builds `ConvMlp(prev_chs, 4096, 7, ...)`: the kernel is 7 whatever the widths.
        kernel = 7
        guard fc1.count == 4, fc1[0] >= 1, fc1[1] == inChannels, fc1[2] == kernel, fc1[3] == kernel else {
            throw ModelError.wrongShape(name: "pre_logits.fc1.weight", expected: [max(fc1.first ?? 1, 1), inChannels, 7, 7],
                                        found: fc1)
        }
        let fc2 = try source.shape("pre_logits.fc2.weight")
        guard fc2.count == 4, fc2[0] >= 1, fc2[1] == fc1[0], fc2[2] == 1, fc2[3] == 1 else {
            throw ModelError.wrongShape(name: "pre_logits.fc2.weight", expected: [max(fc2.first ?? 1, 1), fc1[0], 1, 1],
                                        found: fc2)
        }
        switch globalPool ?? "avg" {
        case "avg": pooling = .average
        case "max": pooling = .maximum
        case let other: throw ModelError.unsupportedConfig("global_pool \"\(other)\" (only avg and max are implemented)")
        }
        layers = try VGGFullyConnected(source, fc6: "pre_logits.fc1", inFeatures: inChannels * kernel * kernel,
                                       fc7: "pre_logits.fc2", storage: storage, precision: precision,
                                       int8InputScale: int8InputScale)
    }

    func callAsFunction(_ map: Tensor, relay: inout WorkspaceRelay) throws -> Tensor {
        var x = map
        let (h, w) = (map.shape[2], map.shape[3])
        if h < kernel || w < kernel {
            let size = (height: max(kernel, h), width: max(kernel, w))
            x = try relay.run(x) { ws in try adaptiveAvgPool2d(x, outputSize: size, workspace: ws) }
        }
        let positions = (x.shape[2] - kernel + 1) * (x.shape[3] - kernel + 1)
        let rows = try relay.run(x) { ws in try patches(x, kernel: kernel, workspace: ws) }
        let fc6 = try relay.run(rows) { ws in try layers.fc6(rows, workspace: ws) }
        let fc7 = try relay.run(fc6) { ws in try layers.fc7(fc6, workspace: ws) }
        return try relay.run(fc7) { ws in try poolRows(fc7, group: positions, pooling, workspace: ws) }
    }
}

/// torchvision `avgpool` (AdaptiveAvgPool2d((7, 7))), `flatten(1)` and `classifier[:-1]` (`classifier.0`,
/// ReLU, Dropout, `classifier.3`, ReLU, Dropout).
struct VGGClassifier: Sendable {
    static let poolSize = 7
    let layers: VGGFullyConnected

    init(_ source: VGGTensorSource, inChannels: Int, storage: VGG16.HeadWeights, precision: Precision,
         int8InputScale: Float? = nil) throws {
        let area = VGGClassifier.poolSize * VGGClassifier.poolSize
        let fc6 = try source.shape("classifier.0.weight")
        guard fc6.count == 2, fc6[0] >= 1, fc6[1] == inChannels * area else {
            throw ModelError.wrongShape(name: "classifier.0.weight", expected: [max(fc6.first ?? 1, 1), inChannels * area],
                                        found: fc6)
        }
        let fc7 = try source.shape("classifier.3.weight")
        guard fc7.count == 2, fc7[0] >= 1, fc7[1] == fc6[0] else {
            throw ModelError.wrongShape(name: "classifier.3.weight", expected: [max(fc7.first ?? 1, 1), fc6[0]], found: fc7)
        }
        layers = try VGGFullyConnected(source, fc6: "classifier.0", inFeatures: inChannels * area, fc7: "classifier.3",
                                       storage: storage, precision: precision, int8InputScale: int8InputScale)
    }

    func callAsFunction(_ map: Tensor, relay: inout WorkspaceRelay) throws -> Tensor {
        var x = map
        let size = VGGClassifier.poolSize
        // AdaptiveAvgPool2d to the size the map already has is the identity (one-cell windows).
        if map.shape[2] != size || map.shape[3] != size {
            x = try relay.run(x) { ws in
                try adaptiveAvgPool2d(x, outputSize: (size, size), workspace: ws)
            }
        }
        let flat = try relay.run(x) { ws in
            try ws.plain(x).reshaped([x.shape[0], x.shape[1] * size * size])
        }
        let fc6 = try relay.run(flat) { ws in try layers.fc6(flat, workspace: ws) }
        return try relay.run(fc6) { ws in try layers.fc7(fc6, workspace: ws) }
    }
}

/// VGG16 image embeddings: fc7 after its ReLU (4096-d for the real network), eval mode, equal to timm's
/// `forward_head(forward_features(x), pre_logits=True)` for `timm/vgg16.tv_in1k` and to torchvision's
/// `classifier[:-1](flatten(avgpool(forward(x))))` for a torchvision state dict.
///
/// Guarantees: every width comes from the checkpoint's tensor shapes (tiny test checkpoints load as well as the
/// real one); a missing or misshaped tensor is a `ModelError` naming it; weights are immutable after loading and
/// held once (convolutions packed for oneDNN, the fully-connected layers either read in place from the mapped
/// checkpoint or packed once, see `HeadWeights`); `features` may be called from many threads at once, each call
/// borrowing its own pair of workspaces; a batch gives the same vectors as its images one by one.
public final class VGG16: ImageNetwork {
    /// The checkpoint layout the weights came from.
    public enum Layout: String, Sendable {
        /// timm (`features.*`, `pre_logits.fc1/fc2` as convs, `head.fc`), e.g. `timm/vgg16.tv_in1k`.
        case timm
        /// torchvision state dict (`features.*`, `classifier.0/3/6` linears).
        case torchvision
    }

    /// Where the fully-connected weights (90% of VGG16's bytes) live after loading.
    public enum HeadWeights: Sendable, Equatable {
        /// Read in place from the memory-mapped checkpoint when it stores them as aligned float32 (else packed).
        case mapped
        /// Copied once into oneDNN's packed matmul layout; the checkpoint can then be closed.
        case packed
    }

    private enum Head: Sendable {
        case preLogits(VGGConvMlp)
        case classifier(VGGClassifier)
    }

    public let layout: Layout
    /// Channels the input must have (3 for RGB).
    public let inputChannels: Int
    /// Output widths of the 13 conv layers.
    public let convolutionWidths: [Int]
    /// Length of each output vector (fc7's width, 4096 for the real network).
    public let outputDimension: Int

    let featureLayers: VGGFeatures
    private let head: Head
    private let workspaces: WorkspacePool

    /// Builds the network from a checkpoint in timm or torchvision layout (detected from the keys).
    /// - Parameters:
    ///   - config: timm's config.json, when present: `architecture` must be a plain VGG16, `num_features` (if set)
    ///     must equal the last conv width, and `global_pool` selects the head's pooling.
    ///   - headWeights: see `HeadWeights`.
    ///   - workspaces: where calls borrow their activation memory (shared with the other models by default).
    ///   - convolutions: `.winograd` runs the 3×3 convolutions as Winograd where this CPU has it (see
    ///     `ConvolutionAlgorithm`); `.direct` keeps every sum in PyTorch's form.
    ///   - precision: `.bf16` runs the convolutions and both fully-connected layers on bfloat16 weights and
    ///     inputs (float32 sums and outputs of the head); the head's weights are then packed whatever
    ///     `headWeights` says, at half the float32 bytes. `.int8` runs every convolution after the first, and fc6,
    ///     in int8 with activation scales from `calibration` (`VGG16+Int8.swift`); the first convolution and fc7
    ///     (the vector) stay float32.
    ///   - calibration: preprocessed images `[N, C, H, W]` that fix the int8 activation scales; required for
    ///     `.int8` (`load` makes them from `CalibrationPosters` through the folder's preprocessing), ignored
    ///     otherwise.
    public init(weights: some CheckpointReader, config: TimmModelConfig? = nil,
                headWeights: HeadWeights = .mapped, workspaces: WorkspacePool = .shared,
                convolutions: ConvolutionAlgorithm = .winograd, precision: Precision = .fp32,
                calibration: ImageTensor? = nil) throws {
        self.workspaces = workspaces
        let source = VGGTensorSource(reader: weights)
        let names = Set(weights.tensorNames)
        if names.contains("pre_logits.fc1.weight") {
            layout = .timm
        } else if names.contains("classifier.0.weight") {
            layout = .torchvision
        } else {
            throw ModelError.unknownLayout("neither pre_logits.fc1.weight (timm) nor classifier.0.weight (torchvision) is present")
        }
        if let config {
            guard config.architecture == "vgg16" else {
                throw ModelError.unsupportedConfig("architecture \"\(config.architecture)\" (expected vgg16)")
            }
        }
        if precision == .int8 {
            guard let calibration else {
                throw ModelError.badInput("int8 needs calibration images to fix its activation scales")
            }
            featureLayers = try VGGFeatures.int8(source, calibration: calibration, convolutions: convolutions,
                                                 workspaces: workspaces)
        } else {
            featureLayers = try VGGFeatures(source, convolutions: convolutions, precision: precision)
        }
        // At int8, fc6 reads the convolutions' output in their scale; fc7 stays float32 (see VGG16+Int8.swift).
        let headScale = precision == .int8 ? featureLayers.outputScale : nil
        if let expected = config?.numFeatures, expected != featureLayers.outChannels {
            throw ModelError.unsupportedConfig(
                "num_features \(expected) but the last conv (features.28) has \(featureLayers.outChannels) channels")
        }
        switch layout {
        case .timm:
            let mlp = try VGGConvMlp(source, inChannels: featureLayers.outChannels, globalPool: config?.globalPool,
                                     storage: headWeights, precision: precision, int8InputScale: headScale)
            head = .preLogits(mlp)
            outputDimension = mlp.layers.fc7.outFeatures
        case .torchvision:
            let classifier = try VGGClassifier(source, inChannels: featureLayers.outChannels, storage: headWeights,
                                               precision: precision, int8InputScale: headScale)
            head = .classifier(classifier)
            outputDimension = classifier.layers.fc7.outFeatures
        }
        inputChannels = featureLayers.inChannels
        convolutionWidths = featureLayers.widths
        // The convolutions hold packed copies; the head's mapped weights page back in on first use.
        weights.dropResidentPages()
        ProcessHeap.returnFreePages()  // the plain copies made while loading
    }

    /// Loads `directory`: timm's `config.json` + `model.safetensors`, or a single PyTorch checkpoint file
    /// (`.pth`, `.pt`, `.bin`) holding a torchvision (or timm) state dict, with or without config.json.
    public static func load(from directory: URL, convolutions: ConvolutionAlgorithm = .winograd,
                            precision: Precision = .fp32) throws -> VGG16 {
        try load(from: directory, headWeights: .mapped, convolutions: convolutions, precision: precision)
    }

    /// `load(from:convolutions:)` with the head's weights kept as `headWeights` says.
    public static func load(from directory: URL, headWeights: HeadWeights,
                            convolutions: ConvolutionAlgorithm = .winograd, precision: Precision = .fp32) throws -> VGG16 {
        let config = try ModelFolder.config(in: directory, required: false).map { try TimmModelConfig.load(from: $0) }
        let checkpointURL = try ModelFolder.checkpoint(in: directory, names: ["model.safetensors"], anySinglePyTorchFile: true)
        let calibration = precision == .int8
            ? try ImagePreprocessor.load(modelDirectory: directory).batch(CalibrationPosters.images()) : nil
        return try VGG16(weights: openCheckpoint(at: checkpointURL), config: config, headWeights: headWeights,
                         convolutions: convolutions, precision: precision, calibration: calibration)
    }

    /// fc7 vectors for a batch `[N, C, H, W]` (plain float32, NCHW), one `[Float]` of `outputDimension` per image.
    /// H and W must be at least 32 (five 2×2 pools); 224×224 is what the model was trained on.
    public func forward(_ batch: Tensor) throws -> [[Float]] {
        guard batch.shape.count == 4, batch.shape[0] >= 1, batch.shape[1] == inputChannels else {
            throw ModelError.badInput("expected [N, \(inputChannels), H, W] with N ≥ 1, got \(batch.shape)")
        }
        let map = VGGFeatures.outputSize(height: batch.shape[2], width: batch.shape[3])
        guard map.height >= 1, map.width >= 1 else {
            throw ModelError.badInput("image \(batch.shape[2])x\(batch.shape[3]) is smaller than 32x32")
        }
        let count = batch.shape[0]
        let values = try workspaces.withWorkspaces { workspaces -> [Float] in
            var relay = WorkspaceRelay(workspaces)
            let x = try convolutionFeatures(batch, workspaces: workspaces, relay: &relay)
            let output: Tensor
            switch head {
            case .preLogits(let mlp): output = try mlp(x, relay: &relay)
            case .classifier(let classifier): output = try classifier(x, relay: &relay)
            }
            guard output.shape == [count, outputDimension] else {
                throw ModelError.badInput("head produced \(output.shape), expected [\(count), \(outputDimension)]")
            }
            return try output.toArray()
        }
        return (0..<count).map { Array(values[($0 * outputDimension)..<(($0 + 1) * outputDimension)]) }
    }

    /// Images per pass through the convolutions. Their activations dominate memory (a 224×224 image's first maps
    /// are 12.8 MB each) and gain little from larger batches, unlike the head, whose 400 MB fc1 weights are read
    /// once per batch; so a batch runs the convolutions in groups of this many and the head once.
    public static let maxImagesPerConvolutionPass = 4

    /// The convolution stack's output for `batch`, in groups of `maxImagesPerConvolutionPass` images gathered into one
    /// plain `[N, C, h, w]` tensor (kept outside the relay's workspaces while the next group runs).
    private func convolutionFeatures(_ batch: Tensor, workspaces: (Workspace, Workspace),
                                     relay: inout WorkspaceRelay) throws -> Tensor {
        let count = batch.shape[0]
        let group = VGG16.maxImagesPerConvolutionPass
        func run(_ input: Tensor, _ relay: inout WorkspaceRelay) throws -> Tensor {
            try featureLayers.run(input, relay: &relay)
        }
        if count <= group { return try run(batch, &relay) }
        let imageSize = batch.count / count
        let pixels = try batch.toArray()
        var gathered: [Float] = []
        var mapShape: [Int] = []
        for start in stride(from: 0, to: count, by: group) {
            let n = min(group, count - start)
            let slice = try Tensor(shape: [n] + batch.shape.dropFirst(),
                                   values: Array(pixels[(start * imageSize)..<((start + n) * imageSize)]))
            var groupRelay = WorkspaceRelay(workspaces)
            let maps = try run(slice, &groupRelay)
            mapShape = Array(maps.shape.dropFirst())
            gathered.append(contentsOf: try maps.toArray())
            workspaces.0.reset()
            workspaces.1.reset()
        }
        relay = WorkspaceRelay(workspaces)
        return try Tensor(shape: [count] + mapShape, values: gathered)
    }

    /// fc7 vectors for preprocessed images: one `[C, H, W]` tensor or a batch `[N, C, H, W]`.
    public func forward(_ images: ImageTensor) throws -> [[Float]] {
        let shape = images.shape.count == 3 ? [1] + images.shape : images.shape
        return try forward(Tensor(shape: shape, values: images.values))
    }

    /// fc7 vectors for several preprocessed `[C, H, W]` images of one size, run as one batch.
    public func forward(_ images: [ImageTensor]) throws -> [[Float]] {
        guard let first = images.first else { return [] }
        guard first.shape.count == 3, images.allSatisfy({ $0.shape == first.shape }) else {
            throw ModelError.badInput("images must all be [C, H, W] of one size, got \(images.map(\.shape))")
        }
        var values: [Float] = []
        values.reserveCapacity(first.values.count * images.count)
        for image in images { values.append(contentsOf: image.values) }
        return try forward(Tensor(shape: [images.count] + first.shape, values: values))
    }
}
