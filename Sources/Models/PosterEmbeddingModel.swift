// One product model (CLIP, ResNet-50 or VGG16) with its own preprocessing: the `EmbeddingModel` the command line, the
// ingest pipeline and the server use to turn posters (and, for CLIP, text) into vectors.
import Embedding
import Foundation
import Imaging
import PosterSimCore
@_exported import enum Tensors.ConvolutionAlgorithm
@_exported import struct Tensors.CPUCapabilities

/// A loaded model and its preprocessing.
///
/// Guarantees (besides `EmbeddingModel`'s): at `.fp32`, vectors are exactly what the reference computes from the
/// checkpoint (CLIP `get_image_features`, ResNet `pooler_output`, VGG16 fc7 after ReLU), unnormalised; at `.bf16`
/// (and `.int8`, VGG16 only) they are within cosine 0.999 of those, and `identity` says so (`identity.precision`), so the store never mixes
/// them with fp32 vectors. A precision the CPU cannot run is refused before anything loads.
public final class PosterEmbeddingModel: EmbeddingModel {
    public let name: ModelName
    /// The folder the files were read from.
    public let directory: URL
    public let preprocessor: ImagePreprocessor
    public let space: VectorSpace
    public let identity: ModelIdentity
    /// The arithmetic the model computes in (also `identity.precision`).
    public var precision: Precision { identity.precision }
    /// Length of the vectors.
    public var dimension: Int { space.dimension }

    let network: any ImageNetwork

    /// Loads `name` from a folder in repository layout (a cache snapshot or a `--model-dir`). `identity` names the
    /// checkpoint in the store (the hub knows its weights' sha256); the model's identity is that checkpoint at
    /// `precision`. `convolutions` picks how the 3×3 convolutions of ResNet-50 and VGG16 compute
    /// (`ConvolutionAlgorithm`). A `precision` the model does not support (`Precision.supportedModels`: int8 is
    /// VGG16's only) throws `ModelError.unsupportedPrecision`, and one that `cpu` cannot run throws
    /// `EngineError.missingInstructions` naming what is missing, both before any file is read.
    public init(_ name: ModelName, directory: URL, identity: ModelIdentity,
                convolutions: ConvolutionAlgorithm = .winograd, precision: Precision = .fp32,
                cpu: CPUCapabilities = .detected) throws {
        try ModelError.require(precision, for: name)
        try cpu.require(precision)
        self.name = name
        self.directory = directory
        preprocessor = try ImagePreprocessor.load(modelDirectory: directory)
        switch name {
        case .clip: network = try CLIPModel.load(from: directory, convolutions: convolutions, precision: precision)
        case .resnet50: network = try ResNetModel.load(from: directory, convolutions: convolutions, precision: precision)
        case .vgg16: network = try VGG16.load(from: directory, convolutions: convolutions, precision: precision)
        }
        // Spaces are named after the model; the dimension is the checkpoint's own (a config may differ from the hub's).
        space = VectorSpace(name: name.rawValue, dimension: network.outputDimension, metric: name.metric)
        self.identity = identity.at(precision)
    }

    /// Whether the model can embed text (CLIP's text tower with a tokenizer).
    public var supportsText: Bool { (network as? CLIPModel)?.tokenizer != nil }

    /// Vectors for a preprocessed batch `[N, 3, H, W]` (as `preprocessor.batch` makes it), one per image.
    public func embed(_ batch: ImageTensor) throws -> [[Float]] {
        guard batch.shape.count == 4, batch.shape[0] > 0 else { throw ModelError.emptyBatch }
        let vectors = try network.forward(batch)
        if let wrong = vectors.first(where: { $0.count != dimension }) {
            throw ModelError.dimensionMismatch(model: name, expected: dimension, actual: wrong.count)
        }
        return vectors
    }

    /// CLIP text features (`get_text_features`), one vector per text.
    public func embed(texts: [String]) throws -> [[Float]] {
        guard let clip = network as? CLIPModel else { throw ModelError.textNotSupported(name) }
        guard clip.tokenizer != nil else { throw ModelError.noTokenizer }
        guard !texts.isEmpty else { throw ModelError.emptyBatch }
        return try clip.textFeatures(texts)
    }
}
