import Imaging
import Store

/// One image model as the ingest pipeline sees it: the vector space its embeddings live in, the checkpoint that makes
/// them, the preprocessing its input needs, and a batched forward pass. The Models module conforms one type per model
/// (CLIP image tower, ResNet-50, VGG16).
///
/// Contract the pipeline relies on (and checks, failing the run with `IngestError.embedderOutput` otherwise):
/// - `embed` receives an NCHW float32 batch built by `preprocessor.batch(_:)` from N decoded posters and returns
///   exactly N vectors, in the same order, each with `space.dimension` components.
/// - `embed` is a pure function of its input for a fixed `identity`: the same poster gives the same vector, so a
///   rerun after a crash stores the same thing.
/// - `embed` may be slow and may use every core; the pipeline calls it from one dedicated thread, one batch at a
///   time, never concurrently with itself or with another embedder.
public protocol PosterEmbedder: Sendable {
    /// The store space: name (`clip`, `resnet50`, `vgg16`), dimension and metric.
    var space: VectorSpace { get }
    /// Repository and weights sha256; a changed checkpoint makes the old vectors stale and they are re-embedded.
    var identity: ModelIdentity { get }
    /// The model's reference preprocessing (resize, crop, normalisation).
    var preprocessor: ImagePreprocessor { get }
    /// One vector per image of the `[N, 3, H, W]` batch.
    func embed(_ batch: ImageTensor) throws -> [[Float]]
}
