// What every model's `config.json` reader shares: the error type, telling the kinds apart, and decoding with errors
// that name the key. Each model's own config type lives next to its code (CLIP/CLIPConfig.swift,
// ResNet/ResNetConfig.swift, VGG16/TimmModelConfig.swift); missing keys take the reference classes' defaults.
import Foundation

/// Errors from reading a `config.json`.
public enum ModelConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    case notJSON(String)
    case notAnObject
    case invalidField(key: String, reason: String)
    case unknownKind(modelType: String?)
    case wrongKind(expected: ModelConfigKind, found: ModelConfigKind)
    case invalidValue(key: String, reason: String)

    public var description: String {
        switch self {
        case .notJSON(let why): return "config.json is not valid JSON (\(why))"
        case .notAnObject: return "config.json is not a JSON object"
        case .invalidField(let key, let reason): return "config.json: \(key): \(reason)"
        case .unknownKind(let modelType):
            return "config.json describes an unsupported model (model_type \(modelType.map { "'\($0)'" } ?? "absent"), no timm architecture)"
        case .wrongKind(let expected, let found): return "config.json is a \(found.rawValue) config, expected \(expected.rawValue)"
        case .invalidValue(let key, let reason): return "config.json: \(key) \(reason)"
        }
    }
}

/// Which kind of model a `config.json` describes.
public enum ModelConfigKind: String, Sendable, Equatable {
    /// transformers `model_type: "clip"`.
    case clip
    /// transformers `model_type: "resnet"`.
    case resnet
    /// timm hub config (has `architecture`).
    case timm
}

/// Tells which kind of model `config.json` bytes describe: `model_type` "clip"/"resnet" (transformers) or an
/// `architecture` key (timm).
public func modelConfigKind(of data: Data) throws -> ModelConfigKind {
    let object: Any
    do {
        object = try JSONSerialization.jsonObject(with: data)
    } catch {
        throw ModelConfigError.notJSON(String(describing: error))
    }
    guard let dict = object as? [String: Any] else { throw ModelConfigError.notAnObject }
    let modelType = dict["model_type"] as? String
    switch modelType {
    case "clip": return .clip
    case "resnet": return .resnet
    default:
        if dict["architecture"] is String { return .timm }
        throw ModelConfigError.unknownKind(modelType: modelType)
    }
}

/// Decodes a config of type `T` from JSON bytes, mapping decoding failures to `ModelConfigError`.
func decodeConfig<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let error as ModelConfigError {
        throw error
    } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
        throw ModelConfigError.invalidField(key: context.codingPath.map(\.stringValue).joined(separator: "."), reason: context.debugDescription)
    } catch let DecodingError.keyNotFound(key, context) {
        throw ModelConfigError.invalidField(key: (context.codingPath + [key]).map(\.stringValue).joined(separator: "."), reason: "missing")
    } catch let DecodingError.dataCorrupted(context) {
        if context.codingPath.isEmpty { throw ModelConfigError.notJSON(context.debugDescription) }
        throw ModelConfigError.invalidField(key: context.codingPath.map(\.stringValue).joined(separator: "."), reason: context.debugDescription)
    } catch {
        throw ModelConfigError.notJSON(String(describing: error))
    }
}

/// Reads `url` and decodes it as `T` after checking it is of the expected kind.
func loadConfig<T: Decodable>(_ type: T.Type, kind: ModelConfigKind, from url: URL) throws -> T {
    let data = try Data(contentsOf: url)
    let found = try modelConfigKind(of: data)
    guard found == kind else { throw ModelConfigError.wrongKind(expected: kind, found: found) }
    return try decodeConfig(T.self, from: data)
}

