import Foundation
import Testing
@testable import Models
import TensorFiles

@Suite("CLIP image tower") struct CLIPVisionTests {
    private static let fixtures: URL = {
        var root = URL(fileURLWithPath: #filePath)
        while root.lastPathComponent != "Tests" { root.deleteLastPathComponent() }
        return root.appendingPathComponent("Fixtures")
    }()

    /// get_image_features of the tiny checkpoints (quick_gelu / patch 32 and gelu / patch 14) equals the reference
    /// (embeddings/clip.npz, clip-gelu.npz) for every image with a reference tensor.
    @Test(arguments: ["clip", "clip-gelu"])
    func matchesReferenceEmbeddings(_ name: String) throws {
        let model = try CLIPVisionModel(directory: Self.fixtures.appendingPathComponent("checkpoints/\(name)"))
        let inputs = try NPZArchive(contentsOf: Self.fixtures.appendingPathComponent("preprocess/clip.npz"))
        let references = try NPZArchive(contentsOf: Self.fixtures.appendingPathComponent("embeddings/\(name).npz"))
        let files = inputs.names.filter { $0.hasSuffix("__tensor") }.map { String($0.dropLast("__tensor".count)) }
        #expect(files.count >= 3)
        var batch: [Float] = []
        for file in files { batch += try inputs.array("\(file)__tensor").floats() }
        let vectors = try model.embed(pixels: batch, count: files.count)
        for (index, file) in files.enumerated() {
            let vector = vectors[index], reference = try references.array(file).floats()
            #expect(vector.count == reference.count, "\(file)")
            let dot = zip(vector, reference).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let nv = vector.reduce(0.0) { $0 + Double($1) * Double($1) }, nr = reference.reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(dot / (nv * nr).squareRoot() >= 0.99999, "\(file)")
            let worst = zip(vector, reference).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-4 * Float(nr.squareRoot()), "\(file): max abs difference \(worst)")
        }
        let first = try model.embed(pixels: Array(batch[..<(3 * 224 * 224)]), count: 1)
        #expect(zip(first[0], vectors[0]).allSatisfy { abs($0 - $1) <= 1e-5 })
    }
}
