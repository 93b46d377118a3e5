// transformers' ResNet `config.json` (models/resnet/configuration_resnet.py, transformers 5.23).
import Foundation

/// transformers `ResNetConfig` (`model_type: "resnet"`), defaults as in transformers 5.23 (ResNet-50).
public struct ResNetConfig: Decodable, Sendable, Equatable {
    public enum LayerType: String, Decodable, Sendable { case basic, bottleneck }

    public var numChannels = 3
    public var embeddingSize = 64
    public var hiddenSizes = [256, 512, 1024, 2048]
    public var depths = [3, 4, 6, 3]
    public var layerType = LayerType.bottleneck
    public var hiddenAct = "relu"
    public var downsampleInFirstStage = false
    public var downsampleInBottleneck = false

    enum CodingKeys: String, CodingKey {
        case numChannels = "num_channels", embeddingSize = "embedding_size", hiddenSizes = "hidden_sizes", depths
        case layerType = "layer_type", hiddenAct = "hidden_act"
        case downsampleInFirstStage = "downsample_in_first_stage", downsampleInBottleneck = "downsample_in_bottleneck"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? numChannels
        embeddingSize = try c.decodeIfPresent(Int.self, forKey: .embeddingSize) ?? embeddingSize
        hiddenSizes = try c.decodeIfPresent([Int].self, forKey: .hiddenSizes) ?? hiddenSizes
        depths = try c.decodeIfPresent([Int].self, forKey: .depths) ?? depths
        if let raw = try c.decodeIfPresent(String.self, forKey: .layerType) {
            guard let type = LayerType(rawValue: raw) else {
                throw ModelConfigError.invalidValue(key: "layer_type", reason: "must be basic or bottleneck, is '\(raw)'")
            }
            layerType = type
        }
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        downsampleInFirstStage = try c.decodeIfPresent(Bool.self, forKey: .downsampleInFirstStage) ?? downsampleInFirstStage
        downsampleInBottleneck = try c.decodeIfPresent(Bool.self, forKey: .downsampleInBottleneck) ?? downsampleInBottleneck
        guard hiddenSizes.count == depths.count, !depths.isEmpty else {
            throw ModelConfigError.invalidValue(key: "hidden_sizes", reason: "must have one entry per stage (depths has \(depths.count))")
        }
        guard (hiddenSizes + depths + [numChannels, embeddingSize]).allSatisfy({ $0 > 0 }) else {
            throw ModelConfigError.invalidValue(key: "hidden_sizes/depths", reason: "must be positive")
        }
    }

    public static func load(from url: URL) throws -> ResNetConfig {
        try loadConfig(ResNetConfig.self, kind: .resnet, from: url)
    }

    public static func decode(_ data: Data) throws -> ResNetConfig { try decodeConfig(ResNetConfig.self, from: data) }
}

