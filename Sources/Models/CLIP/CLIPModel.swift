// CLIP image and text features, equal to transformers 5.23 CLIPModel.get_image_features /
// get_text_features (models/clip/modeling_clip.py: `visual_projection(vision_model(...).pooler_output)` and
// `text_projection(text_model(...).pooler_output)`, both without normalisation; in transformers 5.x they are
// returned as `.pooler_output` of the output object).
import Embedding
import Foundation
import Imaging
import PosterSimCore
import TensorFiles
import Tensors
import Tokenization

/// A loaded CLIP model: image tower, text tower and their projections, from a transformers checkpoint
/// (`vision_model.*`, `text_model.*`, `visual_projection`, `text_projection`) or the same weights in open_clip's
/// layout (`visual.*`, `transformer.*`, ...), shaped by `config.json` (`CLIPConfig`).
///
/// Guarantees: weights are immutable after loading, and every call borrows its own workspaces from a pool, so one
/// instance can serve concurrent callers. Results for a batch equal the results for each input alone (up to float
/// rounding of the batched GEMMs). Features are the projected vectors, NOT L2-normalised. Bad checkpoints and
/// bad inputs throw `ModelError` naming the tensor or input at fault; nothing traps on untrusted data.
public final class CLIPModel: ImageNetwork {
    public let config: CLIPConfig
    public let visionModel: CLIPVisionTransformer
    public let textModel: CLIPTextTransformer
    let visualProjection: Linear
    let textProjection: Linear
    /// The tokenizer of the model directory, when it has one.
    public let tokenizer: CLIPTokenizer?
    private let workspaces: WorkspacePool

    /// Images per forward pass; larger batches are split so the scratch memory stays bounded.
    public static let maxImagesPerPass = 16
    /// Texts per forward pass.
    public static let maxTextsPerPass = 64

    /// Builds the model from `checkpoint`, in transformers' layout or open_clip's (detected by its keys).
    /// - Parameters:
    ///   - expectedBatch: typical batch size, used to pick the packed GEMM weight layouts at load.
    ///   - workspaces: where calls borrow their activation memory (shared with the other models by default).
    ///   - precision: `.bf16` runs both towers' matmuls (patch embedding, q/k/v, output projections, MLPs) on
    ///     bfloat16 weights and inputs with float32 sums; embeddings, layer norms, attention scores and softmax,
    ///     residual sums and the final projections stay float32.
    public init(config: CLIPConfig, checkpoint: any CheckpointReader, tokenizer: CLIPTokenizer? = nil,
                expectedBatch: Int = 8, workspaces: WorkspacePool = .shared, precision: Precision = .fp32) throws {
        self.workspaces = workspaces
        try ModelError.require(precision, for: .clip)
        let reader: any CheckpointReader =
            OpenCLIPCheckpoint.recognizes(checkpoint) ? OpenCLIPCheckpoint(checkpoint) : checkpoint
        let weights = CLIPWeights(reader: reader, precision: precision)
        let vision = config.visionConfig, text = config.textConfig
        self.config = config
        self.tokenizer = tokenizer
        visionModel = try CLIPVisionTransformer(weights, prefix: "vision_model.", config: vision,
                                                expectedBatch: expectedBatch)
        textModel = try CLIPTextTransformer(weights, prefix: "text_model.", config: text, expectedBatch: expectedBatch)
        // The projections make the vectors themselves and cost little (one row per image): float32 at any precision.
        visualProjection = try clipLinear(weights, prefix: "visual_projection.", out: config.projectionDim,
                                          in: vision.hiddenSize, bias: false, expectedRows: expectedBatch,
                                          precision: .fp32)
        textProjection = try clipLinear(weights, prefix: "text_projection.", out: config.projectionDim,
                                        in: text.hiddenSize, bias: false, expectedRows: expectedBatch, precision: .fp32)
        // Every weight is now packed or copied; the file's pages would only double the resident memory.
        checkpoint.dropResidentPages()
        ProcessHeap.returnFreePages()  // the plain copies made while loading
    }

    /// Checkpoint file names tried in order.
    public static let checkpointFileNames = [
        "model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors", "open_clip_pytorch_model.bin",
    ]

    /// Loads `config.json`, the first checkpoint of `checkpointFileNames` found (opened with `openCheckpoint`,
    /// memory-mapped) and, when present, the tokenizer files (`vocab.json` + `merges.txt` or `tokenizer.json`).
    public static func load(from directory: URL, expectedBatch: Int = 8,
                            precision: Precision = .fp32) throws -> CLIPModel {
        let fileManager = FileManager.default
        let config = try CLIPConfig.load(from: try ModelFolder.config(in: directory, required: true)!)
        let checkpointURL = try ModelFolder.checkpoint(in: directory, names: checkpointFileNames)
        let hasTokenizer = ["vocab.json", "tokenizer.json"].contains {
            fileManager.fileExists(atPath: directory.appendingPathComponent($0).path)
        }
        let tokenizer = hasTokenizer ? try CLIPTokenizer(modelDirectory: directory) : nil
        return try CLIPModel(config: config, checkpoint: openCheckpoint(at: checkpointURL), tokenizer: tokenizer,
                             expectedBatch: expectedBatch, precision: precision)
    }

    /// `ImageNetwork`'s loader: CLIP has no 3×3 convolutions, so `convolutions` changes nothing.
    public static func load(from directory: URL, convolutions: ConvolutionAlgorithm,
                            precision: Precision) throws -> CLIPModel {
        try load(from: directory, precision: precision)
    }

    public var outputDimension: Int { embeddingDimension }

    /// Output vector length (`projection_dim`).
    public var embeddingDimension: Int { config.projectionDim }

    // MARK: Images

    /// Image features for a preprocessed batch `[N, channels, image_size, image_size]` (or one image
    /// `[channels, image_size, image_size]`), as `ImagePreprocessor` produces it: one vector per image.
    public func forward(_ batch: ImageTensor) throws -> [[Float]] {
        try batch.values.withUnsafeBufferPointer { try forward(pixels: $0, shape: batch.shape) }
    }

    /// Image features for a plain (row-major) tensor `[N, channels, image_size, image_size]`.
    public func forward(_ batch: Tensor) throws -> [[Float]] {
        try batch.withUnsafeFloats { try forward(pixels: $0, shape: batch.shape) }
    }

    /// Image features for NCHW float32 pixels.
    public func forward(pixels: UnsafeBufferPointer<Float>, shape: [Int]) throws -> [[Float]] {
        let vision = config.visionConfig
        let expected = [vision.numChannels, vision.imageSize, vision.imageSize]
        let nchw = shape.count == 3 ? [1] + shape : shape
        guard nchw.count == 4, Array(nchw.dropFirst()) == expected, nchw[0] >= 0 else {
            throw ModelError.badInput("image tensor shape \(shape), expected [N] + \(expected)")
        }
        let perImage = expected.reduce(1, *)
        guard pixels.count == nchw[0] * perImage else {
            throw ModelError.badInput("\(pixels.count) pixel values for shape \(shape)")
        }
        var results: [[Float]] = []
        results.reserveCapacity(nchw[0])
        var start = 0
        while start < nchw[0] {
            let count = min(Self.maxImagesPerPass, nchw[0] - start)
            let slice = UnsafeBufferPointer(rebasing: pixels[(start * perImage)..<((start + count) * perImage)])
            results += try withWorkspaces { scratch, states in
                let pooled = try visionModel.pooled(slice, batch: count, scratch: scratch, states: states)
                return try rows(of: visualProjection(pooled, workspace: scratch))
            }
            start += count
        }
        return results
    }

    // MARK: Text

    /// Text features for token id sequences (each with its start and end tokens, at most
    /// `max_position_embeddings` long, as `CLIPTokenizer.encode(_:contextLength:truncate:)` gives them).
    public func textFeatures(tokenIDs: [[Int]]) throws -> [[Float]] {
        let text = config.textConfig
        for (index, ids) in tokenIDs.enumerated() {
            guard !ids.isEmpty, ids.count <= text.maxPositionEmbeddings else {
                throw ModelError.badInput("token sequence \(index) has \(ids.count) ids, expected 1..."
                                              + "\(text.maxPositionEmbeddings)")
            }
            if let bad = ids.first(where: { $0 < 0 || $0 >= text.vocabSize }) {
                throw ModelError.badInput("token sequence \(index) holds id \(bad), outside the vocabulary of "
                                              + "\(text.vocabSize)")
            }
        }
        var results: [[Float]] = []
        results.reserveCapacity(tokenIDs.count)
        var start = 0
        while start < tokenIDs.count {
            let chunk = Array(tokenIDs[start..<min(start + Self.maxTextsPerPass, tokenIDs.count)])
            results += try withWorkspaces { scratch, states in
                try rows(of: textProjection(textModel.pooled(chunk, scratch: scratch, states: states),
                                            workspace: scratch))
            }
            start += chunk.count
        }
        return results
    }

    /// Text features for strings, tokenized with the model directory's tokenizer and truncated to the context
    /// length (`max_position_embeddings`, 77 for CLIP), as transformers' `truncation=True, max_length=77`.
    public func textFeatures(_ texts: [String]) throws -> [[Float]] {
        guard let tokenizer else { throw ModelError.noTokenizer }
        let context = config.textConfig.maxPositionEmbeddings
        return try textFeatures(tokenIDs: texts.map { tokenizer.encode($0, contextLength: context, truncate: true) })
    }

    // MARK: Helpers

    /// Runs `body` with a scratch workspace and two for the alternating hidden states, all exclusive to this call.
    private func withWorkspaces<R>(_ body: (Workspace, (Workspace, Workspace)) throws -> R) throws -> R {
        try workspaces.withWorkspace { scratch in try workspaces.withWorkspaces { states in try body(scratch, states) } }
    }

    private func rows(of matrix: Tensor) throws -> [[Float]] {
        let values = try matrix.toArray()
        guard let width = matrix.shape.last, width > 0 else { return [] }
        return stride(from: 0, to: values.count, by: width).map { Array(values[$0..<($0 + width)]) }
    }
}
