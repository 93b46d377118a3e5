import CDNNL

/// Multi-head self-attention as in transformers' `CLIPAttention` (eager path): q, k, v projections, per head
/// softmax(q·kᵀ·head_dim^−½ [+ causal mask]) · v, then the output projection.
///
/// The three input projections are fused into one matmul (weights concatenated at load). The per-head products
/// are small (T×T×64) and run as `dnnl_sgemm` calls on strided views of the fused projection, no copies.
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
        let (batch, tokens, d) = (input.shape[0], input.shape[1], embedDim)
        let qkv = try inputProjection(input, workspace: workspace)    // [batch, tokens, 3d]
        let context = try workspace.makeTensor(shape: [batch, tokens, d])
        let scores = try workspace.makeTensor(shape: [tokens, tokens])
        let scale = 1 / Float(headDim).squareRoot()
        let q0 = qkv.storage.floats, s = scores.storage.floats, c0 = context.storage.floats
        let t = Int64(tokens), hd = Int64(headDim), ld = Int64(3 * d)
        for b in 0..<batch {
            for h in 0..<heads {
                let q = q0 + b * tokens * 3 * d + h * headDim, k = q + d, v = q + 2 * d
                try check(dnnl_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "T")), t, t, hd, scale, q, ld, k, ld,
                                     0, s, t), "dnnl_sgemm(q·kᵀ)")
                for row in 0..<tokens {
                    let r = s + row * tokens
                    if causal {
                        // Masked positions get exactly zero weight, as adding the dtype minimum does in transformers.
                        softmaxRow(r, r, count: row + 1)
                        for j in (row + 1)..<tokens { r[j] = 0 }
                    } else {
                        softmaxRow(r, r, count: tokens)
                    }
                }
                try check(dnnl_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "N")), t, hd, t, 1, s, t, v, ld, 0,
                                     c0 + b * tokens * d + h * headDim, Int64(d)), "dnnl_sgemm(p·v)")
            }
        }
        return try outputProjection(context, workspace: workspace)
    }
}
