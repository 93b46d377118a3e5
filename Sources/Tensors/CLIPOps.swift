// Ops the CLIP towers need that the rest of the tensor layer has no use for: patch extraction (the patch
// convolution runs as one large GEMM over im2col rows instead of a strided conv), the token assembly of the vision
// and text embeddings, row gathering for CLS / end-of-text pooling, and multi-head attention parallel over
// (sequence, head) pairs with a fused QKV input. All are plain row-major loops writing into workspace memory.
// Reference semantics: transformers 5.23 models/clip/modeling_clip.py (CLIPVisionEmbeddings.forward,
// CLIPTextEmbeddings.forward, eager_attention_forward).

import CDNNL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension Workspace {
    /// A plain tensor in this workspace holding a copy of `tensor`'s row-major values (blocked layouts are
    /// reordered). Used to move a result from a scratch workspace into one that outlives it.
    public func copy(_ tensor: Tensor) throws(EngineError) -> Tensor {
        let source = try plain(tensor)
        let result = try makeTensor(shape: source.shape)
        result.storage.floats.update(from: source.storage.floats, count: source.count)
        return result
    }
}

/// Im2col for a convolution whose stride equals its kernel (a ViT patch embedding): `pixels` is NCHW
/// `[batch, channels, height, width]`; the result is `[batch·gridH·gridW, channels·patch·patch]`, one row per
/// patch in row-major grid order, columns in the OIHW order of the conv weight (channel, kernel row, kernel
/// column). Multiplying by the conv weight viewed as `[out, channels·patch·patch]` gives PyTorch's
/// `conv(x).flatten(2).transpose(1, 2)`. Trailing pixels that do not fill a patch are dropped, as the conv does.
public func patchRows(pixels: UnsafeBufferPointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
                      patch: Int, workspace: Workspace) throws(EngineError) -> Tensor {
    guard batch >= 1, channels >= 1, patch >= 1, height >= patch, width >= patch else {
        throw .invalidArgument("patch rows of \(batch)×\(channels)×\(height)×\(width) with patch \(patch)")
    }
    let imageCount = try checkedProduct([channels, height, width])
    guard try checkedProduct([batch, imageCount]) == pixels.count, let source = pixels.baseAddress else {
        throw .shapeMismatch("\(pixels.count) pixel values for \(batch)×\(channels)×\(height)×\(width)")
    }
    let gridH = height / patch, gridW = width / patch
    let columns = try checkedProduct([channels, patch, patch])
    let rows = batch * gridH * gridW
    let result = try workspace.makeTensor(shape: [rows, columns])
    let destination = result.storage.floats
    parallelFor(rows, grain: 8) { row in
        let n = row / (gridH * gridW), cell = row % (gridH * gridW)
        let top = (cell / gridW) * patch, left = (cell % gridW) * patch
        var out = destination + row * columns
        for c in 0..<channels {
            var line = source + n * imageCount + c * height * width + top * width + left
            for _ in 0..<patch {
                out.update(from: line, count: patch)
                out += patch
                line += width
            }
        }
    }
    return result
}

/// CLIP vision token sequence: `[batch, 1 + patches, dim]` with row 0 of each sequence = class embedding and row
/// 1 + i = patch embedding i, each plus its position embedding (transformers: `cat([class, patches]) +
/// position_embedding(position_ids)`, the same single float add per element).
/// - Parameters:
///   - patches: `[batch·patches, dim]` (the output of the patch GEMM).
///   - classEmbedding: `dim` values; positionEmbedding: `(1 + patches)·dim` values.
public func visionTokens(patches: Tensor, batch: Int, classEmbedding: UnsafeBufferPointer<Float>,
                         positionEmbedding: UnsafeBufferPointer<Float>,
                         workspace: Workspace) throws(EngineError) -> Tensor {
    let source = try workspace.plain(patches)
    guard source.shape.count == 2, batch >= 1, source.shape[0] % batch == 0 else {
        throw .shapeMismatch("vision tokens from patches \(source.shape) for batch \(batch)")
    }
    let dim = source.shape[1], perImage = source.shape[0] / batch, tokens = perImage + 1
    guard classEmbedding.count == dim, positionEmbedding.count == tokens * dim,
          let cls = classEmbedding.baseAddress, let positions = positionEmbedding.baseAddress else {
        throw .shapeMismatch("class embedding \(classEmbedding.count), positions \(positionEmbedding.count) for "
                             + "\(tokens) tokens of width \(dim)")
    }
    let result = try workspace.makeTensor(shape: [batch, tokens, dim])
    let x = source.storage.floats, z = result.storage.floats
    parallelFor(batch * tokens, grain: max(1, 8192 / max(dim, 1))) { index in
        let n = index / tokens, t = index % tokens
        let input = t == 0 ? UnsafePointer(cls) : UnsafePointer(x + (n * perImage + t - 1) * dim)
        let position = positions + t * dim, output = z + index * dim
        for i in 0..<dim { output[i] = input[i] + position[i] }
    }
    return result
}

/// CLIP text token sequence: `[batch, length, dim]`, row (n, t) = `table[ids[n·length + t]] + positions[t]`
/// (transformers `token_embedding(input_ids) + position_embedding(position_ids)`).
/// Ids outside `0..<table.count/dim` and lengths beyond the position table are rejected.
public func tokenEmbeddings(ids: [Int], batch: Int, length: Int, table: UnsafeBufferPointer<Float>,
                            positions: UnsafeBufferPointer<Float>, dim: Int,
                            workspace: Workspace) throws(EngineError) -> Tensor {
    guard dim >= 1, batch >= 1, length >= 1, ids.count == batch * length else {
        throw .shapeMismatch("\(ids.count) token ids for \(batch) sequences of \(length)")
    }
    let vocabulary = table.count / dim
    guard positions.count >= length * dim, let tableBase = table.baseAddress, let positionBase = positions.baseAddress
    else { throw .invalidArgument("sequence length \(length) exceeds the \(positions.count / dim) positions") }
    if let bad = ids.first(where: { $0 < 0 || $0 >= vocabulary }) {
        throw .invalidArgument("token id \(bad) outside the vocabulary of \(vocabulary)")
    }
    let result = try workspace.makeTensor(shape: [batch, length, dim])
    let z = result.storage.floats
    ids.withUnsafeBufferPointer { idBuffer in
        nonisolated(unsafe) let idBuffer = idBuffer
        parallelFor(batch * length, grain: max(1, 8192 / dim)) { index in
            let token = tableBase + idBuffer[index] * dim, position = positionBase + (index % length) * dim
            let output = z + index * dim
            for i in 0..<dim { output[i] = token[i] + position[i] }
        }
    }
    return result
}

/// Rows `indices` of `input` viewed as `[rows, last]`: the result is `[indices.count, last]`.
public func gatherRows(_ input: Tensor, indices: [Int], workspace: Workspace) throws(EngineError) -> Tensor {
    let source = try workspace.plain(input)
    guard let dim = source.shape.last, dim >= 1 else { throw .shapeMismatch("gather rows of \(source.shape)") }
    let rows = source.count / dim
    if let bad = indices.first(where: { $0 < 0 || $0 >= rows }) {
        throw .invalidArgument("row \(bad) outside 0..<\(rows)")
    }
    let result = try workspace.makeTensor(shape: [max(indices.count, 0), dim])
    for (i, row) in indices.enumerated() {
        (result.storage.floats + i * dim).update(from: source.storage.floats + row * dim, count: dim)
    }
    return result
}

/// Scaled dot-product attention over a fused projection `qkv` = `[batch, tokens, 3·dim]` (q | k | v, each split
/// into `heads` heads of `dim/heads` columns, as transformers' `view(..., -1, head_dim)`):
/// per head softmax(q·kᵀ·scale [+ causal mask]) · v, returned as `[batch, tokens, dim]` with heads concatenated.
/// With `queryRows`, only those token positions of each sequence are computed as queries (keys and values still
/// cover every token), giving `[batch, queryRows.count, dim]` — the last layer of a tower only needs its pooled
/// token. The (sequence, head) pairs run in parallel on all cores, each with its own score buffer.
/// Masked positions get exactly zero weight, as adding the dtype minimum before the softmax does.
public func fusedAttention(_ qkv: Tensor, heads: Int, causal: Bool, queryRows: [[Int]]? = nil,
                           workspace: Workspace) throws(EngineError) -> Tensor {
    let source = try workspace.plain(qkv)
    guard source.shape.count == 3, heads >= 1, source.shape[2] % (3 * heads) == 0 else {
        throw .shapeMismatch("fused attention over \(source.shape) with \(heads) heads")
    }
    let (batch, tokens, dim) = (source.shape[0], source.shape[1], source.shape[2] / 3)
    let headDim = dim / heads
    let queries: [[Int]] = queryRows ?? Array(repeating: Array(0..<tokens), count: batch)
    guard queries.count == batch, let queryCount = queries.first?.count,
          queries.allSatisfy({ $0.count == queryCount && $0.allSatisfy { (0..<tokens).contains($0) } }) else {
        throw .invalidArgument("attention query rows must list the same number of positions in 0..<\(tokens)")
    }
    let context = try workspace.makeTensor(shape: [batch, queryCount, dim])
    let pairs = batch * heads
    let workers = min(ProcessInfoCores.count, pairs)
    let scoreBuffers = try workspace.makeTensor(shape: [workers, queryCount * tokens])
    let scale = 1 / Float(headDim).squareRoot()
    let q0 = source.storage.floats, c0 = context.storage.floats, s0 = scoreBuffers.storage.floats
    let ld = 3 * dim
    let failure = Mutex<EngineError?>(nil)
    do {
        parallelFor(workers, grain: 1) { worker in
            let scores = s0 + worker * queryCount * tokens
            for pair in (pairs * worker / workers)..<(pairs * (worker + 1) / workers) {
                let b = pair / heads, h = pair % heads
                let base = q0 + b * tokens * ld + h * headDim
                let keys = base + dim, values = base + 2 * dim
                let rows = queries[b]
                // Scores for the requested query rows: one GEMM when they are all rows, else row by row.
                let status: dnnl_status_t
                if queryRows == nil {
                    status = dnnl_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "T")), Int64(tokens),
                                        Int64(tokens), Int64(headDim), scale, base, Int64(ld), keys, Int64(ld), 0,
                                        scores, Int64(tokens))
                } else {
                    var last = dnnl_success
                    for (i, row) in rows.enumerated() where last == dnnl_success {
                        last = dnnl_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "T")), 1, Int64(tokens),
                                          Int64(headDim), scale, base + row * ld, Int64(ld), keys, Int64(ld), 0,
                                          scores + i * tokens, Int64(tokens))
                    }
                    status = last
                }
                if status == dnnl_success {
                    for (i, row) in rows.enumerated() {
                        let r = scores + i * tokens
                        if causal {
                            softmaxRow(r, r, count: row + 1)
                            for j in (row + 1)..<tokens { r[j] = 0 }
                        } else {
                            softmaxRow(r, r, count: tokens)
                        }
                    }
                }
                let second = status == dnnl_success
                    ? dnnl_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "N")), Int64(queryCount), Int64(headDim),
                                 Int64(tokens), 1, scores, Int64(tokens), values, Int64(ld), 0,
                                 c0 + b * queryCount * dim + h * headDim, Int64(dim))
                    : status
                if second != dnnl_success {
                    failure.withLock { $0 = .dnnl(call: "dnnl_sgemm(attention)", status: statusName(second)) }
                }
            }
        }
    }
    if let error = failure.withLock({ $0 }) { throw error }
    return context
}
