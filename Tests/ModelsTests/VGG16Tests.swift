import Embedding
import Foundation
import Imaging
import TensorFiles
import Tensors
import Testing
@testable import Models

// Goldens: Tests/Fixtures/embeddings/vgg16.npz (tools/reference/ref_embeddings.py): for every ok image, timm's
// fc7 (forward_head(forward_features(x), pre_logits=True)) of checkpoints/vgg16, where x is the reference vgg16
// preprocessing of the Pillow-decoded image; the reference checked torchvision's classifier[:-1] on
// checkpoints/vgg16-torchvision (same weights) against it. Inputs here: decoded.npz (Pillow's RGB arrays) through
// our ImagePreprocessor, which the Imaging tests prove equal to the reference tensors; the few reference tensors
// stored in preprocess/vgg16.npz are compared too.

private enum VGGFixtures {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { break }
        }
        return url.appendingPathComponent("Tests/Fixtures")
    }()

    static let timmDirectory = root.appendingPathComponent("checkpoints/vgg16")
    static let torchvisionDirectory = root.appendingPathComponent("checkpoints/vgg16-torchvision")

    /// (file name, reference fc7, preprocessed input) for every image with a golden, in a fixed order.
    static let cases: [(name: String, reference: [Float], input: ImageTensor)] = {
        do {
            let embeddings = try NPZArchive(contentsOf: root.appendingPathComponent("embeddings/vgg16.npz"))
            let decoded = try NPZArchive(contentsOf: root.appendingPathComponent("decoded.npz"))
            let preprocessor = try ImagePreprocessor.load(modelDirectory: timmDirectory)
            return try embeddings.names.sorted().map { name in
                let rgb = try decoded.array(name)
                guard rgb.shape.count == 3, rgb.shape[2] == 3 else { throw FixtureError("decoded \(name): \(rgb.shape)") }
                let image = RGBImage(width: rgb.shape[1], height: rgb.shape[0], pixels: try rgb.uint8s())
                return (name, try embeddings.array(name).floats(), try preprocessor.tensor(for: image))
            }
        } catch {
            Issue.record("cannot read VGG16 fixtures: \(error)")
            return []
        }
    }()

    static let timm: VGG16? = try? VGG16.load(from: timmDirectory)
    static let torchvision: VGG16? = try? VGG16.load(from: torchvisionDirectory)
}

private struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private func norm(_ v: [Float]) -> Double { v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }

private func cosine(_ a: [Float], _ b: [Float]) -> Double {
    let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    return dot / (norm(a) * norm(b))
}

private func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Double {
    zip(a, b).reduce(0.0) { max($0, abs(Double($1.0) - Double($1.1))) }
}

/// The issue's fidelity bar: cosine ≥ 0.99999 and max |difference| ≤ 1e-4 · ‖reference‖.
private func expectMatches(_ ours: [Float], _ reference: [Float], _ label: String) {
    #expect(ours.count == reference.count, "\(label): \(ours.count) values, reference \(reference.count)")
    guard ours.count == reference.count, !reference.isEmpty else { return }
    let cos = cosine(ours, reference), diff = maxAbsDifference(ours, reference), limit = 1e-4 * norm(reference)
    #expect(cos >= 0.99999, "\(label): cosine \(cos)")
    #expect(diff <= limit, "\(label): max |diff| \(diff) > \(limit)")
}

/// A checkpoint reader that hides some tensors and reports other shapes for some, over a real checkpoint.
private struct EditedCheckpoint: CheckpointReader {
    let base: any CheckpointReader
    var hidden: Set<String> = []
    var reshaped: [String: [Int]] = [:]

    var tensorNames: [String] { base.tensorNames.filter { !hidden.contains($0) } }

    func info(_ name: String) -> TensorInfo? {
        guard !hidden.contains(name), let info = base.info(name) else { return nil }
        return TensorInfo(name: name, dtype: info.dtype, shape: reshaped[name] ?? info.shape)
    }

    func tensor(_ name: String) throws -> RawTensor {
        guard info(name) != nil else { throw CheckpointError.missingTensor(name) }
        return try base.tensor(name)
    }

    func floats(_ name: String) throws -> FloatTensor {
        guard info(name) != nil else { throw CheckpointError.missingTensor(name) }
        return try base.floats(name)
    }
}

@Suite("VGG16")
struct VGG16Tests {
    @Test("inputs equal the reference tensors stored for a subset")
    func inputsMatchReference() throws {
        let stored = try NPZArchive(contentsOf: VGGFixtures.root.appendingPathComponent("preprocess/vgg16.npz"))
        var compared = 0
        for (name, _, input) in VGGFixtures.cases where stored.names.contains("\(name)__tensor") {
            let reference = try stored.array("\(name)__tensor")
            #expect(reference.shape == input.shape, "\(name)")
            #expect(reference.floats() == input.values, "\(name): preprocessing differs from the reference")
            compared += 1
        }
        #expect(compared >= 1)
    }

    @Test("timm layout: fc7 equals the reference for every image")
    func timmMatchesReference() throws {
        let model = try #require(VGGFixtures.timm)
        #expect(model.layout == .timm)
        #expect(VGGFixtures.cases.count >= 10)
        for (name, reference, input) in VGGFixtures.cases {
            let output = try model.forward(input)
            #expect(output.count == 1)
            expectMatches(output.first ?? [], reference, "timm \(name)")
        }
    }

    @Test("direct convolutions: fc7 equals the reference too, and the Winograd default's vector")
    func directConvolutionsMatchReference() throws {
        let direct = try VGG16.load(from: VGGFixtures.timmDirectory, convolutions: .direct)
        let winograd = try #require(VGGFixtures.timm)
        for (name, reference, input) in VGGFixtures.cases {
            let output = try direct.forward(input).first ?? []
            expectMatches(output, reference, "direct \(name)")
            let other = try winograd.forward(input).first ?? []
            #expect(maxAbsDifference(output, other) <= 1e-5 * norm(reference), "\(name): algorithms disagree")
        }
    }

    @Test("torchvision layout: fc7 equals the reference for every image, and the timm layout's vector")
    func torchvisionMatchesReference() throws {
        let model = try #require(VGGFixtures.torchvision)
        let timm = try #require(VGGFixtures.timm)
        #expect(model.layout == .torchvision)
        for (name, reference, input) in VGGFixtures.cases {
            let output = try model.forward(input).first ?? []
            expectMatches(output, reference, "torchvision \(name)")
            let other = try timm.forward(input).first ?? []
            #expect(maxAbsDifference(output, other) <= 1e-6 * norm(reference), "\(name): layouts disagree")
        }
    }

    @Test("widths come from the checkpoint shapes")
    func widthsFromCheckpoint() throws {
        let model = try #require(VGGFixtures.timm)
        let reader = try openCheckpoint(at: VGGFixtures.timmDirectory.appendingPathComponent("model.safetensors"))
        let convKeys = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28].map { "features.\($0).weight" }
        #expect(model.convolutionWidths == convKeys.map { reader.info($0)?.shape.first ?? -1 })
        #expect(model.outputDimension == reader.info("pre_logits.fc2.weight")?.shape.first)
        #expect(model.inputChannels == 3)
        let torchvision = try #require(VGGFixtures.torchvision)
        #expect(torchvision.convolutionWidths == model.convolutionWidths)
        #expect(torchvision.outputDimension == model.outputDimension)
    }

    @Test("a batch gives the same vectors as its images one by one", arguments: [VGG16.Layout.timm, .torchvision])
    func batchEqualsSingles(layout: VGG16.Layout) throws {
        let model = try #require(layout == .timm ? VGGFixtures.timm : VGGFixtures.torchvision)
        let cases = Array(VGGFixtures.cases.prefix(8))
        let batch = try model.forward(cases.map(\.input))
        #expect(batch.count == cases.count)
        for (index, item) in cases.enumerated() {
            let single = try model.forward(item.input).first ?? []
            let limit = 1e-6 * norm(item.reference)
            #expect(maxAbsDifference(batch[index], single) <= limit, "\(item.name): batch vs single")
            expectMatches(batch[index], item.reference, "batch \(item.name)")
        }
    }

    @Test("concurrent callers get the same vectors as sequential ones")
    func concurrentCallers() async throws {
        let model = try #require(VGGFixtures.timm)
        let cases = Array(VGGFixtures.cases.prefix(6))
        let sequential = try cases.map { try model.forward($0.input).first ?? [] }
        let concurrent = try await withThrowingTaskGroup(of: (Int, [Float]).self) { group in
            for _ in 0..<3 {
                for (index, item) in cases.enumerated() {
                    group.addTask { (index, try model.forward(item.input).first ?? []) }
                }
            }
            var results: [(Int, [Float])] = []
            for try await result in group { results.append(result) }
            return results
        }
        #expect(concurrent.count == 3 * cases.count)
        for (index, vector) in concurrent {
            #expect(maxAbsDifference(vector, sequential[index]) <= 1e-6 * norm(sequential[index]), "image \(index)")
        }
    }

    @Test("packed and mapped fully-connected weights give the same vectors")
    func packedEqualsMapped() throws {
        let mapped = try #require(VGGFixtures.timm)
        let packed = try VGG16.load(from: VGGFixtures.timmDirectory, headWeights: .packed)
        for item in VGGFixtures.cases.prefix(4) {
            let a = try mapped.forward(item.input).first ?? [], b = try packed.forward(item.input).first ?? []
            #expect(maxAbsDifference(a, b) <= 1e-6 * norm(item.reference), "\(item.name)")
        }
    }

    @Test("the misshaped-tensor fixture fails naming the tensor")
    func misshapedFixture() throws {
        let directory = VGGFixtures.root.appendingPathComponent("checkpoints/malformed/vgg16_misshaped_tensor")
        #expect(throws: ModelError.wrongShape(name: "features.7.weight", expected: [8, 8, 3, 3], found: [8, 8, 2, 3])) {
            try VGG16.load(from: directory)
        }
    }

    @Test("a missing tensor fails naming it", arguments: [
        ("timm", "features.0.weight"), ("timm", "features.10.bias"), ("timm", "features.28.weight"),
        ("timm", "pre_logits.fc1.bias"), ("timm", "pre_logits.fc2.weight"),
        ("torchvision", "features.5.weight"), ("torchvision", "classifier.0.bias"), ("torchvision", "classifier.3.weight"),
    ])
    func missingTensor(layout: String, name: String) throws {
        let url = layout == "timm" ? VGGFixtures.timmDirectory.appendingPathComponent("model.safetensors")
                                   : VGGFixtures.torchvisionDirectory.appendingPathComponent("vgg16.pth")
        let reader = EditedCheckpoint(base: try openCheckpoint(at: url), hidden: [name])
        #expect(throws: ModelError.missingTensor(name)) { try VGG16(weights: reader) }
    }

    @Test("a misshaped tensor fails naming it")
    func misshapedTensors() throws {
        let timm = try openCheckpoint(at: VGGFixtures.timmDirectory.appendingPathComponent("model.safetensors"))
        let torchvision = try openCheckpoint(at: VGGFixtures.torchvisionDirectory.appendingPathComponent("vgg16.pth"))
        func shape(_ reader: any CheckpointReader, _ name: String) -> [Int] { reader.info(name)?.shape ?? [] }
        let fc1 = shape(timm, "pre_logits.fc1.weight"), fc2 = shape(timm, "pre_logits.fc2.weight")
        let cases: [(any CheckpointReader, String, [Int], ModelError)] = [
            // A conv whose input width disagrees with the previous conv's output.
            (timm, "features.2.weight", [fc1[0], 5, 3, 3],
             .wrongShape(name: "features.2.weight", expected: [fc1[0], shape(timm, "features.0.weight")[0], 3, 3],
                         found: [fc1[0], 5, 3, 3])),
            (timm, "features.12.bias", [3], .wrongShape(name: "features.12.bias",
                                                        expected: [shape(timm, "features.12.weight")[0]], found: [3])),
            (timm, "pre_logits.fc1.weight", [fc1[0], fc1[1], 6, 6],
             .wrongShape(name: "pre_logits.fc1.weight", expected: [fc1[0], fc1[1], 7, 7], found: [fc1[0], fc1[1], 6, 6])),
            (timm, "pre_logits.fc2.weight", [fc2[0], fc2[1] + 1, 1, 1],
             .wrongShape(name: "pre_logits.fc2.weight", expected: [fc2[0], fc2[1], 1, 1], found: [fc2[0], fc2[1] + 1, 1, 1])),
            (torchvision, "classifier.0.weight", [fc1[0], fc1[1] * 36],
             .wrongShape(name: "classifier.0.weight", expected: [fc1[0], fc1[1] * 49], found: [fc1[0], fc1[1] * 36])),
        ]
        for (reader, name, fake, expected) in cases {
            let edited = EditedCheckpoint(base: reader, reshaped: [name: fake])
            #expect(throws: expected) { try VGG16(weights: edited) }
        }
    }

    @Test("unknown layouts, configs and inputs are typed errors")
    func otherErrors() throws {
        let timmURL = VGGFixtures.timmDirectory.appendingPathComponent("model.safetensors")
        let reader = EditedCheckpoint(base: try openCheckpoint(at: timmURL), hidden: ["pre_logits.fc1.weight"])
        #expect(throws: ModelError.self) { try VGG16(weights: reader) }
        let config = try TimmModelConfig.load(from: VGGFixtures.timmDirectory.appendingPathComponent("config.json"))
        var resnet = config
        resnet.architecture = "resnet50"
        #expect(throws: ModelError.unsupportedConfig("architecture \"resnet50\" (expected vgg16)")) {
            try VGG16(weights: try openCheckpoint(at: timmURL), config: resnet)
        }
        var wrongFeatures = config
        wrongFeatures.numFeatures = (config.numFeatures ?? 0) + 1
        #expect(throws: ModelError.self) { try VGG16(weights: try openCheckpoint(at: timmURL), config: wrongFeatures) }

        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("vgg16-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: ModelError.self) { try VGG16.load(from: empty) }

        let model = try #require(VGGFixtures.timm)
        #expect(throws: ModelError.self) { try model.forward(Tensor(zeros: [1, 4, 224, 224])) }
        #expect(throws: ModelError.self) { try model.forward(Tensor(zeros: [1, 3, 16, 224])) }
        #expect(throws: ModelError.self) { try model.forward(Tensor(zeros: [3, 224, 224])) }
        #expect(try model.forward([ImageTensor]()).isEmpty)
    }
}
