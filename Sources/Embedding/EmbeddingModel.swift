// The one protocol every user of an image model depends on: the ingest pipeline, the HTTP server, the command line,
// and the tests' small fakes. The Models module implements it once per product model (`PosterEmbeddingModel`).
import Imaging
import PosterSimCore

/// One image model: the vector space its embeddings live in, the checkpoint that makes them, the preprocessing its
/// input needs, a batched forward pass and, for models with a text tower, text embeddings.
///
/// Guarantees every conformance keeps (the ingest pipeline checks the first two and fails the run with
/// `IngestError.embedderOutput` otherwise):
/// - `embed(_:)` receives an NCHW float32 batch built by `preprocessor.batch(_:)` from N decoded posters and returns
///   exactly N vectors, in the same order, each with `space.dimension` components.
/// - `embed(_:)` is a pure function of its input for a fixed `identity`: the same poster gives the same vector, so a
///   rerun after a crash stores the same thing; a batch gives the same vectors as its images one by one.
/// - The model is immutable after loading: one instance may be shared by any number of concurrent callers.
/// - `embed` may be slow and may use every core; callers that care (ingest, the server's pool) bound how many run.
/// - `embed(texts:)` throws `ModelError.textNotSupported` unless `supportsText`.
public protocol EmbeddingModel: Sendable {
    /// Which of the product's models this is.
    var name: ModelName { get }
    /// The store space: name (`clip`, `resnet50`, `vgg16`), dimension and metric.
    var space: VectorSpace { get }
    /// Repository and weights sha256; a changed checkpoint makes the old vectors stale and they are re-embedded.
    var identity: ModelIdentity { get }
    /// The model's reference preprocessing (resize, crop, normalisation).
    var preprocessor: ImagePreprocessor { get }
    /// Whether `embed(texts:)` works (CLIP's text tower with a tokenizer).
    var supportsText: Bool { get }
    /// One vector per image of the `[N, 3, H, W]` batch.
    func embed(_ batch: ImageTensor) throws -> [[Float]]
    /// One vector per text, in the image vectors' space.
    func embed(texts: [String]) throws -> [[Float]]
}

extension EmbeddingModel {
    public var supportsText: Bool { false }

    public func embed(texts: [String]) throws -> [[Float]] { throw ModelError.textNotSupported(name) }

    /// Preprocesses and embeds decoded posters, one vector per image.
    public func embed(images: [RGBImage]) throws -> [[Float]] {
        guard !images.isEmpty else { throw ModelError.emptyBatch }
        return try embed(preprocessor.batch(images))
    }
}
