import Foundation
import Testing
@testable import Models
import Tensors

/// The fixture's state dict (`weights__<key>` arrays) as a weight store.
struct FixtureWeights: WeightStore {
    let fixture: KernelFixture
    func contains(_ name: String) -> Bool { fixture.arrays["weights__\(name)"] != nil }
    func weight(_ name: String) throws -> (shape: [Int], values: [Float]) {
        let array = try fixture["weights__\(name)"]
        return (array.shape, array.values)
    }
}

/// Drops one tensor, to check a missing key is reported.
struct WithoutTensor: WeightStore {
    let base: FixtureWeights
    let missing: String
    func contains(_ name: String) -> Bool { name != missing && base.contains(name) }
    func weight(_ name: String) throws -> (shape: [Int], values: [Float]) { try base.weight(name) }
}

private func tinyConfig() throws -> ResNetConfig {
    var root = URL(fileURLWithPath: #filePath)
    while root.lastPathComponent != "Tests" { root.deleteLastPathComponent() }
    let data = try Data(contentsOf: root.appendingPathComponent("Fixtures/kernels/resnet_tiny_config.json"))
    return try JSONDecoder().decode(ResNetConfig.self, from: data)
}

@Suite("ResNet") struct ResNetTests {
    /// pooler_output of a tiny random transformers ResNetModel (tools/reference/make_kernel_fixtures.py).
    @Test func matchesTransformers() throws {
        let fixture = try KernelFixture("resnet_tiny")
        let model = try ResNetModel(config: try tinyConfig(), weights: FixtureWeights(fixture: fixture), imageSize: 64)
        let x = try fixture["resnet__x"], expected = try fixture["resnet__pooler_output"]
        let vectors = try model.embed(pixels: x.values, count: 2, height: 64, width: 48)
        #expect(vectors.count == 2 && vectors.allSatisfy { $0.count == 32 })
        for (index, vector) in vectors.enumerated() {
            let reference = Array(expected.values[(index * 32)..<((index + 1) * 32)])
            let dot = zip(vector, reference).reduce(0) { $0 + Double($1.0) * Double($1.1) }
            let norms = (vector.reduce(0) { $0 + Double($1 * $1) } * reference.reduce(0) { $0 + Double($1 * $1) }).squareRoot()
            #expect(dot / norms >= 0.99999)
            let referenceNorm = Float(reference.reduce(0) { $0 + Double($1 * $1) }.squareRoot())
            let worst = zip(vector, reference).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-4 * referenceNorm)
        }
        // Batch of two equals each image alone.
        let single = try model.embed(pixels: Array(x.values[..<(3 * 64 * 48)]), count: 1, height: 64, width: 48)
        #expect(zip(single[0], vectors[0]).allSatisfy { abs($0 - $1) <= 1e-5 })
    }

    @Test func reportsMissingAndMisshapedTensors() throws {
        let fixture = try KernelFixture("resnet_tiny")
        let weights = FixtureWeights(fixture: fixture)
        let key = "encoder.stages.1.layers.0.shortcut.normalization.running_var"
        #expect(throws: ModelError.missingTensor(key)) {
            try ResNetModel(config: try tinyConfig(), weights: WithoutTensor(base: weights, missing: key))
        }
        var config = try tinyConfig()
        config.embeddingSize = 4
        #expect(throws: ModelError.self) { try ResNetModel(config: config, weights: weights) }
        config = try tinyConfig()
        config.hiddenAct = "gelu"
        #expect(throws: ModelError.unsupportedConfig("hidden_act gelu")) { try ResNetModel(config: config, weights: weights) }
    }
}
