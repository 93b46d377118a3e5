// transformers' CLIP `config.json` (models/clip/configuration_clip.py, transformers 5.23): missing keys take its defaults.
import Foundation

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

