import Embedding
import Foundation
import Imaging
import PosterSimCore
import TensorFiles
import Tensors

// ResNet as transformers' `ResNetModel` computes it (reference: transformers/models/resnet/modeling_resnet.py).
// One type per sub-module, named after the checkpoint key path (`embedder.embedder`, `encoder.stages.N.layers.M`,
// `layer.K`, `shortcut`). Differences from the reference are only in how, not what: batch norm (eval mode) is
// folded into the preceding convolution at load, the residual sum and the ReLU after it are fused into the last
// convolution of each block as oneDNN post-ops, and activations stay in oneDNN's blocked layout between layers.


extension ResNetConfig {
    /// Checks the configuration is one this implementation computes exactly.
    func validated() throws -> ResNetConfig {
        guard hiddenAct == "relu" else { throw ModelError.unsupportedConfig("hidden_act \(hiddenAct)") }
        guard !hiddenSizes.isEmpty, hiddenSizes.count == depths.count, depths.allSatisfy({ $0 >= 1 }),
              numChannels >= 1, embeddingSize >= 1, hiddenSizes.allSatisfy({ $0 >= 1 }) else {
            throw ModelError.unsupportedConfig("hidden_sizes \(hiddenSizes) / depths \(depths)")
        }
        return self
    }
}

extension CheckpointReader {
    /// Values of `name` after checking the shape the model expects (`CheckpointError` otherwise).
    func values(_ name: String, shape: [Int]) throws -> [Float] {
        try floats(name, expectedShape: shape).values
    }
}

/// `ResNetConvLayer`: conv (no bias, padding k/2) → BatchNorm2d → activation, as one conv with folded BN.
struct ResNetConvLayer: Sendable {
    let conv: Conv2d

    init(_ store: some CheckpointReader, prefix: String, inChannels: Int, outChannels: Int, kernelSize: Int,
         stride: Int, relu: Bool, expectedInput: Int, algorithm: ConvolutionAlgorithm = .direct,
         precision: Precision, layout: ActivationLayout) throws {
        let shape = [outChannels, inChannels, kernelSize, kernelSize]
        let weight = try store.values("\(prefix).convolution.weight", shape: shape)
        let bn = try batchNorm(store, prefix: "\(prefix).normalization", channels: outChannels)
        // Another input size may need the weights again (Winograd layouts are made per map size): re-read them.
        let name = "\(prefix).convolution.weight"
        conv = try Conv2d(weight: weight, weightShape: shape, bias: nil, stride: stride, padding: kernelSize / 2,
                          batchNorm: bn, activation: relu ? .relu : .identity,
                          expectedInput: (expectedInput, expectedInput), algorithm: algorithm,
                          weightSource: { try store.values(name, shape: shape) }, precision: precision,
                          layout: layout)
    }

    /// With Winograd (fp32), every layer of the network works on nChw16c, the layout the Winograd layers need, so
    /// no activation is reordered between a 3×3 layer and its 1×1 neighbours (they would otherwise run on
    /// channels-last, with two reorders around each 3×3). `algorithm` is the network's choice. bf16 has no
    /// Winograd: oneDNN's pick (channels-last) throughout.
    static func activationLayout(_ algorithm: ConvolutionAlgorithm, _ precision: Precision) -> ActivationLayout {
        algorithm == .winograd && precision == .fp32 ? .blocked16 : .any
    }
}

/// `ResNetShortCut`: 1×1 conv with stride → BatchNorm2d, projecting the residual.
struct ResNetShortCut: Sendable {
    let conv: Conv2d

    init(_ store: some CheckpointReader, prefix: String, inChannels: Int, outChannels: Int, stride: Int,
         expectedInput: Int, precision: Precision, layout: ActivationLayout) throws {
        let shape = [outChannels, inChannels, 1, 1]
        conv = try Conv2d(weight: try store.values("\(prefix).convolution.weight", shape: shape), weightShape: shape,
                          bias: nil, stride: stride,
                          batchNorm: try batchNorm(store, prefix: "\(prefix).normalization", channels: outChannels),
                          expectedInput: (expectedInput, expectedInput), precision: precision, layout: layout)
    }
}

private func batchNorm(_ store: some CheckpointReader, prefix: String, channels: Int) throws -> BatchNormParameters {
    // transformers uses nn.BatchNorm2d's default eps (1e-5); the checkpoint does not store it.
    BatchNormParameters(weight: try store.values("\(prefix).weight", shape: [channels]),
                        bias: try store.values("\(prefix).bias", shape: [channels]),
                        runningMean: try store.values("\(prefix).running_mean", shape: [channels]),
                        runningVar: try store.values("\(prefix).running_var", shape: [channels]), eps: 1e-5)
}

/// `ResNetBottleNeckLayer` (1×1 reduce → 3×3 → 1×1 expand, stride in the 3×3 unless `downsample_in_bottleneck`:
/// ResNet v1.5) and `ResNetBasicLayer` (3×3 → 3×3); residual added before the final ReLU.
struct ResNetResidualLayer: Sendable {
    let shortcut: ResNetShortCut?
    let layers: [ResNetConvLayer]

    init(_ store: some CheckpointReader, prefix: String, config: ResNetConfig, inChannels: Int, outChannels: Int,
         stride: Int, expectedInput: Int, convolutions: ConvolutionAlgorithm, precision: Precision) throws {
        let layout = ResNetConvLayer.activationLayout(convolutions, precision)
        let projects = inChannels != outChannels || stride != 1
        shortcut = projects ? try ResNetShortCut(store, prefix: "\(prefix).shortcut", inChannels: inChannels,
                                                 outChannels: outChannels, stride: stride,
                                                 expectedInput: expectedInput, precision: precision,
                                                 layout: layout) : nil
        let output = (expectedInput - 1) / stride + 1
        if config.layerType == .bottleneck {
            let reduced = outChannels / 4
            guard reduced >= 1 else { throw ModelError.unsupportedConfig("bottleneck width \(outChannels) < 4") }
            let firstStride = config.downsampleInBottleneck ? stride : 1
            layers = [
                try ResNetConvLayer(store, prefix: "\(prefix).layer.0", inChannels: inChannels, outChannels: reduced,
                                    kernelSize: 1, stride: firstStride, relu: true, expectedInput: expectedInput,
                                    precision: precision, layout: layout),
                try ResNetConvLayer(store, prefix: "\(prefix).layer.1", inChannels: reduced, outChannels: reduced,
                                    kernelSize: 3, stride: stride / firstStride, relu: true,
                                    expectedInput: (expectedInput - 1) / firstStride + 1, algorithm: convolutions,
                                    precision: precision, layout: layout),
                // The block's ReLU comes after the residual sum; both are fused into this conv.
                try ResNetConvLayer(store, prefix: "\(prefix).layer.2", inChannels: reduced, outChannels: outChannels,
                                    kernelSize: 1, stride: 1, relu: true, expectedInput: output, precision: precision,
                                    layout: layout),
            ]
        } else {
            layers = [
                try ResNetConvLayer(store, prefix: "\(prefix).layer.0", inChannels: inChannels, outChannels: outChannels,
                                    kernelSize: 3, stride: stride, relu: true, expectedInput: expectedInput,
                                    algorithm: convolutions, precision: precision, layout: layout),
                try ResNetConvLayer(store, prefix: "\(prefix).layer.1", inChannels: outChannels,
                                    outChannels: outChannels, kernelSize: 3, stride: 1, relu: true,
                                    expectedInput: output, algorithm: convolutions, precision: precision,
                                    layout: layout),
            ]
        }
    }

    /// `input` must be an intermediate map nobody reads afterwards: the last conv may write the block's output
    /// over it (or over the shortcut's output) rather than copying the residual first.
    func callAsFunction(_ input: Tensor, workspace: Workspace) throws -> Tensor {
        let residual = try shortcut.map { try $0.conv(input, workspace: workspace) } ?? input
        var hidden = input
        for layer in layers.dropLast() { hidden = try layer.conv(hidden, workspace: workspace) }
        guard let last = layers.last else { return hidden }
        return try last.conv(hidden, residual: residual, overwritingResidual: true, workspace: workspace)
    }
}

/// `ResNetStage`: the first layer may change width and stride, the rest keep them.
struct ResNetStage: Sendable {
    let layers: [ResNetResidualLayer]

    init(_ store: some CheckpointReader, prefix: String, config: ResNetConfig, inChannels: Int, outChannels: Int,
         stride: Int, depth: Int, expectedInput: Int, convolutions: ConvolutionAlgorithm,
         precision: Precision) throws {
        var layers: [ResNetResidualLayer] = []
        var size = expectedInput
        for index in 0..<depth {
            layers.append(try ResNetResidualLayer(store, prefix: "\(prefix).layers.\(index)", config: config,
                                                  inChannels: index == 0 ? inChannels : outChannels,
                                                  outChannels: outChannels, stride: index == 0 ? stride : 1,
                                                  expectedInput: size, convolutions: convolutions,
                                                  precision: precision))
            if index == 0 { size = (size - 1) / stride + 1 }
        }
        self.layers = layers
    }

    /// Each residual layer writes into the relay's other workspace, so only two layers' maps are alive at once.
    func callAsFunction(_ input: Tensor, relay: inout WorkspaceRelay) throws -> Tensor {
        var hidden = input
        for layer in layers { hidden = try relay.run(hidden) { workspace in try layer(hidden, workspace: workspace) } }
        return hidden
    }
}

/// `ResNetEmbeddings`: 7×7/2 conv + BN + ReLU (`embedder.embedder`), then 3×3/2 max pool (`embedder.pooler`).
struct ResNetEmbeddings: Sendable {
    let embedder: ResNetConvLayer
    let pooler: MaxPool2d

    init(_ store: some CheckpointReader, prefix: String, config: ResNetConfig, imageSize: Int,
         precision: Precision, layout: ActivationLayout) throws {
        embedder = try ResNetConvLayer(store, prefix: "\(prefix).embedder", inChannels: config.numChannels,
                                       outChannels: config.embeddingSize, kernelSize: 7, stride: 2, relu: true,
                                       expectedInput: imageSize, precision: precision, layout: layout)
        pooler = try MaxPool2d(kernelSize: 3, stride: 2, padding: 1)
    }

    func callAsFunction(_ pixels: Tensor, relay: inout WorkspaceRelay) throws -> Tensor {
        let features = try relay.run(pixels) { workspace in try embedder.conv(pixels, workspace: workspace) }
        return try relay.run(features) { workspace in try pooler(features, workspace: workspace) }
    }
}

/// transformers `ResNetModel`: embeddings → encoder stages → adaptive average pool to 1×1. `pooler_output`
/// flattened is the embedding (2048-d for microsoft/resnet-50).
///
/// Guarantees: immutable after load (weights folded and pre-reordered); `embed` is safe to call concurrently;
/// each image of a batch gets the same result as on its own.
public final class ResNetModel: ImageNetwork {
    public let config: ResNetConfig
    let embedder: ResNetEmbeddings
    let stages: [ResNetStage]
    private let workspaces: WorkspacePool

    /// Embedding width (`hidden_sizes.last`).
    public var dimension: Int { config.hiddenSizes[config.hiddenSizes.count - 1] }

    /// Loads from checkpoint keys `resnet.embedder…`/`resnet.encoder…` (ResNetForImageClassification) or the
    /// same without the `resnet.` prefix (ResNetModel). `imageSize` picks weight layouts at load time; calls
    /// borrow their activation memory from `workspaces` (shared with the other models by default).
    /// `convolutions: .winograd` runs the stride-1 3×3 convolutions as Winograd where this CPU has it (see
    /// `ConvolutionAlgorithm`); `.direct` keeps every sum in PyTorch's form. `precision: .bf16` runs every
    /// convolution on bfloat16 weights and activations (float32 sums, bias and final pooling).
    public init(config: ResNetConfig, checkpoint store: some CheckpointReader, imageSize: Int = 224,
                workspaces: WorkspacePool = .shared, convolutions: ConvolutionAlgorithm = .winograd,
                precision: Precision = .fp32) throws {
        // int8 was measured for ResNet-50 and missed the neighbour-overlap bound (KernelChoice.swift): refused.
        try ModelError.require(precision, for: .resnet50)
        self.workspaces = workspaces
        let config = try config.validated()
        self.config = config
        let root = store.info("resnet.embedder.embedder.convolution.weight") != nil ? "resnet." : ""
        embedder = try ResNetEmbeddings(store, prefix: "\(root)embedder", config: config, imageSize: imageSize,
                                        precision: precision,
                                        layout: ResNetConvLayer.activationLayout(convolutions, precision))
        var size = ((imageSize - 1) / 2 + 1 - 1) / 2 + 1
        var stages: [ResNetStage] = []
        var inChannels = config.embeddingSize
        for (index, (width, depth)) in zip(config.hiddenSizes, config.depths).enumerated() {
            let stride = index == 0 ? (config.downsampleInFirstStage ? 2 : 1) : 2
            stages.append(try ResNetStage(store, prefix: "\(root)encoder.stages.\(index)", config: config,
                                          inChannels: inChannels, outChannels: width, stride: stride, depth: depth,
                                          expectedInput: size, convolutions: convolutions, precision: precision))
            size = (size - 1) / stride + 1
            inChannels = width
        }
        self.stages = stages
        // Every convolution now holds its batch-norm-folded copy; the file's pages would only double the memory.
        store.dropResidentPages()
        ProcessHeap.returnFreePages()  // the plain copies made while loading
    }

    /// Loads a transformers checkpoint folder: `config.json` plus `model.safetensors` or `pytorch_model.bin`.
    public static func load(from directory: URL, convolutions: ConvolutionAlgorithm = .winograd,
                            precision: Precision = .fp32) throws -> ResNetModel {
        let config = try ResNetConfig.load(from: try ModelFolder.config(in: directory, required: true)!)
        return try ResNetModel(config: config, checkpoint: try openCheckpoint(at: ModelFolder.checkpoint(in: directory)),
                               convolutions: convolutions, precision: precision)
    }

    public var outputDimension: Int { dimension }

    /// `pooler_output` for a preprocessed batch `[N, channels, H, W]`, one vector per image.
    public func forward(_ batch: ImageTensor) throws -> [[Float]] {
        guard batch.shape.count == 4 else { throw ModelError.badInput("expected [N, C, H, W] pixels, got \(batch.shape)") }
        return try forward(pixels: batch.values, count: batch.shape[0], height: batch.shape[2], width: batch.shape[3])
    }

    /// `pooler_output` for a batch of preprocessed images `[N, channels, H, W]` (plain NCHW); returns `[N, dim]`,
    /// living in one of `relay`'s workspaces.
    public func callAsFunction(_ pixels: Tensor, relay: inout WorkspaceRelay) throws -> Tensor {
        guard pixels.shape.count == 4, pixels.shape[1] == config.numChannels else {
            throw ModelError.badInput("expected [N, \(config.numChannels), H, W] pixels, got \(pixels.shape)")
        }
        var hidden = try embedder(pixels, relay: &relay)
        for stage in stages { hidden = try stage(hidden, relay: &relay) }
        let last = hidden
        let pooled = try relay.run(last) { workspace in
            try adaptiveAvgPool2d(last, outputSize: (1, 1), workspace: workspace)
        }
        return try pooled.reshaped([pixels.shape[0], dimension])
    }

    /// Embeds `count` images stored back to back in `pixels` (each channels×H×W, row-major).
    public func forward(pixels: [Float], count: Int, height: Int, width: Int) throws -> [[Float]] {
        guard count >= 1, height >= 1, width >= 1,
              pixels.count / count / height / width == config.numChannels,
              pixels.count == count * config.numChannels * height * width else {
            throw ModelError.badInput("\(pixels.count) values for \(count) images of \(config.numChannels)×\(height)×\(width)")
        }
        let input = try Tensor(shape: [count, config.numChannels, height, width], values: pixels)
        let flat = try workspaces.withWorkspaces { pair in
            var relay = WorkspaceRelay(pair)
            return try self(input, relay: &relay).toArray()
        }
        return (0..<count).map { Array(flat[($0 * dimension)..<(($0 + 1) * dimension)]) }
    }
}
