// The transformer blocks shared by both CLIP towers, one type per checkpoint sub-module (as candle's
// clip/text_model.rs and vision_model.rs do), reproducing transformers 5.23 models/clip/modeling_clip.py:
// CLIPAttention (eager path), CLIPMLP, CLIPEncoderLayer (pre-norm residual blocks) and CLIPEncoder.
import Embedding
import PosterSimCore
import TensorFiles
import Tensors

/// The activation named by `hidden_act`, fused into `mlp.fc1` as a matmul post-op.
func clipActivation(_ name: String) throws -> Activation {
    switch name {
    case "quick_gelu": return .quickGelu      // x·sigmoid(1.702x), OpenAI's checkpoints
    case "gelu": return .gelu                 // exact erf GELU
    default: throw ModelError.unsupportedConfig("hidden_act '\(name)' (supported: quick_gelu, gelu)")
    }
}

/// `nn.LayerNorm` parameters under `<prefix>weight` / `<prefix>bias`.
struct CLIPLayerNorm: Sendable {
    let weight: [Float]
    let bias: [Float]
    let eps: Float

    init(_ weights: CLIPWeights, prefix: String, dim: Int, eps: Double) throws {
        weight = try weights.values(prefix + "weight", shape: [dim])
        bias = try weights.values(prefix + "bias", shape: [dim])
        self.eps = Float(eps)
    }

    func callAsFunction(_ x: Tensor, workspace: Workspace) throws -> Tensor {
        try layerNorm(x, weight: weight, bias: bias, eps: eps, workspace: workspace)
    }
}

/// `nn.Linear` under `<prefix>weight` (`[out, in]`) and optionally `<prefix>bias`, with a fused activation, at
/// `precision` (default: the towers' precision, `weights.precision`).
func clipLinear(_ weights: CLIPWeights, prefix: String, out: Int, in inFeatures: Int, bias: Bool = true,
                activation: Activation = .identity, expectedRows: Int, precision: Precision? = nil,
                bf16Output: Bool = false) throws -> Linear {
    let weight = try weights.values(prefix + "weight", shape: [out, inFeatures])
    let biasValues = bias ? try weights.values(prefix + "bias", shape: [out]) : nil
    return try Linear(weight: weight, outFeatures: out, inFeatures: inFeatures, bias: biasValues,
                      activation: activation, expectedRows: expectedRows, precision: precision ?? weights.precision,
                      bf16Output: bf16Output)
}

/// `self_attn.`: q/k/v/out projections with biases. q, k and v are concatenated at load into one
/// `[3·dim, dim]` matmul, so each layer runs one large GEMM over all `batch·tokens` rows.
public final class CLIPAttention: Sendable {
    public let dim: Int
    public let heads: Int
    let qkv: Linear
    let outProj: Linear

    init(_ weights: CLIPWeights, prefix: String, dim: Int, heads: Int, expectedRows: Int) throws {
        guard heads >= 1, dim % heads == 0 else {
            throw ModelError.unsupportedConfig("hidden size \(dim) is not divisible by \(heads) heads")
        }
        self.dim = dim
        self.heads = heads
        var fusedWeight: [Float] = []
        var fusedBias: [Float] = []
        fusedWeight.reserveCapacity(3 * dim * dim)
        for projection in ["q_proj.", "k_proj.", "v_proj."] {
            fusedWeight += try weights.values(prefix + projection + "weight", shape: [dim, dim])
            fusedBias += try weights.values(prefix + projection + "bias", shape: [dim])
        }
        qkv = try Linear(weight: fusedWeight, outFeatures: 3 * dim, inFeatures: dim, bias: fusedBias,
                         expectedRows: expectedRows, precision: weights.precision)
        outProj = try clipLinear(weights, prefix: prefix + "out_proj.", out: dim, in: dim, expectedRows: expectedRows)
    }

    /// `x` is `[batch, tokens, dim]`; with `queryRows`, only those positions are computed (see `fusedAttention`).
    func callAsFunction(_ x: Tensor, causal: Bool, queryRows: [[Int]]?, workspace: Workspace) throws -> Tensor {
        let projected = try qkv(x, workspace: workspace)
        let context = try fusedAttention(projected, heads: heads, causal: causal, queryRows: queryRows,
                                         workspace: workspace)
        return try outProj(context, workspace: workspace)
    }
}

/// `mlp.`: fc1 with the activation fused as a post-op, then fc2.
public final class CLIPMLP: Sendable {
    let fc1: Linear
    let fc2: Linear

    init(_ weights: CLIPWeights, prefix: String, dim: Int, intermediate: Int, activation: Activation,
         expectedRows: Int) throws {
        // At bf16, fc1's output is read only by fc2, so it stays bfloat16 (no float32 round trip in between).
        fc1 = try clipLinear(weights, prefix: prefix + "fc1.", out: intermediate, in: dim, activation: activation,
                             expectedRows: expectedRows, bf16Output: true)
        fc2 = try clipLinear(weights, prefix: prefix + "fc2.", out: dim, in: intermediate, expectedRows: expectedRows)
    }

    func callAsFunction(_ x: Tensor, workspace: Workspace) throws -> Tensor {
        try fc2(fc1(x, workspace: workspace), workspace: workspace)
    }
}

/// `encoder.layers.N.`: x + attn(layer_norm1(x)), then h + mlp(layer_norm2(h)).
public final class CLIPEncoderLayer: Sendable {
    let layerNorm1: CLIPLayerNorm
    let selfAttention: CLIPAttention
    let layerNorm2: CLIPLayerNorm
    let mlp: CLIPMLP

    init(_ weights: CLIPWeights, prefix: String, dim: Int, heads: Int, intermediate: Int, activation: Activation,
         eps: Double, expectedRows: Int) throws {
        layerNorm1 = try CLIPLayerNorm(weights, prefix: prefix + "layer_norm1.", dim: dim, eps: eps)
        selfAttention = try CLIPAttention(weights, prefix: prefix + "self_attn.", dim: dim, heads: heads,
                                          expectedRows: expectedRows)
        layerNorm2 = try CLIPLayerNorm(weights, prefix: prefix + "layer_norm2.", dim: dim, eps: eps)
        mlp = try CLIPMLP(weights, prefix: prefix + "mlp.", dim: dim, intermediate: intermediate,
                          activation: activation, expectedRows: expectedRows)
    }

    /// Runs the block on `x` = `[batch, tokens, dim]`. Temporaries go to `scratch`; the result is allocated in
    /// `output` so the caller can rewind `scratch` afterwards. With `queryRows` (one list per sequence), only those
    /// positions are produced: `[batch, queryRows[0].count, dim]` (exact, since every step after attention is
    /// row-wise).
    func callAsFunction(_ x: Tensor, causal: Bool, queryRows: [[Int]]? = nil, scratch: Workspace,
                        output: Workspace) throws -> Tensor {
        let attention = try selfAttention(layerNorm1(x, workspace: scratch), causal: causal, queryRows: queryRows,
                                          workspace: scratch)
        var residual = x
        if let queryRows, let count = queryRows.first?.count {
            let tokens = x.shape[1]
            let flat = queryRows.enumerated().flatMap { b, rows in rows.map { b * tokens + $0 } }
            residual = try gatherRows(x, indices: flat, workspace: scratch).reshaped([x.shape[0], count, x.shape[2]])
        }
        let hidden = try add(residual, attention, workspace: scratch)
        let transformed = try mlp(layerNorm2(hidden, workspace: scratch), workspace: scratch)
        return try add(hidden, transformed, workspace: output)
    }
}

/// `encoder.`: the stack of `CLIPEncoderLayer`s.
///
/// Memory: hidden states alternate between two small workspaces while each block's temporaries live in a third
/// that is rewound after every block, so a forward pass needs one block's worth of scratch, not twelve.
public final class CLIPEncoder: Sendable {
    public let layers: [CLIPEncoderLayer]

    init(_ weights: CLIPWeights, prefix: String, count: Int, dim: Int, heads: Int, intermediate: Int,
         activation: Activation, eps: Double, expectedRows: Int) throws {
        layers = try (0..<count).map { index in
            let layer = try CLIPEncoderLayer(weights, prefix: "\(prefix)layers.\(index).", dim: dim, heads: heads,
                                             intermediate: intermediate, activation: activation, eps: eps,
                                             expectedRows: expectedRows)
            // The layer holds packed copies now; dropping the file's pages as we go keeps the load's peak near the
            // packed size instead of packed + mapped.
            weights.reader.dropResidentPages()
            return layer
        }
    }

    /// Runs every layer on `x` (which lives in `states.0`). When `pooledRows` is given, the last layer computes only
    /// those positions. The result lives in `states.0` or `states.1`; `scratch` is rewound after every layer.
    func callAsFunction(_ x: Tensor, causal: Bool, pooledRows: [[Int]]?, scratch: Workspace,
                        states: (Workspace, Workspace)) throws -> Tensor {
        var current = x
        for (index, layer) in layers.enumerated() {
            // The target holds nothing still needed: `current` lives in the other state workspace.
            let target = index % 2 == 0 ? states.1 : states.0
            target.reset()
            current = try layer(current, causal: causal, queryRows: index == layers.count - 1 ? pooledRows : nil,
                                scratch: scratch, output: target)
            scratch.reset()
        }
        return current
    }
}
