// `postersim embed` and `postersim embed-text`: posters and text to vectors.
import CommandSupport
import PosterSimCore
import ArgumentParser
import Foundation
import Imaging
import ModelHub
import Models
import TensorFiles

/// One embedded input, as `--json` prints it.
struct EmbeddingOutput: Codable {
    var file: String?
    var text: String?
    var model: String
    var dim: Int
    var vector: [Float]
}

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Turn poster images into vectors with one of the models.",
        discussion: """
            Each IMAGE (JPEG, PNG or WebP) is decoded, preprocessed as the model's own config says and embedded: \
            CLIP gives its image embedding (512-d for ViT-B/32), ResNet-50 its pooler output (2048-d), VGG16 its \
            fc7 layer after ReLU (4096-d) — the same vectors PyTorch computes from the same checkpoint.

            Without --json or --npy, prints one line per image with the first values and the vector's norm.
            """)

    @Option(
        help: "Model: clip, resnet50 or vgg16 (also CLIP, ResNet-50, VGG16).",
        transform: ModelName.parseArgument)
    var model: ModelName

    @Flag(help: "Print one JSON object per image: {\"file\", \"model\", \"dim\", \"vector\"}.")
    var json = false

    @Option(help: "Write all vectors to a NumPy .npy file of shape [images, dim].")
    var npy: String?

    @Option(help: "Images per forward pass.")
    var batchSize = 8

    @OptionGroup var location: ModelLocationOptions

    @Argument(help: "Image files.")
    var images: [String]

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        let embedder = try location.load(model)
        let decoder = PosterDecoder()
        var outputs: [EmbeddingOutput] = []
        var failures = 0
        for start in stride(from: 0, to: images.count, by: batchSize) {
            var batchFiles: [String] = []
            var batchImages: [RGBImage] = []
            for file in images[start..<min(start + batchSize, images.count)] {
                do {
                    batchImages.append(try decoder.decode(contentsOf: URL(fileURLWithPath: file)))
                    batchFiles.append(file)
                } catch {
                    failures += 1
                    ModelsCommand.writeStandardError("postersim embed: \(file): \(error)\n")
                }
            }
            guard !batchImages.isEmpty else { continue }
            let vectors = try embedder.embed(images: batchImages)
            for (file, vector) in zip(batchFiles, vectors) {
                let output = EmbeddingOutput(file: file, model: model.rawValue, dim: vector.count, vector: vector)
                outputs.append(output)
                if json { print(try encodeLine(output)) } else if npy == nil { print(describe(output)) }
            }
        }
        if let npy, !outputs.isEmpty {
            try NPY.write(floats: outputs.flatMap(\.vector), shape: [outputs.count, embedder.dimension],
                          to: URL(fileURLWithPath: npy))
        }
        if failures > 0 { throw ExitCode(1) }
    }
}

struct EmbedTextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed-text",
        abstract: "Turn text into CLIP text-tower vectors (for searching posters by a description).",
        discussion: """
            Tokenizes each TEXT with CLIP's BPE tokenizer (77 tokens, longer text is truncated) and returns \
            CLIP's text embedding, comparable by cosine with the posters' CLIP image embeddings.
            """)

    @Flag(help: "Print one JSON object per text: {\"text\", \"model\", \"dim\", \"vector\"}.")
    var json = false

    @OptionGroup var location: ModelLocationOptions

    @Argument(help: "Texts, e.g. \"a man in a space suit on a red planet\".")
    var texts: [String]

    func validate() throws {
        guard !texts.isEmpty else { throw ValidationError("give at least one text") }
    }

    func run() throws {
        let embedder = try location.load(.clip)
        let vectors = try embedder.embed(texts: texts)
        for (text, vector) in zip(texts, vectors) {
            let output = EmbeddingOutput(text: text, model: ModelName.clip.rawValue, dim: vector.count, vector: vector)
            print(json ? try encodeLine(output) : describe(output))
        }
    }
}

private func encodeLine(_ output: EmbeddingOutput) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(output), as: UTF8.self)
}

private func describe(_ output: EmbeddingOutput) -> String {
    let norm = output.vector.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
    let head = output.vector.prefix(4).map { String(format: "%.5f", $0) }.joined(separator: ", ")
    return "\(output.file ?? output.text ?? "")  \(output.model) \(output.dim)-d  [\(head), …]  norm \(String(format: "%.4f", norm))"
}
