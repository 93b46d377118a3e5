import Foundation
import PosterSimCore

/// timm's hub `config.json` (timm/models/_hub.py `save_config_for_hf`): architecture, head sizes, and the
/// `pretrained_cfg` that drives the eval transform (`timm.data.resolve_data_config`).
public struct TimmModelConfig: Decodable, Sendable, Equatable {
    /// The typed fields of `pretrained_cfg` used for preprocessing; defaults are timm's data defaults
    /// (timm/data/constants.py: ImageNet mean/std, crop_pct 0.875, bicubic, center crop).
    public struct PretrainedConfig: Decodable, Sendable, Equatable {
        public var inputSize = [3, 224, 224]
        public var interpolation = "bicubic"
        public var cropPct = 0.875
        public var cropMode = "center"
        public var mean = [0.485, 0.456, 0.406]
        public var std = [0.229, 0.224, 0.225]
        public var tag: String?
        public var firstConv: String?
        public var classifier: String?
        public var numClasses: Int?

        enum CodingKeys: String, CodingKey {
            case inputSize = "input_size", interpolation, cropPct = "crop_pct", cropMode = "crop_mode", mean, std, tag
            case firstConv = "first_conv", classifier, numClasses = "num_classes"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            inputSize = try c.decodeIfPresent([Int].self, forKey: .inputSize) ?? inputSize
            interpolation = try c.decodeIfPresent(String.self, forKey: .interpolation) ?? interpolation
            cropPct = try c.decodeIfPresent(Double.self, forKey: .cropPct) ?? cropPct
            cropMode = try c.decodeIfPresent(String.self, forKey: .cropMode) ?? cropMode
            mean = try c.decodeIfPresent([Double].self, forKey: .mean) ?? mean
            std = try c.decodeIfPresent([Double].self, forKey: .std) ?? std
            tag = try c.decodeIfPresent(String.self, forKey: .tag)
            firstConv = try c.decodeIfPresent(String.self, forKey: .firstConv)
            classifier = try c.decodeIfPresent(String.self, forKey: .classifier)
            numClasses = try c.decodeIfPresent(Int.self, forKey: .numClasses)
            guard inputSize.count == 3, inputSize.allSatisfy({ $0 > 0 }) else {
                throw ModelConfigError.invalidValue(key: "pretrained_cfg.input_size", reason: "must be [channels, height, width], is \(inputSize)")
            }
            guard mean.count == inputSize[0], std.count == inputSize[0], std.allSatisfy({ $0 != 0 }) else {
                throw ModelConfigError.invalidValue(key: "pretrained_cfg.mean/std", reason: "need one non-zero value per channel")
            }
            guard cropPct > 0, cropPct <= 1 else {
                throw ModelConfigError.invalidValue(key: "pretrained_cfg.crop_pct", reason: "must be in (0, 1], is \(cropPct)")
            }
        }
    }

    public var architecture: String
    public var numClasses: Int?
    public var numFeatures: Int?
    public var globalPool: String?
    public var pretrainedCfg: PretrainedConfig
    /// `pretrained_cfg` exactly as written (null when absent).
    public var pretrainedCfgRaw: JSONValue

    enum CodingKeys: String, CodingKey {
        case architecture, numClasses = "num_classes", numFeatures = "num_features", globalPool = "global_pool"
        case pretrainedCfg = "pretrained_cfg"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architecture = try c.decode(String.self, forKey: .architecture)
        numClasses = try c.decodeIfPresent(Int.self, forKey: .numClasses)
        numFeatures = try c.decodeIfPresent(Int.self, forKey: .numFeatures)
        globalPool = try c.decodeIfPresent(String.self, forKey: .globalPool)
        pretrainedCfg = try c.decodeIfPresent(PretrainedConfig.self, forKey: .pretrainedCfg) ?? PretrainedConfig()
        pretrainedCfgRaw = try c.decodeIfPresent(JSONValue.self, forKey: .pretrainedCfg) ?? .null
    }

    public static func load(from url: URL) throws -> TimmModelConfig {
        try loadConfig(TimmModelConfig.self, kind: .timm, from: url)
    }

    public static func decode(_ data: Data) throws -> TimmModelConfig { try decodeConfig(TimmModelConfig.self, from: data) }
}
