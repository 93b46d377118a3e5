import PosterSimCore

/// The one error type of the models: loading a checkpoint (files, key tree, shapes, configuration) and running it.
/// A `config.json` that does not parse is `ModelConfigError` (the config reader's own, naming the key).
public enum ModelError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The checkpoint lacks a tensor the network needs.
    case missingTensor(String)
    /// A tensor exists with another shape than the configuration and the network built so far imply.
    case wrongShape(name: String, expected: [Int], found: [Int])
    /// A tensor exists but could not be read (bad dtype, corrupt data, ...).
    case unreadableTensor(name: String, reason: String)
    /// The keys match none of the layouts this model reads.
    case unknownLayout(String)
    /// The configuration asks for something this implementation does not compute exactly.
    case unsupportedConfig(String)
    /// A model folder lacks a required file.
    case missingFile(String)
    /// The folder holds no checkpoint the loader reads (or several candidates).
    case noCheckpoint(directory: String, reason: String)
    /// Text input was given but the model folder has no tokenizer files.
    case noTokenizer
    /// Input that does not fit the model (wrong image size, token id outside the vocabulary, empty sequence, ...).
    case badInput(String)
    /// Text was given to a model that embeds images only.
    case textNotSupported(ModelName)
    /// Nothing to embed.
    case emptyBatch
    /// The checkpoint's vectors have another length than the product's model of that name.
    case dimensionMismatch(model: ModelName, expected: Int, actual: Int)
    /// The model cannot compute at this precision (`Precision.supportedModels`); there is no fallback to another.
    case unsupportedPrecision(model: ModelName, precision: Precision)

    public var description: String {
        switch self {
        case .missingTensor(let name): return "checkpoint has no tensor \(name)"
        case .wrongShape(let name, let expected, let found):
            return "checkpoint tensor \(name) has shape \(found), expected \(expected)"
        case .unreadableTensor(let name, let reason): return "cannot read tensor \(name): \(reason)"
        case .unknownLayout(let why): return "unrecognised checkpoint layout: \(why)"
        case .unsupportedConfig(let what): return "unsupported model configuration: \(what)"
        case .missingFile(let what): return "model folder lacks \(what)"
        case .noCheckpoint(let directory, let reason): return "no checkpoint in \(directory): \(reason)"
        case .noTokenizer: return "the model folder has no tokenizer files (vocab.json + merges.txt, or tokenizer.json)"
        case .badInput(let what): return "bad model input: \(what)"
        case .textNotSupported(let model): return "\(model) embeds images only; text search needs clip"
        case .emptyBatch: return "nothing to embed: the batch is empty"
        case .dimensionMismatch(let model, let expected, let actual):
            return "\(model) produced \(actual)-d vectors, but \(model) is a \(expected)-d model: wrong checkpoint?"
        case .unsupportedPrecision(let model, let precision):
            let models = precision.supportedModels.map(\.rawValue).joined(separator: ", ")
            return "\(model) cannot compute at precision \(precision) (only \(models) can); use fp32 or bf16 for \(model)"
        }
    }

    /// Throws `.unsupportedPrecision` unless `model` computes at `precision`.
    public static func require(_ precision: Precision, for model: ModelName) throws(ModelError) {
        guard precision.supportedModels.contains(model) else {
            throw .unsupportedPrecision(model: model, precision: precision)
        }
    }
}
