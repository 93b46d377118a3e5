// CLIP text tower: transformers 5.23 models/clip/modeling_clip.py CLIPTextEmbeddings + CLIPTextTransformer
// (CLIPTextModel's forward there): token + position embeddings → causal encoder → final_layer_norm → the hidden
// state at the end-of-text token.
import TensorFiles
import Tensors

/// `text_model.embeddings.`: `token_embedding.weight` `[vocab, dim]` and `position_embedding.weight`
/// `[max_positions, dim]`, kept as read from the checkpoint (memory-mapped when the file allows).
public final class CLIPTextEmbeddings: Sendable {
    public let dim: Int
    public let vocabularySize: Int
    public let maxPositions: Int
    let tokenEmbedding: FloatTensor
    let positionEmbedding: FloatTensor

    init(_ weights: CLIPWeights, prefix: String, config: CLIPTextConfig) throws {
        dim = config.hiddenSize
        vocabularySize = config.vocabSize
        maxPositions = config.maxPositionEmbeddings
        tokenEmbedding = try weights.tensor(prefix + "token_embedding.weight", shape: [vocabularySize, dim])
        positionEmbedding = try weights.tensor(prefix + "position_embedding.weight", shape: [maxPositions, dim])
    }

    /// `ids` row-major `[batch, length]` → `[batch, length, dim]`.
    func callAsFunction(_ ids: [Int], batch: Int, length: Int, workspace: Workspace) throws -> Tensor {
        try tokenEmbedding.withUnsafeBufferPointer { table in
            try positionEmbedding.withUnsafeBufferPointer { positions in
                try tokenEmbeddings(ids: ids, batch: batch, length: length, table: table, positions: positions,
                                    dim: dim, workspace: workspace)
            }
        }
    }
}

/// `text_model.`: embeddings, causal `encoder`, `final_layer_norm`, pooled at the end-of-text token.
public final class CLIPTextTransformer: Sendable {
    public let config: CLIPTextConfig
    public let embeddings: CLIPTextEmbeddings
    public let encoder: CLIPEncoder
    let finalLayerNorm: CLIPLayerNorm

    init(_ weights: CLIPWeights, prefix: String, config: CLIPTextConfig, expectedBatch: Int) throws {
        self.config = config
        embeddings = try CLIPTextEmbeddings(weights, prefix: prefix + "embeddings.", config: config)
        encoder = try CLIPEncoder(weights, prefix: prefix + "encoder.", count: config.numHiddenLayers,
                                  dim: config.hiddenSize, heads: config.numAttentionHeads,
                                  intermediate: config.intermediateSize, activation: clipActivation(config.hiddenAct),
                                  eps: config.layerNormEps, expectedRows: expectedBatch * config.maxPositionEmbeddings)
        finalLayerNorm = try CLIPLayerNorm(weights, prefix: prefix + "final_layer_norm.", dim: config.hiddenSize,
                                           eps: config.layerNormEps)
    }

    /// The pooled position of one sequence, as transformers picks it: with the legacy `eos_token_id == 2`, the
    /// argmax of the ids (the end token has the largest id in CLIP's vocabulary); otherwise the first position holding
    /// `eos_token_id` (position 0 when there is none, as torch's argmax of an all-zero mask gives). First maximum wins,
    /// as in torch.argmax.
    func poolingPosition(_ ids: [Int]) -> Int {
        guard let eos = config.eosTokenID, eos != 2 else {
            var best = 0
            for (index, id) in ids.enumerated() where id > ids[best] { best = index }
            return best
        }
        return ids.firstIndex(of: eos) ?? 0
    }

    /// Pooled output `[batch, hidden]` for token sequences (validated by the caller). Sequences are padded to the
    /// longest one; with causal attention the pooled position never sees the padding, so results do not depend on
    /// the batch. Only the pooled positions go through the last block's output projection and MLP.
    func pooled(_ sequences: [[Int]], scratch: Workspace, states: (Workspace, Workspace)) throws -> Tensor {
        let batch = sequences.count
        let length = sequences.map(\.count).max() ?? 0
        var ids: [Int] = []
        ids.reserveCapacity(batch * length)
        for sequence in sequences {
            ids += sequence
            // Any in-vocabulary id serves as padding: causal attention keeps it away from earlier positions.
            ids += repeatElement(sequence.last ?? 0, count: length - sequence.count)
        }
        let positions = sequences.map { [poolingPosition($0)] }
        let input = try embeddings(ids, batch: batch, length: length, workspace: states.0)
        var hidden = try encoder(input, causal: true, pooledRows: positions, scratch: scratch, states: states)
        if encoder.layers.isEmpty {
            hidden = try gatherRows(hidden, indices: positions.enumerated().map { $0 * length + $1[0] },
                                    workspace: scratch)
        }
        return try finalLayerNorm(hidden.reshaped([batch, config.hiddenSize]), workspace: scratch)
    }
}
