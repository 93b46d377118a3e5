// One product model (CLIP, ResNet-50 or VGG16) together with its own preprocessing: the single entry point the
// command line, the ingest pipeline and the server use to turn posters (and, for CLIP, text) into vectors.
import Foundation
import Imaging
import ModelHub
import TensorFiles
@_exported import enum Tensors.ConvolutionAlgorithm

/// Errors of `PosterEmbeddingModel` beyond those of the network it wraps.
public enum PosterEmbeddingError: Error, CustomStringConvertible, Equatable, Sendable {
    case textNotSupported(ModelName)
    case noTokenizer(URL)
    case emptyBatch
    case dimensionMismatch(model: ModelName, expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .textNotSupported(let model): return "\(model) embeds images only; text search needs clip"
        case .noTokenizer(let directory):
            return "no tokenizer files (vocab.json + merges.txt, or tokenizer.json) in \(directory.path)"
        case .emptyBatch: return "nothing to embed: the batch is empty"
        case .dimensionMismatch(let model, let expected, let actual):
            return "\(model) produced \(actual)-d vectors, but \(model) is a \(expected)-d model: wrong checkpoint?"
        }
    }
}

/// A loaded model and its preprocessing.
///
/// Guarantees: the weights are immutable after `load`, so one instance may be shared by any number of concurrent
/// callers (each call takes its own workspace from the network's pool); `embed(images:)` on a batch returns the same
/// vectors as embedding the images one by one; vectors are exactly what the reference computes from the checkpoint
/// (CLIP `get_image_features`, ResNet `pooler_output`, VGG16 fc7 after ReLU), unnormalised.
public final class PosterEmbeddingModel: Sendable {
    public let name: ModelName
    /// The folder the files were read from.
    public let directory: URL
    public let preprocessor: ImagePreprocessor
    /// Length of the vectors.
    public let dimension: Int

    enum Network: Sendable {
        case clip(CLIPModel)
        case resnet50(ResNetModel)
        case vgg16(VGG16)
    }

    let network: Network

    /// Loads `name` from a folder in repository layout (a cache snapshot or a `--model-dir`). `convolutions`
    /// picks how the 3×3 convolutions of ResNet-50 and VGG16 compute (`ConvolutionAlgorithm`).
    public init(_ name: ModelName, directory: URL, convolutions: ConvolutionAlgorithm = .winograd) throws {
        self.name = name
        self.directory = directory
        preprocessor = try ImagePreprocessor.load(modelDirectory: directory)
        switch name {
        case .clip:
            let model = try CLIPModel.load(directory: directory)
            network = .clip(model)
            dimension = model.embeddingDimension
        case .resnet50:
            let model = try ResNetModel(directory: directory, convolutions: convolutions)
            network = .resnet50(model)
            dimension = model.dimension
        case .vgg16:
            let model = try VGG16.load(directory: directory, convolutions: convolutions)
            network = .vgg16(model)
            dimension = model.outputDimension
        }
    }

    /// Loads `name` from where the model hub resolved it.
    public convenience init(_ name: ModelName, location: ModelLocation,
                            convolutions: ConvolutionAlgorithm = .winograd) throws {
        try self.init(name, directory: location.directory, convolutions: convolutions)
    }

    /// Whether the model can embed text (CLIP's text tower with a tokenizer).
    public var supportsText: Bool {
        if case .clip(let model) = network { return model.tokenizer != nil }
        return false
    }

    /// Vectors for a preprocessed batch `[N, 3, H, W]` (as `preprocessor.batch` makes it), one per image.
    public func embed(_ batch: ImageTensor) throws -> [[Float]] {
        guard batch.shape.count == 4, batch.shape[0] > 0 else { throw PosterEmbeddingError.emptyBatch }
        let (count, height, width) = (batch.shape[0], batch.shape[2], batch.shape[3])
        let vectors: [[Float]]
        switch network {
        case .clip(let model): vectors = try model.imageFeatures(batch)
        case .resnet50(let model): vectors = try model.embed(pixels: batch.values, count: count, height: height, width: width)
        case .vgg16(let model): vectors = try model.features(batch)
        }
        if let wrong = vectors.first(where: { $0.count != dimension }) {
            throw PosterEmbeddingError.dimensionMismatch(model: name, expected: dimension, actual: wrong.count)
        }
        return vectors
    }

    /// Preprocesses and embeds decoded posters, one vector per image.
    public func embed(images: [RGBImage]) throws -> [[Float]] {
        guard !images.isEmpty else { throw PosterEmbeddingError.emptyBatch }
        return try embed(preprocessor.batch(images))
    }

    /// CLIP text features (`get_text_features`), one vector per text.
    public func embed(texts: [String]) throws -> [[Float]] {
        guard case .clip(let model) = network else { throw PosterEmbeddingError.textNotSupported(name) }
        guard model.tokenizer != nil else { throw PosterEmbeddingError.noTokenizer(directory) }
        guard !texts.isEmpty else { throw PosterEmbeddingError.emptyBatch }
        return try model.textFeatures(texts)
    }
}
