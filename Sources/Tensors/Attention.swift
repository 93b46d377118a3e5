import CDNNL

/// Multi-head self-attention as in transformers' `CLIPAttention` (eager path): q, k, v projections, per head
/// softmax(q·kᵀ·head_dim^−½ [+ causal mask]) · v, then the output projection.
///
/// The three input projections are fused into one matmul (weights concatenated at load), and the heads run through
/// `fusedAttention`, the same kernel CLIP's encoder layers use (this type is their reference in the kernel tests).
/// Guarantees: immutable after init; safe for concurrent callers with separate workspaces.
public final class MultiHeadAttention: Sendable {
    public let embedDim: Int
    public let heads: Int
    public let headDim: Int
    private let inputProjection: Linear
    private let outputProjection: Linear

    /// Weights are PyTorch `[out, in]` = `[embedDim, embedDim]`; biases `embedDim`.
    public init(embedDim: Int, heads: Int,
                query: (weight: [Float], bias: [Float]), key: (weight: [Float], bias: [Float]),
                value: (weight: [Float], bias: [Float]), output: (weight: [Float], bias: [Float]),
                expectedRows: Int = 50) throws(EngineError) {
        guard embedDim >= 1, heads >= 1, embedDim % heads == 0 else {
            throw .invalidArgument("embed dim \(embedDim) is not divisible by \(heads) heads")
        }
        for part in [query, key, value] where part.weight.count != embedDim * embedDim || part.bias.count != embedDim {
            throw .shapeMismatch("attention projection has \(part.weight.count) weights, \(part.bias.count) biases")
        }
        self.embedDim = embedDim
        self.heads = heads
        headDim = embedDim / heads
        inputProjection = try Linear(weight: query.weight + key.weight + value.weight, outFeatures: 3 * embedDim,
                                     inFeatures: embedDim, bias: query.bias + key.bias + value.bias,
                                     expectedRows: expectedRows)
        outputProjection = try Linear(weight: output.weight, outFeatures: embedDim, inFeatures: embedDim,
                                      bias: output.bias, expectedRows: expectedRows)
    }

    /// `input` is `[batch, tokens, embedDim]`; with `causal`, token i attends to tokens 0...i only.
    public func callAsFunction(_ input: Tensor, causal: Bool, workspace: Workspace) throws(EngineError) -> Tensor {
        guard input.shape.count == 3, input.shape[2] == embedDim else {
            throw .shapeMismatch("attention expects [batch, tokens, \(embedDim)], got \(input.shape)")
        }
        let qkv = try inputProjection(input, workspace: workspace)    // [batch, tokens, 3·embedDim]
        let context = try fusedAttention(qkv, heads: heads, causal: causal, workspace: workspace)
        return try outputProjection(context, workspace: workspace)
    }
}
