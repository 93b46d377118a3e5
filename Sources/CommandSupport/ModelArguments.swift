// How commands read model names and print JSON, shared by `postersim` and `postersim-bench`.
import ArgumentParser
import Foundation
import ModelHub
import PosterSimCore

extension ModelName {
    /// Parses a `--model` value (clip, resnet50, vgg16, and spellings like ResNet-50 or VGG-16).
    public static func parseArgument(_ text: String) throws -> ModelName {
        guard let model = ModelName(parsing: text) else {
            throw ValidationError(ModelHubError.unknownModelName(text).description)
        }
        return model
    }

    /// Parses a comma-separated `--models` value.
    public static func parseList(_ text: String) throws -> [ModelName] {
        try text.split(separator: ",").map { try parseArgument(String($0)) }
    }
}

/// Pretty-printed, key-sorted JSON for `--json` output.
public func encodeJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
