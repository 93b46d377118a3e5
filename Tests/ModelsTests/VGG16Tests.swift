import Foundation
import Testing
@testable import Models
import TensorFiles

@Suite("VGG16") struct VGG16Tests {
    private static let fixtures: URL = {
        var root = URL(fileURLWithPath: #filePath)
        while root.lastPathComponent != "Tests" { root.deleteLastPathComponent() }
        return root.appendingPathComponent("Fixtures")
    }()

    /// fc7 after ReLU of the tiny timm checkpoint and of its torchvision copy equals the reference
    /// (embeddings/vgg16.npz, computed with timm) for every image that has a reference tensor.
    @Test(arguments: ["checkpoints/vgg16", "checkpoints/vgg16-torchvision/vgg16.pth"])
    func matchesReferenceEmbeddings(_ path: String) throws {
        let model = try VGG16Model(path: Self.fixtures.appendingPathComponent(path))
        #expect(model.layout == (path.hasSuffix(".pth") ? .torchvision : .timm))
        let inputs = try NPZArchive(contentsOf: Self.fixtures.appendingPathComponent("preprocess/vgg16.npz"))
        let references = try NPZArchive(contentsOf: Self.fixtures.appendingPathComponent("embeddings/vgg16.npz"))
        let files = inputs.names.filter { $0.hasSuffix("__tensor") }.map { String($0.dropLast("__tensor".count)) }
        #expect(files.count >= 3)
        var batch: [Float] = []
        for file in files { batch += try inputs.array("\(file)__tensor").floats() }
        let vectors = try model.embed(pixels: batch, count: files.count, height: 224, width: 224)
        for (index, file) in files.enumerated() {
            let vector = vectors[index], reference = try references.array(file).floats()
            #expect(vector.count == reference.count, "\(file)")
            let dot = zip(vector, reference).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let nv = vector.reduce(0.0) { $0 + Double($1) * Double($1) }, nr = reference.reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(dot / (nv * nr).squareRoot() >= 0.99999, "\(file)")
            let worst = zip(vector, reference).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-4 * Float(nr.squareRoot()), "\(file): max abs difference \(worst)")
        }
        let first = try model.embed(pixels: Array(batch[..<(3 * 224 * 224)]), count: 1, height: 224, width: 224)
        #expect(zip(first[0], vectors[0]).allSatisfy { abs($0 - $1) <= 1e-5 })
    }

    @Test func misshapedTensorIsReported() throws {
        let directory = Self.fixtures.appendingPathComponent("checkpoints/malformed/vgg16_misshaped_tensor")
        #expect(throws: CheckpointError.self) { try VGG16Model(path: directory) }
    }
}
