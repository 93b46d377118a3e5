// CLIP image tower: transformers 5.23 models/clip/modeling_clip.py CLIPVisionEmbeddings + CLIPVisionTransformer
// (called CLIPVisionModel's inner model there): patch conv (no bias, stride = patch) → [CLS; patches] + positions →
// pre_layrnorm → encoder → post_layernorm of the CLS token.
import Embedding
import TensorFiles
import Tensors

/// `vision_model.embeddings.`: `patch_embedding.weight` `[dim, channels, patch, patch]`, `class_embedding` `[dim]`,
/// `position_embedding.weight` `[1 + patches, dim]`. The patch conv runs as one GEMM over `batch·patches` im2col rows.
public final class CLIPVisionEmbeddings: Sendable {
    public let dim: Int
    public let channels: Int
    public let imageSize: Int
    public let patchSize: Int
    public var patchCount: Int { (imageSize / patchSize) * (imageSize / patchSize) }
    let patchEmbedding: Linear
    let classEmbedding: FloatTensor
    let positionEmbedding: FloatTensor

    init(_ weights: CLIPWeights, prefix: String, config: CLIPVisionConfig, expectedBatch: Int) throws {
        dim = config.hiddenSize
        channels = config.numChannels
        imageSize = config.imageSize
        patchSize = config.patchSize
        let grid = imageSize / patchSize
        guard grid >= 1, grid <= 4096 else {
            throw ModelError.unsupportedConfig("image_size \(imageSize) with patch_size \(patchSize)")
        }
        let kernel = [dim, channels, patchSize, patchSize]
        // The conv weight [out, c, kh, kw] is, flattened, the [out, c·kh·kw] matrix of the im2col GEMM.
        patchEmbedding = try Linear(weight: weights.values(prefix + "patch_embedding.weight", shape: kernel),
                                    outFeatures: dim, inFeatures: channels * patchSize * patchSize, bias: nil,
                                    expectedRows: expectedBatch * grid * grid, precision: weights.precision)
        classEmbedding = try weights.tensor(prefix + "class_embedding", shape: [dim])
        positionEmbedding = try weights.tensor(prefix + "position_embedding.weight", shape: [grid * grid + 1, dim])
    }

    /// `pixels` NCHW `[batch, channels, imageSize, imageSize]` → `[batch, 1 + patches, dim]`.
    func callAsFunction(_ pixels: UnsafeBufferPointer<Float>, batch: Int, workspace: Workspace) throws -> Tensor {
        let rows = try patchRows(pixels: pixels, batch: batch, channels: channels, height: imageSize,
                                 width: imageSize, patch: patchSize, workspace: workspace)
        let patches = try patchEmbedding(rows, workspace: workspace)
        return try classEmbedding.withUnsafeBufferPointer { cls in
            try positionEmbedding.withUnsafeBufferPointer { positions in
                try visionTokens(patches: patches, batch: batch, classEmbedding: cls, positionEmbedding: positions,
                                 workspace: workspace)
            }
        }
    }
}

/// `vision_model.`: embeddings, `pre_layrnorm` (sic, the checkpoint's spelling), `encoder`, `post_layernorm`.
/// Produces the pooled output (post-layernormed CLS token), `[batch, hidden]`.
public final class CLIPVisionTransformer: Sendable {
    public let config: CLIPVisionConfig
    public let embeddings: CLIPVisionEmbeddings
    let preLayerNorm: CLIPLayerNorm
    public let encoder: CLIPEncoder
    let postLayerNorm: CLIPLayerNorm

    init(_ weights: CLIPWeights, prefix: String, config: CLIPVisionConfig, expectedBatch: Int) throws {
        self.config = config
        let dim = config.hiddenSize
        let tokens = (config.imageSize / max(config.patchSize, 1)) * (config.imageSize / max(config.patchSize, 1)) + 1
        embeddings = try CLIPVisionEmbeddings(weights, prefix: prefix + "embeddings.", config: config,
                                              expectedBatch: expectedBatch)
        preLayerNorm = try CLIPLayerNorm(weights, prefix: prefix + "pre_layrnorm.", dim: dim, eps: config.layerNormEps)
        encoder = try CLIPEncoder(weights, prefix: prefix + "encoder.", count: config.numHiddenLayers, dim: dim,
                                  heads: config.numAttentionHeads, intermediate: config.intermediateSize,
                                  activation: clipActivation(config.hiddenAct), eps: config.layerNormEps,
                                  expectedRows: expectedBatch * tokens)
        postLayerNorm = try CLIPLayerNorm(weights, prefix: prefix + "post_layernorm.", dim: dim,
                                          eps: config.layerNormEps)
    }

    /// Pooled output `[batch, hidden]` for NCHW pixels. Only the CLS position goes through the last block's
    /// output projection and MLP (the other positions are discarded by the pooling anyway).
    func pooled(_ pixels: UnsafeBufferPointer<Float>, batch: Int, scratch: Workspace,
                states: (Workspace, Workspace)) throws -> Tensor {
        let tokens = try embeddings(pixels, batch: batch, workspace: scratch)
        let input = try preLayerNorm(tokens, workspace: states.0)
        scratch.reset()
        let cls = Array(repeating: [0], count: batch)
        var hidden = try encoder(input, causal: false, pooledRows: cls, scratch: scratch, states: states)
        if encoder.layers.isEmpty {
            hidden = try gatherRows(hidden, indices: (0..<batch).map { $0 * hidden.shape[1] }, workspace: scratch)
        }
        return try postLayerNorm(hidden.reshaped([batch, config.hiddenSize]), workspace: scratch)
    }
}
