import Tensors

/// Where a model reads its parameters: tensor name (the checkpoint key) → shape and float32 values.
/// Checkpoint readers (safetensors, PyTorch zip) conform; tests use in-memory fixtures.
public protocol WeightStore {
    func contains(_ name: String) -> Bool
    func weight(_ name: String) throws -> (shape: [Int], values: [Float])
}

/// Errors while building a model from a checkpoint.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingTensor(String)
    case wrongShape(name: String, expected: [Int], found: [Int])
    case unsupportedConfig(String)
    case badInput(String)

    public var description: String {
        switch self {
        case .missingTensor(let name): return "checkpoint has no tensor \(name)"
        case .wrongShape(let name, let expected, let found): return "tensor \(name) has shape \(found), expected \(expected)"
        case .unsupportedConfig(let what): return "unsupported model configuration: \(what)"
        case .badInput(let what): return "bad model input: \(what)"
        }
    }
}

extension WeightStore {
    /// Values of `name`, checking the shape the model expects.
    func values(_ name: String, shape: [Int]) throws -> [Float] {
        guard contains(name) else { throw ModelError.missingTensor(name) }
        let tensor = try weight(name)
        guard tensor.shape == shape else { throw ModelError.wrongShape(name: name, expected: shape, found: tensor.shape) }
        return tensor.values
    }
}
