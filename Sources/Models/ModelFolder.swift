// How every model finds its files in a folder in Hugging Face repository layout (a cache snapshot or a --model-dir):
// one discovery for the three models, so they accept the same layouts and report a missing file the same way.
import Embedding
import Foundation
import Imaging
import PosterSimCore
import Tensors

/// What each product network offers, so that the three are loaded and run the same way: a config read from the
/// folder's `config.json`, one `load(from:)` that walks the checkpoint's key tree, one forward pass.
public protocol ImageNetwork: Sendable {
    /// Loads the network from a model folder. `convolutions` picks how 3×3 convolutions compute where the network
    /// has them (ResNet-50, VGG16); CLIP has none and ignores it. `precision` is the arithmetic of its
    /// convolutions and matmuls (weights converted once here); the caller has checked the CPU can run it.
    static func load(from directory: URL, convolutions: ConvolutionAlgorithm, precision: Precision) throws -> Self
    /// One vector per image of a preprocessed `[N, C, H, W]` batch.
    func forward(_ batch: ImageTensor) throws -> [[Float]]
    /// The length of the vectors `forward` returns.
    var outputDimension: Int { get }
}

/// A model folder's files.
enum ModelFolder {
    /// The checkpoint names every model tries, in order: transformers and timm write `model.safetensors`; older
    /// caches (and torch-only repositories) hold `pytorch_model.bin`, read through the restricted unpickler.
    static let standardCheckpointNames = ["model.safetensors", "pytorch_model.bin"]

    /// `config.json` in `directory`, or nil when absent and `required` is false.
    static func config(in directory: URL, required: Bool) throws -> URL? {
        let url = directory.appendingPathComponent("config.json")
        if FileManager.default.fileExists(atPath: url.path) { return url }
        if required { throw ModelError.missingFile("no config.json in \(directory.path)") }
        return nil
    }

    /// The checkpoint to read: the first of `names` present; else, when `anySinglePyTorchFile`, the folder's only
    /// `.pth`/`.pt`/`.bin` file (a torchvision download).
    static func checkpoint(in directory: URL, names: [String] = standardCheckpointNames,
                           anySinglePyTorchFile: Bool = false) throws -> URL {
        let fileManager = FileManager.default
        if let found = names.map({ directory.appendingPathComponent($0) })
            .first(where: { fileManager.fileExists(atPath: $0.path) }) {
            return found
        }
        guard anySinglePyTorchFile else {
            throw ModelError.noCheckpoint(directory: directory.path, reason: "none of \(names.joined(separator: ", "))")
        }
        let files: [URL]
        do {
            files = try fileManager.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
        } catch {
            throw ModelError.noCheckpoint(directory: directory.path, reason: "cannot list it (\(error.localizedDescription))")
        }
        let candidates = files.filter { ["pth", "pt", "bin"].contains($0.pathExtension) }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        guard candidates.count == 1, let only = candidates.first else {
            throw ModelError.noCheckpoint(directory: directory.path, reason: candidates.isEmpty
                ? "no \(names.joined(separator: ", ")) and no .pth/.pt/.bin file"
                : "several PyTorch checkpoints: \(candidates.map(\.lastPathComponent).joined(separator: ", "))")
        }
        return only
    }
}
