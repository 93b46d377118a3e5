import Foundation
import TensorFiles
import Tensors

// CLIP image tower as transformers' `CLIPModel.get_image_features` computes it (reference:
// transformers/models/clip/modeling_clip.py — CLIPVisionEmbeddings, CLIPEncoderLayer, CLIPVisionTransformer):
// patch conv (stride = patch, no bias) + class token + position embeddings → pre_layrnorm → pre-LN encoder layers
// (self-attention, MLP with quick_gelu or gelu) → post_layernorm of the class token → visual_projection (no bias).
// The patch conv is computed as a matmul over extracted patches (same weights, flattened C·P·P), the activation
// is fused into mlp.fc1, and q/k/v are one fused projection (see `MultiHeadAttention`).

/// `CLIPEncoderLayer`: h += attn(ln1(h)); h += fc2(act(fc1(ln2(h)))).
struct CLIPEncoderLayer: Sendable {
    let layerNorm1: (weight: [Float], bias: [Float])
    let layerNorm2: (weight: [Float], bias: [Float])
    let attention: MultiHeadAttention
    let fc1: Linear
    let fc2: Linear
    let eps: Float

    init(_ store: some CheckpointReader, prefix: String, hidden: Int, intermediate: Int, heads: Int,
         activation: Activation, eps: Float, tokens: Int) throws {
        func pair(_ name: String, _ shape: [Int]) throws -> (weight: [Float], bias: [Float]) {
            (try store.values("\(prefix).\(name).weight", shape: shape), try store.values("\(prefix).\(name).bias", shape: [shape[0]]))
        }
        layerNorm1 = try pair("layer_norm1", [hidden])
        layerNorm2 = try pair("layer_norm2", [hidden])
        attention = try MultiHeadAttention(embedDim: hidden, heads: heads,
                                           query: try pair("self_attn.q_proj", [hidden, hidden]),
                                           key: try pair("self_attn.k_proj", [hidden, hidden]),
                                           value: try pair("self_attn.v_proj", [hidden, hidden]),
                                           output: try pair("self_attn.out_proj", [hidden, hidden]), expectedRows: tokens)
        let first = try pair("mlp.fc1", [intermediate, hidden]), second = try pair("mlp.fc2", [hidden, intermediate])
        fc1 = try Linear(weight: first.weight, outFeatures: intermediate, inFeatures: hidden, bias: first.bias,
                         activation: activation, expectedRows: tokens)
        fc2 = try Linear(weight: second.weight, outFeatures: hidden, inFeatures: intermediate, bias: second.bias,
                         expectedRows: tokens)
        self.eps = eps
    }

    func callAsFunction(_ input: Tensor, causal: Bool, workspace: Workspace) throws -> Tensor {
        let normed1 = try layerNorm(input, weight: layerNorm1.weight, bias: layerNorm1.bias, eps: eps, workspace: workspace)
        let attended = try add(input, attention(normed1, causal: causal, workspace: workspace), workspace: workspace)
        let normed2 = try layerNorm(attended, weight: layerNorm2.weight, bias: layerNorm2.bias, eps: eps, workspace: workspace)
        return try add(attended, fc2(fc1(normed2, workspace: workspace), workspace: workspace), workspace: workspace)
    }
}

func clipActivation(_ name: String) throws -> Activation {
    switch name {
    case "quick_gelu": return .quickGelu
    case "gelu": return .gelu
    default: throw ModelError.unsupportedConfig("hidden_act \(name)")
    }
}

/// CLIP image features (`get_image_features`), config-driven (ViT-B/32, ViT-L/14, tiny test models).
///
/// Guarantees: immutable after load; `embed` is safe to call concurrently; batch results equal one-by-one results.
public final class CLIPVisionModel: Sendable {
    public let config: CLIPVisionConfig
    public let dimension: Int
    let patchEmbedding: Linear
    let classEmbedding: [Float]
    let positionEmbedding: [Float]
    let preLayerNorm: (weight: [Float], bias: [Float])
    let postLayerNorm: (weight: [Float], bias: [Float])
    let layers: [CLIPEncoderLayer]
    let projection: Linear
    private let workspaces = WorkspacePool()

    var grid: Int { config.imageSize / config.patchSize }
    var tokens: Int { grid * grid + 1 }

    public init(config: CLIPVisionConfig, projectionDim: Int, checkpoint store: some CheckpointReader) throws {
        let c = config
        guard c.hiddenSize >= 1, c.numAttentionHeads >= 1, c.hiddenSize % c.numAttentionHeads == 0, c.patchSize >= 1,
              c.imageSize >= c.patchSize, c.numHiddenLayers >= 0, c.intermediateSize >= 1, projectionDim >= 1 else {
            throw ModelError.unsupportedConfig("CLIP vision config \(c)")
        }
        self.config = c
        dimension = projectionDim
        let d = c.hiddenSize, p = c.patchSize, g = c.imageSize / c.patchSize
        let activation = try clipActivation(c.hiddenAct)
        let eps = Float(c.layerNormEps)
        let root = "vision_model"
        patchEmbedding = try Linear(weight: try store.values("\(root).embeddings.patch_embedding.weight",
                                                             shape: [d, c.numChannels, p, p]),
                                    outFeatures: d, inFeatures: c.numChannels * p * p, bias: nil, expectedRows: g * g)
        classEmbedding = try store.values("\(root).embeddings.class_embedding", shape: [d])
        positionEmbedding = try store.values("\(root).embeddings.position_embedding.weight", shape: [g * g + 1, d])
        preLayerNorm = (try store.values("\(root).pre_layrnorm.weight", shape: [d]),
                        try store.values("\(root).pre_layrnorm.bias", shape: [d]))
        postLayerNorm = (try store.values("\(root).post_layernorm.weight", shape: [d]),
                         try store.values("\(root).post_layernorm.bias", shape: [d]))
        layers = try (0..<c.numHiddenLayers).map {
            try CLIPEncoderLayer(store, prefix: "\(root).encoder.layers.\($0)", hidden: d, intermediate: c.intermediateSize,
                                 heads: c.numAttentionHeads, activation: activation, eps: eps, tokens: g * g + 1)
        }
        projection = try Linear(weight: try store.values("visual_projection.weight", shape: [projectionDim, d]),
                                outFeatures: projectionDim, inFeatures: d, bias: nil)
    }

    /// Loads a transformers CLIP checkpoint directory (`config.json` + `model.safetensors`/`pytorch_model.bin`).
    public convenience init(directory: URL) throws {
        let config = try CLIPConfig.load(from: directory.appendingPathComponent("config.json"))
        let safetensors = directory.appendingPathComponent("model.safetensors")
        let weights = FileManager.default.fileExists(atPath: safetensors.path)
            ? safetensors : directory.appendingPathComponent("pytorch_model.bin")
        try self.init(config: config.visionConfig, projectionDim: config.projectionDim,
                      checkpoint: try openCheckpoint(at: weights))
    }

    /// Image features for `[N, channels, imageSize, imageSize]` pixels; returns `[N, projectionDim]`.
    public func callAsFunction(_ pixels: Tensor, workspace: Workspace) throws -> Tensor {
        let c = config, size = c.imageSize, p = c.patchSize, g = grid, d = c.hiddenSize, t = tokens
        guard pixels.shape == [pixels.shape.first ?? 0, c.numChannels, size, size], pixels.shape[0] >= 1 else {
            throw ModelError.badInput("expected [N, \(c.numChannels), \(size), \(size)] pixels, got \(pixels.shape)")
        }
        let n = pixels.shape[0], channels = c.numChannels
        // Patches in the conv weight's (C, ky, kx) order: the stride-P conv is a matmul over them.
        let patches = try pixels.withUnsafeFloats { source in
            try workspace.makeTensor(shape: [n * g * g, channels * p * p]) { out in
                var o = 0
                for image in 0..<n { for gy in 0..<g { for gx in 0..<g { for ch in 0..<channels { for ky in 0..<p {
                    let row = ((image * channels + ch) * size + gy * p + ky) * size + gx * p
                    for kx in 0..<p { out[o + kx] = source[row + kx] }
                    o += p
                } } } } }
            }
        }
        let patchEmbeds = try patchEmbedding(patches, workspace: workspace)
        let embeddings = try patchEmbeds.withUnsafeFloats { patchValues in
            try workspace.makeTensor(shape: [n, t, d]) { out in
                for image in 0..<n {
                    for token in 0..<t {
                        let base = (image * t + token) * d
                        for i in 0..<d {
                            let value = token == 0 ? classEmbedding[i] : patchValues[(image * g * g + token - 1) * d + i]
                            out[base + i] = value + positionEmbedding[token * d + i]
                        }
                    }
                }
            }
        }
        let eps = Float(c.layerNormEps)
        var hidden = try layerNorm(embeddings, weight: preLayerNorm.weight, bias: preLayerNorm.bias, eps: eps,
                                   workspace: workspace)
        for layer in layers { hidden = try layer(hidden, causal: false, workspace: workspace) }
        let classTokens = try hidden.withUnsafeFloats { values in
            try workspace.makeTensor(shape: [n, d]) { out in
                for image in 0..<n { for i in 0..<d { out[image * d + i] = values[image * t * d + i] } }
            }
        }
        let pooled = try layerNorm(classTokens, weight: postLayerNorm.weight, bias: postLayerNorm.bias, eps: eps,
                                   workspace: workspace)
        return try projection(pooled, workspace: workspace)
    }

    /// Embeds `count` preprocessed images (channels×imageSize×imageSize each, back to back).
    public func embed(pixels: [Float], count: Int) throws -> [[Float]] {
        let size = config.imageSize, channels = config.numChannels
        guard count >= 1, pixels.count / count / size / size == channels, pixels.count == count * channels * size * size else {
            throw ModelError.badInput("\(pixels.count) values for \(count) images of \(channels)×\(size)×\(size)")
        }
        let input = try Tensor(shape: [count, channels, size, size], values: pixels)
        let flat = try workspaces.withWorkspace { workspace in try self(input, workspace: workspace).toArray() }
        return (0..<count).map { Array(flat[($0 * dimension)..<(($0 + 1) * dimension)]) }
    }
}
