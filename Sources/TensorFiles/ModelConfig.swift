// Model `config.json` files: transformers CLIP and ResNet configs, timm hub configs. Missing keys take the defaults of
// the reference classes (transformers 5.23 models/clip/configuration_clip.py and models/resnet/configuration_resnet.py).
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

/// Accepts an int or a list of ints (transformers allows both for `eos_token_id`); a list gives its first element.
private func decodeTokenID<K: CodingKey>(_ container: KeyedDecodingContainer<K>, _ key: K) throws -> Int?? {
    guard container.contains(key) else { return .none }
    if try container.decodeNil(forKey: key) { return .some(nil) }
    if let single = try? container.decode(Int.self, forKey: key) { return .some(single) }
    let list = try container.decode([Int].self, forKey: key)
    return .some(list.first)
}

/// transformers `CLIPTextConfig`. Defaults are those of transformers 5.23 (openai/clip-vit-base-patch32 text tower).
public struct CLIPTextConfig: Decodable, Sendable, Equatable {
    public var vocabSize = 49408
    public var hiddenSize = 512
    public var intermediateSize = 2048
    public var projectionDim = 512
    public var numHiddenLayers = 12
    public var numAttentionHeads = 8
    public var maxPositionEmbeddings = 77
    public var hiddenAct = "quick_gelu"
    public var layerNormEps = 1e-5
    public var padTokenID: Int? = 1
    public var bosTokenID: Int? = 49406
    /// The CLIP text model pools at the first position holding this id (or at the argmax id when it is 2, the legacy
    /// behaviour of transformers' CLIPTextTransformer).
    public var eosTokenID: Int? = 49407

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case projectionDim = "projection_dim", numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case padTokenID = "pad_token_id", bosTokenID = "bos_token_id", eosTokenID = "eos_token_id"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
        projectionDim = try c.decodeIfPresent(Int.self, forKey: .projectionDim) ?? projectionDim
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? numAttentionHeads
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? maxPositionEmbeddings
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? layerNormEps
        if let value = try decodeTokenID(c, .padTokenID) { padTokenID = value }
        if let value = try decodeTokenID(c, .bosTokenID) { bosTokenID = value }
        if let value = try decodeTokenID(c, .eosTokenID) { eosTokenID = value }
        try validate()
    }

    func validate() throws {
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                             ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
                             ("max_position_embeddings", maxPositionEmbeddings), ("projection_dim", projectionDim)] where value <= 0 {
            throw ModelConfigError.invalidValue(key: "text_config.\(key)", reason: "must be positive, is \(value)")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelConfigError.invalidValue(key: "text_config.hidden_size", reason: "\(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
    }
}

/// transformers `CLIPVisionConfig`. Defaults are those of transformers 5.23 (ViT-B/32).
public struct CLIPVisionConfig: Decodable, Sendable, Equatable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var projectionDim = 512
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var numChannels = 3
    public var imageSize = 224
    public var patchSize = 32
    public var hiddenAct = "quick_gelu"
    public var layerNormEps = 1e-5

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", projectionDim = "projection_dim"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads", numChannels = "num_channels"
        case imageSize = "image_size", patchSize = "patch_size", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
        projectionDim = try c.decodeIfPresent(Int.self, forKey: .projectionDim) ?? projectionDim
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? numAttentionHeads
        numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? numChannels
        imageSize = try Self.decodeSquare(c, .imageSize) ?? imageSize
        patchSize = try Self.decodeSquare(c, .patchSize) ?? patchSize
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? layerNormEps
        try validate()
    }

    /// `image_size` / `patch_size` may be an int or a [h, w] pair; CLIP only supports square ones.
    private static func decodeSquare(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Int? {
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return nil }
        if let value = try? c.decode(Int.self, forKey: key) { return value }
        let pair = try c.decode([Int].self, forKey: key)
        guard pair.count == 2, pair[0] == pair[1] else {
            throw ModelConfigError.invalidValue(key: "vision_config.\(key.rawValue)", reason: "must be square, is \(pair)")
        }
        return pair[0]
    }

    func validate() throws {
        for (key, value) in [("hidden_size", hiddenSize), ("intermediate_size", intermediateSize), ("num_hidden_layers", numHiddenLayers),
                             ("num_attention_heads", numAttentionHeads), ("num_channels", numChannels), ("image_size", imageSize),
                             ("patch_size", patchSize), ("projection_dim", projectionDim)] where value <= 0 {
            throw ModelConfigError.invalidValue(key: "vision_config.\(key)", reason: "must be positive, is \(value)")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelConfigError.invalidValue(key: "vision_config.hidden_size", reason: "\(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
        guard imageSize % patchSize == 0 else {
            throw ModelConfigError.invalidValue(key: "vision_config.image_size", reason: "\(imageSize) is not a multiple of patch_size \(patchSize)")
        }
    }
}

/// transformers `CLIPConfig` (`model_type: "clip"`).
///
/// Like transformers, a legacy `text_config_dict` / `vision_config_dict` takes precedence over `text_config` /
/// `vision_config` (transformers rebuilds the whole sub-config from it); missing sub-configs get all defaults.
public struct CLIPConfig: Decodable, Sendable, Equatable {
    public var textConfig = CLIPTextConfig()
    public var visionConfig = CLIPVisionConfig()
    public var projectionDim = 512
    public var logitScaleInitValue = 2.6592

    enum CodingKeys: String, CodingKey {
        case textConfig = "text_config", visionConfig = "vision_config"
        case textConfigDict = "text_config_dict", visionConfigDict = "vision_config_dict"
        case projectionDim = "projection_dim", logitScaleInitValue = "logit_scale_init_value"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        textConfig = try c.decodeIfPresent(CLIPTextConfig.self, forKey: .textConfigDict)
            ?? c.decodeIfPresent(CLIPTextConfig.self, forKey: .textConfig) ?? textConfig
        visionConfig = try c.decodeIfPresent(CLIPVisionConfig.self, forKey: .visionConfigDict)
            ?? c.decodeIfPresent(CLIPVisionConfig.self, forKey: .visionConfig) ?? visionConfig
        projectionDim = try c.decodeIfPresent(Int.self, forKey: .projectionDim) ?? projectionDim
        logitScaleInitValue = try c.decodeIfPresent(Double.self, forKey: .logitScaleInitValue) ?? logitScaleInitValue
        guard projectionDim > 0 else { throw ModelConfigError.invalidValue(key: "projection_dim", reason: "must be positive") }
    }

    /// Reads a CLIP `config.json`; throws `wrongKind` for other models.
    public static func load(from url: URL) throws -> CLIPConfig {
        try loadConfig(CLIPConfig.self, kind: .clip, from: url)
    }

    public static func decode(_ data: Data) throws -> CLIPConfig { try decodeConfig(CLIPConfig.self, from: data) }
}

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

/// A JSON value kept as is (for config sections we do not interpret).
public enum JSONValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let value = try? c.decode(Bool.self) { self = .bool(value) }
        else if let value = try? c.decode(Double.self) { self = .number(value) }
        else if let value = try? c.decode(String.self) { self = .string(value) }
        else if let value = try? c.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
}

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
