import Foundation
import Testing
@testable import Models

@Suite struct ConfigTests {
    /// `CLIPConfig().to_json_string()` from transformers 5.23 (every default written out).
    private let transformersDefaultCLIP = #"""
    {"initializer_factor": 1.0, "logit_scale_init_value": 2.6592, "model_type": "clip", "projection_dim": 512,
     "text_config": {"attention_dropout": 0.0, "bos_token_id": 49406, "eos_token_id": 49407, "hidden_act": "quick_gelu",
       "hidden_size": 512, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 2048,
       "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model", "num_attention_heads": 8,
       "num_hidden_layers": 12, "pad_token_id": 1, "projection_dim": 512, "vocab_size": 49408},
     "vision_config": {"attention_dropout": 0.0, "hidden_act": "quick_gelu", "hidden_size": 768, "image_size": 224,
       "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
       "model_type": "clip_vision_model", "num_attention_heads": 12, "num_channels": 3, "num_hidden_layers": 12,
       "patch_size": 32, "projection_dim": 512}}
    """#

    /// `ResNetConfig().to_json_string()` from transformers 5.23, reduced to the fields we model.
    private let transformersDefaultResNet = #"""
    {"model_type": "resnet", "depths": [3, 4, 6, 3], "downsample_in_bottleneck": false, "downsample_in_first_stage": false,
     "embedding_size": 64, "hidden_act": "relu", "hidden_sizes": [256, 512, 1024, 2048], "layer_type": "bottleneck",
     "num_channels": 3}
    """#

    @Test func missingKeysTakeTransformersDefaults() throws {
        #expect(try CLIPConfig.decode(Data(#"{"model_type": "clip"}"#.utf8)) == CLIPConfig.decode(Data(transformersDefaultCLIP.utf8)))
        #expect(try CLIPConfig.decode(Data(#"{"text_config": {}, "vision_config": {}}"#.utf8)) == CLIPConfig.decode(Data(transformersDefaultCLIP.utf8)))
        #expect(try ResNetConfig.decode(Data(#"{"model_type": "resnet"}"#.utf8)) == ResNetConfig.decode(Data(transformersDefaultResNet.utf8)))
    }

    /// Like transformers, a legacy `text_config_dict` replaces `text_config` entirely.
    @Test func legacyConfigDictWins() throws {
        let json = #"{"model_type": "clip", "text_config": {"hidden_size": 64, "num_attention_heads": 4}, "text_config_dict": {"hidden_size": 32}, "vision_config": {"hidden_size": 48, "num_attention_heads": 4, "image_size": [64, 64], "patch_size": 16}}"#
        let config = try CLIPConfig.decode(Data(json.utf8))
        #expect(config.textConfig.hiddenSize == 32)
        #expect(config.textConfig.numAttentionHeads == CLIPTextConfig().numAttentionHeads)
        #expect(config.visionConfig.hiddenSize == 48)
        #expect(config.visionConfig.imageSize == 64)
        #expect(config.visionConfig.patchSize == 16)
    }

    @Test func invalidConfigsAreTypedErrors() throws {
        #expect(throws: ModelConfigError.self) { try CLIPConfig.decode(Data("{".utf8)) }
        #expect(throws: ModelConfigError.self) { try CLIPConfig.decode(Data(#"{"text_config": {"hidden_size": "big"}}"#.utf8)) }
        #expect(throws: ModelConfigError.self) { try CLIPConfig.decode(Data(#"{"vision_config": {"hidden_size": 50, "num_attention_heads": 3}}"#.utf8)) }
        #expect(throws: ModelConfigError.self) { try ResNetConfig.decode(Data(#"{"layer_type": "preact"}"#.utf8)) }
        #expect(throws: ModelConfigError.self) { try ResNetConfig.decode(Data(#"{"depths": [1, 1], "hidden_sizes": [8]}"#.utf8)) }
        #expect(throws: ModelConfigError.self) { try TimmModelConfig.decode(Data(#"{"num_classes": 3}"#.utf8)) }
        #expect(throws: ModelConfigError.self) { try TimmModelConfig.decode(Data(#"{"architecture": "vgg16", "pretrained_cfg": {"crop_pct": 2}}"#.utf8)) }
        #expect(throws: ModelConfigError.unknownKind(modelType: "bert")) { try modelConfigKind(of: Data(#"{"model_type": "bert"}"#.utf8)) }
        #expect(throws: ModelConfigError.notAnObject) { try modelConfigKind(of: Data("[1]".utf8)) }
    }

    /// The tiny checkpoints' config.json files parse, and every field we model equals the value in the file.
    @Test func tinyCheckpointConfigsParse() throws {
        let clipURL = checkpointsRoot.appendingPathComponent("clip/config.json")
        #expect(try modelConfigKind(of: Data(contentsOf: clipURL)) == .clip)
        let clip = try CLIPConfig.load(from: clipURL)
        let clipJSON = try #require(try readJSON(clipURL) as? [String: Any])
        let text = try #require(clipJSON["text_config"] as? [String: Any])
        let vision = try #require(clipJSON["vision_config"] as? [String: Any])
        #expect(clip.textConfig.hiddenSize == text["hidden_size"] as? Int)
        #expect(clip.textConfig.intermediateSize == text["intermediate_size"] as? Int)
        #expect(clip.textConfig.numHiddenLayers == text["num_hidden_layers"] as? Int)
        #expect(clip.textConfig.numAttentionHeads == text["num_attention_heads"] as? Int)
        #expect(clip.textConfig.vocabSize == text["vocab_size"] as? Int)
        #expect(clip.textConfig.hiddenAct == text["hidden_act"] as? String)
        #expect(clip.textConfig.eosTokenID == text["eos_token_id"] as? Int)
        #expect(clip.visionConfig.hiddenSize == vision["hidden_size"] as? Int)
        #expect(clip.visionConfig.patchSize == vision["patch_size"] as? Int)
        #expect(clip.visionConfig.imageSize == vision["image_size"] as? Int)
        #expect(clip.visionConfig.layerNormEps == vision["layer_norm_eps"] as? Double)
        #expect(clip.projectionDim == clipJSON["projection_dim"] as? Int)
        #expect(throws: ModelConfigError.wrongKind(expected: .resnet, found: .clip)) { try ResNetConfig.load(from: clipURL) }

        let resnetURL = checkpointsRoot.appendingPathComponent("resnet50/config.json")
        #expect(try modelConfigKind(of: Data(contentsOf: resnetURL)) == .resnet)
        let resnet = try ResNetConfig.load(from: resnetURL)
        let resnetJSON = try #require(try readJSON(resnetURL) as? [String: Any])
        #expect(resnet.hiddenSizes == resnetJSON["hidden_sizes"] as? [Int])
        #expect(resnet.depths == resnetJSON["depths"] as? [Int])
        #expect(resnet.embeddingSize == resnetJSON["embedding_size"] as? Int)
        #expect(resnet.layerType.rawValue == resnetJSON["layer_type"] as? String)
        #expect(resnet.downsampleInBottleneck == resnetJSON["downsample_in_bottleneck"] as? Bool)

        let vggURL = checkpointsRoot.appendingPathComponent("vgg16/config.json")
        #expect(try modelConfigKind(of: Data(contentsOf: vggURL)) == .timm)
        let vgg = try TimmModelConfig.load(from: vggURL)
        let vggJSON = try #require(try readJSON(vggURL) as? [String: Any])
        let pretrained = try #require(vggJSON["pretrained_cfg"] as? [String: Any])
        #expect(vgg.architecture == vggJSON["architecture"] as? String)
        #expect(vgg.numClasses == vggJSON["num_classes"] as? Int)
        #expect(vgg.pretrainedCfg.inputSize == pretrained["input_size"] as? [Int])
        #expect(vgg.pretrainedCfg.interpolation == pretrained["interpolation"] as? String)
        #expect(vgg.pretrainedCfg.cropPct == pretrained["crop_pct"] as? Double)
        #expect(vgg.pretrainedCfg.mean == pretrained["mean"] as? [Double])
        #expect(vgg.pretrainedCfg.std == pretrained["std"] as? [Double])
        guard case .object(let raw) = vgg.pretrainedCfgRaw else {
            Issue.record("pretrained_cfg not kept as raw JSON")
            return
        }
        #expect(Set(raw.keys) == Set(pretrained.keys))
    }
}

/// Tests/Fixtures/checkpoints, found from this file's path.
private let checkpointsRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/checkpoints")

private func readJSON(_ url: URL) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(contentsOf: url))
}
