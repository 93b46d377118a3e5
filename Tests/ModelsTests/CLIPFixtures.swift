// Shared helpers of the CLIP tests: fixture paths, npz goldens, comparisons, and checkpoint adapters that
// rewrite the tiny transformers checkpoint in memory (open_clip naming, a dropped tensor, a misshaped tensor).
import Foundation
import Imaging
import Models
import TensorFiles

enum CLIPFixtures {
    /// Tests/Fixtures, found from this file's path.
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            let candidate = url.appendingPathComponent("Tests/Fixtures")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("embeddings").path) {
                return candidate
            }
        }
        return URL(fileURLWithPath: "Tests/Fixtures")
    }()

    static func checkpoint(_ name: String) -> URL { root.appendingPathComponent("checkpoints/\(name)") }

    static func npz(_ path: String) throws -> NPZArchive { try NPZArchive(contentsOf: root.appendingPathComponent(path)) }

    static func floats(_ archive: NPZArchive, _ name: String) throws -> [Float] { try archive.array(name).floats() }

    /// The model input the reference embedded for fixture image `file`: the stored reference tensor when the
    /// preprocess goldens keep it, else our own decode + preprocessing (proven bit-exact by the Imaging tests).
    static func inputTensor(file: String, preprocess: NPZArchive, preprocessor: ImagePreprocessor) throws -> [Float] {
        if preprocess.names.contains(file + "__tensor") { return try floats(preprocess, file + "__tensor") }
        let image = try PosterDecoder().decode(contentsOf: root.appendingPathComponent("images/\(file)"))
        return try preprocessor.tensor(for: image).values
    }
}

struct CLIPComparison: CustomStringConvertible {
    let cosine: Double
    let maxAbsDiff: Double
    let referenceNorm: Double

    init(_ actual: [Float], _ reference: [Float]) {
        var dot = 0.0, aa = 0.0, rr = 0.0, worst = 0.0
        for (a, r) in zip(actual, reference) {
            dot += Double(a) * Double(r)
            aa += Double(a) * Double(a)
            rr += Double(r) * Double(r)
            worst = max(worst, abs(Double(a) - Double(r)))
        }
        cosine = actual.count == reference.count && aa > 0 && rr > 0 ? dot / (aa * rr).squareRoot() : -2
        maxAbsDiff = actual.count == reference.count ? worst : .infinity
        referenceNorm = rr.squareRoot()
    }

    /// The project's fidelity bar: cosine ≥ 0.99999 and max |diff| ≤ 1e-4·‖ref‖.
    var withinTolerance: Bool { cosine >= 0.99999 && maxAbsDiff <= 1e-4 * referenceNorm }

    var description: String {
        "cosine \(cosine), max |diff| \(maxAbsDiff) (bound \(1e-4 * referenceNorm))"
    }
}

/// A checkpoint held in memory: name → (shape, values).
struct CLIPMemoryCheckpoint: CheckpointReader {
    let tensors: [String: FloatTensor]
    let tensorNames: [String]

    init(_ tensors: [(String, FloatTensor)]) {
        self.tensors = Dictionary(tensors, uniquingKeysWith: { first, _ in first })
        tensorNames = tensors.map(\.0)
    }

    func info(_ name: String) -> TensorInfo? {
        tensors[name].map { TensorInfo(name: name, dtype: .float32, shape: $0.shape) }
    }

    func floats(_ name: String) throws -> FloatTensor {
        guard let tensor = tensors[name] else { throw CheckpointError.missingTensor(name) }
        return tensor
    }

    func tensor(_ name: String) throws -> RawTensor {
        let values = try floats(name)
        let bytes = values.withUnsafeBufferPointer { ByteView(copying: UnsafeRawBufferPointer($0)) }
        return try RawTensor(dtype: .float32, shape: values.shape, bytes: bytes)
    }

    /// Every tensor of `reader`, copied.
    static func copy(of reader: any CheckpointReader) throws -> [(String, FloatTensor)] {
        try reader.tensorNames.map { name in
            let tensor = try reader.floats(name)
            return (name, FloatTensor(shape: tensor.shape, values: tensor.values))
        }
    }

    /// The transformers checkpoint rewritten in open_clip's naming: renames, q/k/v fused into
    /// `attn.in_proj_weight/bias`, and the projections transposed to `[width, embed]` (open_clip's `x @ proj`).
    static func openCLIPLayout(of reader: any CheckpointReader) throws -> CLIPMemoryCheckpoint {
        var result: [(String, FloatTensor)] = []
        let renames: [(String, String)] = [
            ("vision_model.embeddings.class_embedding", "visual.class_embedding"),
            ("vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"),
            ("vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"),
            ("vision_model.pre_layrnorm.", "visual.ln_pre."),
            ("vision_model.post_layernorm.", "visual.ln_post."),
            ("vision_model.encoder.layers.", "visual.transformer.resblocks."),
            ("text_model.embeddings.token_embedding.weight", "token_embedding.weight"),
            ("text_model.embeddings.position_embedding.weight", "positional_embedding"),
            ("text_model.final_layer_norm.", "ln_final."),
            ("text_model.encoder.layers.", "transformer.resblocks."),
            ("logit_scale", "logit_scale"),
        ]
        let layerRenames = [("layer_norm1.", "ln_1."), ("layer_norm2.", "ln_2."), ("mlp.fc1.", "mlp.c_fc."),
                            ("mlp.fc2.", "mlp.c_proj."), ("self_attn.out_proj.", "attn.out_proj.")]
        for name in reader.tensorNames {
            let tensor = try reader.floats(name)
            if name == "visual_projection.weight" || name == "text_projection.weight" {
                let (rows, columns) = (tensor.shape[0], tensor.shape[1])
                let values = tensor.values
                var transposed = [Float](repeating: 0, count: values.count)
                for r in 0..<rows { for c in 0..<columns { transposed[c * rows + r] = values[r * columns + c] } }
                result.append((name == "visual_projection.weight" ? "visual.proj" : "text_projection",
                               FloatTensor(shape: [columns, rows], values: transposed)))
                continue
            }
            if name.contains("self_attn.q_proj.") || name.contains("self_attn.k_proj.")
                || name.contains("self_attn.v_proj.") {
                guard name.contains("self_attn.q_proj.") else { continue }   // emitted once, with k and v
                let suffix = name.hasSuffix("weight") ? "weight" : "bias"
                let parts = try ["q_proj", "k_proj", "v_proj"].map {
                    try reader.floats(name.replacingOccurrences(of: "q_proj", with: $0)).values
                }
                let layerKey = name.replacingOccurrences(of: "self_attn.q_proj.\(suffix)", with: "attn.in_proj_\(suffix)")
                var renamed = layerKey
                for (from, to) in renames where renamed.hasPrefix(from) {
                    renamed = to + renamed.dropFirst(from.count)
                    break
                }
                result.append((renamed, FloatTensor(shape: [3 * tensor.shape[0]] + tensor.shape.dropFirst(),
                                                    values: parts.flatMap { $0 })))
                continue
            }
            var renamed = name
            for (from, to) in renames where renamed.hasPrefix(from) {
                renamed = to + renamed.dropFirst(from.count)
                break
            }
            for (from, to) in layerRenames {
                renamed = renamed.replacingOccurrences(of: ".\(from)", with: ".\(to)")
            }
            guard renamed != name || name == "logit_scale" else { continue }
            result.append((renamed, FloatTensor(shape: tensor.shape, values: tensor.values)))
        }
        return CLIPMemoryCheckpoint(result)
    }
}
