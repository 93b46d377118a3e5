// Options shared by every command (postersim and postersim-bench) that loads a model's files: where to find them, how
// its convolutions run and at which precision.
import ArgumentParser
import Foundation
import ModelHub
import Models
import PosterSimCore

public struct ModelLocationOptions: ParsableArguments {
    @Option(
        name: .customLong("model-dir"),
        help: ArgumentHelp(
            "Use the model files in a folder instead of the Hugging Face cache, as NAME=PATH (repeatable).",
            valueName: "name=path"))
    public var modelDirectories: [String] = []

    @Option(help: "Branch, tag or commit hash to look up in the Hugging Face cache.")
    public var revision: String = "main"

    @Option(help: ArgumentHelp(
        "How ResNet-50's and VGG16's 3×3 convolutions compute: winograd (the fastest, where the CPU has AVX-512; "
            + "each layer rounds differently by up to about 1e-5, the vectors stay within about 1.3e-7 of PyTorch's) "
            + "or direct (PyTorch's own sums; less memory for the weights).",
        valueName: "winograd|direct"))
    public var convolutions: ConvolutionAlgorithm = .winograd

    @Option(help: ArgumentHelp(
        "The models' arithmetic: fp32 (PyTorch's vectors) or bf16 (bfloat16 weights and activations with float32 "
            + "sums: half the weights' memory, needs AVX-512 BF16 and is refused without it; vectors within cosine "
            + "0.999 of fp32's; faster or slower depending on the CPU, see Benchmarks/README.md) or int8 (VGG16 "
            + "only, other models are refused: s8 weights and u8 activations with scales calibrated at load, about 2x "
            + "faster, needs VNNI and is refused without it; vectors within cosine 0.999 of fp32's). The store keeps "
            + "the precision with each vector: vectors of another precision count as stale and are embedded again by "
            + "ingest.",
        valueName: "fp32|bf16|int8"))
    public var precision: Precision = .fp32

    public init() {}

    public func resolver() throws -> ModelResolver {
        try ModelResolver(settings: HubSettings.fromProcessEnvironment(), modelDirectoryArguments: modelDirectories)
    }

    /// Where `model`'s files are: the --model-dir folder given for it, else the cache snapshot of `revision`.
    public func locate(_ model: ModelName) throws -> ModelLocation {
        try resolver().resolve(model, revision: revision)
    }

    /// Loads `model` from where `locate` finds it, named in the store by its repository and weights sha256.
    public func load(_ model: ModelName) throws -> PosterEmbeddingModel {
        let resolver = try resolver()
        let location = try resolver.resolve(model, revision: revision)
        let identity = ModelIdentity(repo: model.repoID, weightsSHA256: try resolver.weightsSHA256(for: model, revision: revision))
        return try PosterEmbeddingModel(model, directory: location.directory, identity: identity,
                                        convolutions: convolutions, precision: precision)
    }
}

extension ConvolutionAlgorithm: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

