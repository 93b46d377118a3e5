import Embedding
import Foundation
import Testing
@testable import Models
import TensorFiles

private let fixtures: URL = {
    var root = URL(fileURLWithPath: #filePath)
    while root.lastPathComponent != "Tests" { root.deleteLastPathComponent() }
    return root.appendingPathComponent("Fixtures")
}()

private func cosine(_ a: [Float], _ b: [Float]) -> Double {
    let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    let na = a.reduce(0.0) { $0 + Double($1) * Double($1) }, nb = b.reduce(0.0) { $0 + Double($1) * Double($1) }
    return dot / (na * nb).squareRoot()
}

@Suite("ResNet") struct ResNetTests {
    /// Every image with a reference tensor: embedding of the tiny transformers checkpoint equals the reference
    /// `pooler_output` (tools/reference, embeddings/resnet50.npz) to the tolerance; the safetensors and
    /// the pytorch_model.bin copies give the same model.
    @Test(arguments: [("resnet50", ConvolutionAlgorithm.winograd), ("resnet50", .direct), ("resnet50-bin", .winograd)])
    func matchesReferenceEmbeddings(_ checkpoint: String, _ convolutions: ConvolutionAlgorithm) throws {
        let model = try ResNetModel.load(from: fixtures.appendingPathComponent("checkpoints/\(checkpoint)"),
                                    convolutions: convolutions)
        let inputs = try NPZArchive(contentsOf: fixtures.appendingPathComponent("preprocess/resnet50.npz"))
        let references = try NPZArchive(contentsOf: fixtures.appendingPathComponent("embeddings/resnet50.npz"))
        let files = inputs.names.filter { $0.hasSuffix("__tensor") }.map { String($0.dropLast("__tensor".count)) }
        #expect(files.count >= 3)
        var batch: [Float] = []
        var expected: [[Float]] = []
        for file in files {
            let pixels = try inputs.array("\(file)__tensor")
            #expect(pixels.shape == [3, 224, 224])
            batch += pixels.floats()
            expected.append(try references.array(file).floats())
        }
        let vectors = try model.forward(pixels: batch, count: files.count, height: 224, width: 224)
        for (index, file) in files.enumerated() {
            let vector = vectors[index], reference = expected[index]
            #expect(vector.count == model.dimension && reference.count == model.dimension, "\(file)")
            #expect(cosine(vector, reference) >= 0.99999, "\(file)")
            let norm = Float(reference.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
            let worst = zip(vector, reference).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-4 * norm, "\(file): max abs difference \(worst), norm \(norm)")
        }
        // One image alone gives what it gave inside the batch.
        let first = try model.forward(pixels: Array(batch[..<(3 * 224 * 224)]), count: 1, height: 224, width: 224)
        #expect(zip(first[0], vectors[0]).allSatisfy { abs($0 - $1) <= 1e-5 })
    }

    /// An input size other than the one the weights were laid out for (224): Winograd layers lay their weights out
    /// again from the checkpoint and agree with direct convolutions.
    @Test func otherInputSizeWithWinograd() throws {
        let directory = fixtures.appendingPathComponent("checkpoints/resnet50")
        let winograd = try ResNetModel.load(from: directory, convolutions: .winograd)
        let direct = try ResNetModel.load(from: directory, convolutions: .direct)
        var state: UInt64 = 3
        let pixels = (0..<(2 * 3 * 160 * 176)).map { _ -> Float in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int(state >> 40) % 2001 - 1000) / 500
        }
        let ours = try winograd.forward(pixels: pixels, count: 2, height: 160, width: 176)
        let reference = try direct.forward(pixels: pixels, count: 2, height: 160, width: 176)
        for (vector, expected) in zip(ours, reference) {
            let norm = Float(expected.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
            let worst = zip(vector, expected).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-5 * norm, "max abs difference \(worst), norm \(norm)")
        }
    }

    @Test func missingTensorIsReported() throws {
        let directory = fixtures.appendingPathComponent("checkpoints/malformed/resnet50_missing_tensor")
        #expect(throws: CheckpointError.self) { try ResNetModel.load(from: directory) }
    }

    @Test func unsupportedConfigsAreRejected() throws {
        let directory = fixtures.appendingPathComponent("checkpoints/resnet50")
        let checkpoint = try openCheckpoint(at: directory.appendingPathComponent("model.safetensors"))
        var config = try ResNetConfig.load(from: directory.appendingPathComponent("config.json"))
        config.hiddenAct = "gelu"
        #expect(throws: ModelError.unsupportedConfig("hidden_act gelu")) {
            try ResNetModel(config: config, checkpoint: checkpoint)
        }
        config = try ResNetConfig.load(from: directory.appendingPathComponent("config.json"))
        config.embeddingSize += 1   // stem weights no longer fit
        #expect(throws: CheckpointError.self) { try ResNetModel(config: config, checkpoint: checkpoint) }
        let model = try ResNetModel(config: try ResNetConfig.load(from: directory.appendingPathComponent("config.json")),
                                    checkpoint: checkpoint)
        #expect(throws: ModelError.self) { try model.forward(pixels: [Float](repeating: 0, count: 10), count: 1, height: 224, width: 224) }
        #expect(throws: ModelError.self) { try model.forward(pixels: [], count: 0, height: 224, width: 224) }
    }
}
