// Reading CLIP parameters from a checkpoint, in transformers' naming (the model types are built from key
// prefixes such as `vision_model.encoder.layers.3.self_attn.`), and the open_clip layout mapped onto it.
import Embedding
import Foundation
import PosterSimCore
import TensorFiles


/// Checked access to a checkpoint by transformers key: right name, right shape, float32 values.
struct CLIPWeights: Sendable {
    let reader: any CheckpointReader
    /// The precision the towers' matmuls are built at (`clipLinear`, the fused q/k/v, the patch embedding).
    var precision: Precision = .fp32

    /// How errors name a tensor: its transformers key, plus the stored key when the checkpoint is open_clip's.
    private func display(_ name: String) -> String {
        if let openCLIP = reader as? OpenCLIPCheckpoint, let source = openCLIP.sourceDescription(of: name) {
            return "\(name) (open_clip \(source))"
        }
        return name
    }

    /// The tensor after checking presence and shape; a zero-copy view into the file when the format allows.
    func tensor(_ name: String, shape: [Int]) throws -> FloatTensor {
        guard let info = reader.info(name) else { throw ModelError.missingTensor(display(name)) }
        guard info.shape == shape else {
            throw ModelError.wrongShape(name: display(name), expected: shape, found: info.shape)
        }
        do {
            return try reader.floats(name)
        } catch {
            throw ModelError.unreadableTensor(name: display(name), reason: String(describing: error))
        }
    }

    func values(_ name: String, shape: [Int]) throws -> [Float] {
        try tensor(name, shape: shape).values
    }
}

/// An open_clip checkpoint (`visual.conv1.weight`, `visual.transformer.resblocks.N.attn.in_proj_weight`,
/// `token_embedding.weight`, `ln_final`, ...) presented under transformers' CLIPModel keys, so the same model
/// types load it. Renamed tensors pass through untouched (still zero-copy); the fused attention input projection
/// is split into q/k/v (rows 0..<D, D..<2D, 2D..<3D, matching `nn.MultiheadAttention`'s `in_proj` order), and the
/// projections `visual.proj` / `text_projection`, stored `[width, embed]` for `x @ proj`, are transposed to
/// transformers' `nn.Linear` weight `[embed, width]`.
///
/// Guarantees: `tensorNames` lists the transformers key of every mappable tensor exactly once; `info` needs no data
/// access; a malformed fused tensor (rows not divisible by 3) is reported with its stored shape so the model's
/// shape check names it.
public struct OpenCLIPCheckpoint: CheckpointReader {
    public let base: any CheckpointReader

    public func dropResidentPages() { base.dropResidentPages() }

    private enum Source: Sendable {
        case renamed(String)
        case fusedSlice(String, part: Int)
        case transposed(String)

        var key: String {
            switch self {
            case .renamed(let key), .fusedSlice(let key, _), .transposed(let key): return key
            }
        }
    }

    private let sources: [String: Source]
    public let tensorNames: [String]

    /// True when `reader` holds open_clip keys rather than transformers ones.
    public static func recognizes(_ reader: any CheckpointReader) -> Bool {
        reader.info("visual.conv1.weight") != nil || reader.info("token_embedding.weight") != nil
    }

    public init(_ base: any CheckpointReader) {
        self.base = base
        var sources: [String: Source] = [:]
        var names: [String] = []
        for key in base.tensorNames {
            for (name, source) in Self.transformersNames(of: key) where sources[name] == nil {
                sources[name] = source
                names.append(name)
            }
        }
        self.sources = sources
        self.tensorNames = names
    }

    /// The stored key (and what is done to it) behind a transformers key.
    func sourceDescription(of name: String) -> String? {
        switch sources[name] {
        case .renamed(let key): return key
        case .fusedSlice(let key, let part): return "\(key) part \(part + 1) of 3"
        case .transposed(let key): return "\(key), transposed"
        case nil: return nil
        }
    }

    private static let layerRenames: [(String, String)] = [
        ("ln_1.", "layer_norm1."), ("ln_2.", "layer_norm2."), ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2."),
        ("attn.out_proj.", "self_attn.out_proj."),
    ]

    /// transformers key(s) for one open_clip key (three for a fused q/k/v tensor, none for unrelated keys).
    private static func transformersNames(of key: String) -> [(String, Source)] {
        let direct: [String: String] = [
            "visual.class_embedding": "vision_model.embeddings.class_embedding",
            "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
            "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
            "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
            "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
            "visual.ln_post.weight": "vision_model.post_layernorm.weight",
            "visual.ln_post.bias": "vision_model.post_layernorm.bias",
            "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
            "positional_embedding": "text_model.embeddings.position_embedding.weight",
            "ln_final.weight": "text_model.final_layer_norm.weight",
            "ln_final.bias": "text_model.final_layer_norm.bias",
            "logit_scale": "logit_scale",
        ]
        if let name = direct[key] { return [(name, .renamed(key))] }
        if key == "visual.proj" { return [("visual_projection.weight", .transposed(key))] }
        if key == "text_projection" { return [("text_projection.weight", .transposed(key))] }
        let towers = [("visual.transformer.resblocks.", "vision_model.encoder.layers."),
                      ("transformer.resblocks.", "text_model.encoder.layers.")]
        for (prefix, target) in towers where key.hasPrefix(prefix) {
            let rest = key.dropFirst(prefix.count)
            guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]), layer >= 0 else { return [] }
            let inner = String(rest[rest.index(after: dot)...])
            let layerPrefix = "\(target)\(layer)."
            for (from, to) in layerRenames where inner.hasPrefix(from) {
                return [(layerPrefix + to + inner.dropFirst(from.count), .renamed(key))]
            }
            if inner == "attn.in_proj_weight" || inner == "attn.in_proj_bias" {
                let suffix = inner.hasSuffix("weight") ? "weight" : "bias"
                return ["q_proj", "k_proj", "v_proj"].enumerated().map { part, projection in
                    ("\(layerPrefix)self_attn.\(projection).\(suffix)", .fusedSlice(key, part: part))
                }
            }
        }
        return []
    }

    public func info(_ name: String) -> TensorInfo? {
        guard let source = sources[name], let stored = base.info(source.key) else { return nil }
        switch source {
        case .renamed:
            return TensorInfo(name: name, dtype: stored.dtype, shape: stored.shape)
        case .fusedSlice:
            guard let rows = stored.shape.first, rows % 3 == 0 else {
                return TensorInfo(name: name, dtype: stored.dtype, shape: stored.shape)
            }
            return TensorInfo(name: name, dtype: stored.dtype, shape: [rows / 3] + stored.shape.dropFirst())
        case .transposed:
            guard stored.shape.count == 2 else { return TensorInfo(name: name, dtype: stored.dtype, shape: stored.shape) }
            return TensorInfo(name: name, dtype: stored.dtype, shape: [stored.shape[1], stored.shape[0]])
        }
    }

    public func floats(_ name: String) throws -> FloatTensor {
        guard let source = sources[name], let shape = info(name)?.shape else {
            throw CheckpointError.missingTensor(name)
        }
        switch source {
        case .renamed(let key):
            return try base.floats(key)
        case .fusedSlice(let key, let part):
            let stored = try base.floats(key)
            let partCount = stored.count / 3
            guard stored.count % 3 == 0, stored.shape.first.map({ $0 % 3 == 0 }) ?? false else {
                throw CheckpointError.shapeMismatch(name: key, expected: [3] + shape, actual: stored.shape)
            }
            return stored.withUnsafeBufferPointer { all in
                FloatTensor(shape: shape, values: Array(all[(part * partCount)..<((part + 1) * partCount)]))
            }
        case .transposed(let key):
            let stored = try base.floats(key)
            guard stored.shape.count == 2 else {
                throw CheckpointError.shapeMismatch(name: key, expected: [shape[1], shape[0]], actual: stored.shape)
            }
            let (rows, columns) = (stored.shape[0], stored.shape[1])
            var values = [Float](repeating: 0, count: rows * columns)
            stored.withUnsafeBufferPointer { source in
                for r in 0..<rows {
                    for c in 0..<columns { values[c * rows + r] = source[r * columns + c] }
                }
            }
            return FloatTensor(shape: [columns, rows], values: values)
        }
    }

    public func tensor(_ name: String) throws -> RawTensor {
        if case .renamed(let key) = sources[name] { return try base.tensor(key) }
        let values = try floats(name)
        let bytes = values.withUnsafeBufferPointer { buffer in
            ByteView(copying: UnsafeRawBufferPointer(buffer))
        }
        return try RawTensor(dtype: .float32, shape: values.shape, bytes: bytes)
    }
}
