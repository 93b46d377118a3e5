// CLIP image and text towers against transformers 5.23 goldens (Tests/Fixtures/embeddings, computed by
// tools/reference/ref_embeddings.py from the tiny checkpoints in Tests/Fixtures/checkpoints/clip{,-gelu}).
import Embedding
import Foundation
import Imaging
import Models
import TensorFiles
import Testing
import Tokenization

@Suite struct CLIPTests {
    static let checkpoints = ["clip", "clip-gelu"]

    /// All fixture images of `embeddings/<checkpoint>.npz` with their reference input tensor and golden vector.
    static func imageCases(_ checkpoint: String) throws -> [(file: String, input: [Float], golden: [Float])] {
        let goldens = try CLIPFixtures.npz("embeddings/\(checkpoint).npz")
        let preprocess = try CLIPFixtures.npz("preprocess/clip.npz")
        // ref_embeddings.py feeds both checkpoints the tensor of the "clip" processor (openai's config).
        let preprocessor = try ImagePreprocessor.load(modelDirectory: CLIPFixtures.checkpoint("clip"))
        return try goldens.names.map { file in
            (file, try CLIPFixtures.inputTensor(file: file, preprocess: preprocess, preprocessor: preprocessor),
             try CLIPFixtures.floats(goldens, file))
        }
    }

    @Test(arguments: checkpoints)
    func imageFeaturesMatchTransformers(checkpoint: String) throws {
        let model = try CLIPModel.load(from: CLIPFixtures.checkpoint(checkpoint))
        let cases = try Self.imageCases(checkpoint)
        #expect(cases.count >= 40)
        let size = model.config.visionConfig.imageSize
        let batch = ImageTensor(shape: [cases.count, 3, size, size], values: cases.flatMap(\.input))
        let batched = try model.forward(batch)
        #expect(batched.count == cases.count)
        for (index, item) in cases.enumerated() {
            let single = try model.forward(ImageTensor(shape: [3, size, size], values: item.input))
            #expect(single.count == 1)
            let comparison = CLIPComparison(single[0], item.golden)
            #expect(comparison.withinTolerance, "\(checkpoint) \(item.file): \(comparison)")
            // Batched (several passes of up to maxImagesPerPass) equals one by one.
            let batchVsSingle = CLIPComparison(batched[index], single[0])
            #expect(batchVsSingle.maxAbsDiff <= 1e-6 * batchVsSingle.referenceNorm,
                    "\(checkpoint) \(item.file) batch vs single: \(batchVsSingle)")
        }
    }

    /// The stored reference tensors equal what our pipeline computes, so using our pipeline for the other images is
    /// feeding the reference's input.
    @Test func ownPreprocessingEqualsStoredReferenceTensors() throws {
        let preprocess = try CLIPFixtures.npz("preprocess/clip.npz")
        let preprocessor = try ImagePreprocessor.load(modelDirectory: CLIPFixtures.checkpoint("clip"))
        let stored = preprocess.names.filter { $0.hasSuffix("__tensor") }
        #expect(!stored.isEmpty)
        for key in stored {
            let file = String(key.dropLast("__tensor".count))
            let image = try PosterDecoder().decode(contentsOf: CLIPFixtures.root.appendingPathComponent("images/\(file)"))
            #expect(try preprocessor.tensor(for: image).values == CLIPFixtures.floats(preprocess, key), "\(file)")
        }
    }

    struct TextRecord: Decodable {
        let index: Int
        let text: String
        let ids_truncated_77: [Int]
    }

    static func textRecords() throws -> [TextRecord] {
        struct File: Decodable { let texts: [TextRecord] }
        let data = try Data(contentsOf: CLIPFixtures.root.appendingPathComponent("embeddings/clip_text.json"))
        return try JSONDecoder().decode(File.self, from: data).texts
    }

    @Test(arguments: checkpoints)
    func textFeaturesMatchTransformers(checkpoint: String) throws {
        let model = try CLIPModel.load(from: CLIPFixtures.checkpoint(checkpoint))
        let goldens = try CLIPFixtures.npz("embeddings/clip_text.npz")
        let records = try Self.textRecords()
        #expect(records.count >= 20)
        let batched = try model.textFeatures(tokenIDs: records.map(\.ids_truncated_77))
        let fromStrings = try model.textFeatures(records.map(\.text))
        for (index, record) in records.enumerated() {
            let golden = try CLIPFixtures.floats(goldens, "\(checkpoint)__\(record.index)")
            let single = try model.textFeatures(tokenIDs: [record.ids_truncated_77])[0]
            let comparison = CLIPComparison(single, golden)
            #expect(comparison.withinTolerance, "\(checkpoint) text \(record.index) \(record.text.prefix(30)): \(comparison)")
            let batchVsSingle = CLIPComparison(batched[index], single)
            #expect(batchVsSingle.maxAbsDiff <= 1e-6 * batchVsSingle.referenceNorm,
                    "\(checkpoint) text \(record.index) batch vs single: \(batchVsSingle)")
            // Our tokenizer gives the reference ids, so the string path gives the same vectors as the same batch of ids.
            #expect(fromStrings[index] == batched[index], "\(checkpoint) text \(record.index) via the tokenizer")
        }
    }

    /// Pooling picks the end token the way transformers does for each `eos_token_id` rule: with the legacy id 2,
    /// argmax of the ids; otherwise the first end token, even when a larger id follows it.
    @Test func textPoolingRuleFollowsEosTokenID() throws {
        let directory = CLIPFixtures.checkpoint("clip")
        let legacy = try CLIPModel.load(from: directory)
        var config = legacy.config
        let eos = try #require(legacy.tokenizer?.endOfText)
        config.textConfig.eosTokenID = eos
        let modern = try CLIPModel(config: config, checkpoint: openCheckpoint(at: directory.appendingPathComponent("model.safetensors")))
        let ids = try #require(legacy.tokenizer?.encode("a movie poster", contextLength: 77, truncate: true))
        // Same result while the end token is the largest id.
        #expect(try legacy.textFeatures(tokenIDs: [ids]) == modern.textFeatures(tokenIDs: [ids]))
        // An id above the end token after it: legacy pools there, the modern rule still at the end token.
        let extended = ids + [eos - 1, eos - 2]
        let withLarger = ids.dropLast() + [eos, 3]
        #expect(try modern.textFeatures(tokenIDs: [extended]) == modern.textFeatures(tokenIDs: [ids]))
        #expect(try legacy.textFeatures(tokenIDs: [Array(withLarger)]) == legacy.textFeatures(tokenIDs: [ids]))
        #expect(try legacy.textFeatures(tokenIDs: [ids + [eos]]) == legacy.textFeatures(tokenIDs: [ids]))
    }

    @Test(arguments: checkpoints)
    func openCLIPLayoutGivesTheSameFeatures(checkpoint: String) throws {
        let directory = CLIPFixtures.checkpoint(checkpoint)
        let reference = try CLIPModel.load(from: directory)
        let stored = try openCheckpoint(at: directory.appendingPathComponent("model.safetensors"))
        let openCLIP = try CLIPMemoryCheckpoint.openCLIPLayout(of: stored)
        #expect(openCLIP.info("visual.conv1.weight") != nil && openCLIP.info("vision_model.pre_layrnorm.weight") == nil)
        #expect(openCLIP.tensorNames.contains("visual.transformer.resblocks.0.attn.in_proj_weight"))
        let model = try CLIPModel(config: reference.config, checkpoint: openCLIP, tokenizer: reference.tokenizer)
        let cases = try Self.imageCases(checkpoint).prefix(4)
        let size = reference.config.visionConfig.imageSize
        let batch = ImageTensor(shape: [cases.count, 3, size, size], values: cases.flatMap(\.input))
        #expect(try model.forward(batch) == reference.forward(batch))
        let texts = try Self.textRecords().map(\.text)
        #expect(try model.textFeatures(texts) == reference.textFeatures(texts))
        // The adapter names every transformers key the stored checkpoint has.
        #expect(Set(OpenCLIPCheckpoint(openCLIP).tensorNames) == Set(stored.tensorNames))
    }

    @Test func missingTensorIsNamed() throws {
        let directory = CLIPFixtures.checkpoint("clip")
        let config = try CLIPConfig.load(from: directory.appendingPathComponent("config.json"))
        let stored = try openCheckpoint(at: directory.appendingPathComponent("model.safetensors"))
        let all = try CLIPMemoryCheckpoint.copy(of: stored)
        for dropped in ["vision_model.encoder.layers.1.mlp.fc2.weight", "text_projection.weight",
                        "vision_model.embeddings.class_embedding", "text_model.final_layer_norm.bias"] {
            let reader = CLIPMemoryCheckpoint(all.filter { $0.0 != dropped })
            #expect(throws: ModelError.missingTensor(dropped)) { try CLIPModel(config: config, checkpoint: reader) }
        }
        // In open_clip layout the error names both keys.
        let openCLIP = try CLIPMemoryCheckpoint.openCLIPLayout(of: stored)
        let withoutFused = CLIPMemoryCheckpoint(
            try CLIPMemoryCheckpoint.copy(of: openCLIP).filter { $0.0 != "transformer.resblocks.1.attn.in_proj_bias" })
        do {
            _ = try CLIPModel(config: config, checkpoint: withoutFused)
            Issue.record("loading without attn.in_proj_bias succeeded")
        } catch let error as ModelError {
            #expect(error == .missingTensor("text_model.encoder.layers.1.self_attn.q_proj.bias"))
        }
    }

    @Test func misshapedTensorIsNamed() throws {
        let directory = CLIPFixtures.checkpoint("clip")
        let config = try CLIPConfig.load(from: directory.appendingPathComponent("config.json"))
        let stored = try openCheckpoint(at: directory.appendingPathComponent("model.safetensors"))
        let all = try CLIPMemoryCheckpoint.copy(of: stored)
        let target = "vision_model.encoder.layers.0.self_attn.k_proj.weight"
        let reader = CLIPMemoryCheckpoint(all.map { name, tensor in
            name == target ? (name, FloatTensor(shape: [16, 64], values: tensor.values)) : (name, tensor)
        })
        #expect(throws: ModelError.wrongShape(name: target, expected: [32, 32], found: [16, 64])) {
            try CLIPModel(config: config, checkpoint: reader)
        }
        // A config that disagrees with the checkpoint is reported the same way.
        var wider = config
        wider.projectionDim = 24
        #expect(throws: ModelError.wrongShape(name: "visual_projection.weight", expected: [24, 32], found: [16, 32])) {
            try CLIPModel(config: wider, checkpoint: stored)
        }
        var unknownActivation = config
        unknownActivation.visionConfig.hiddenAct = "relu6"
        #expect(throws: ModelError.self) { try CLIPModel(config: unknownActivation, checkpoint: stored) }
    }

    @Test func missingFilesAreReported() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("clip-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: ModelError.self) { try CLIPModel.load(from: empty) }
        try FileManager.default.copyItem(at: CLIPFixtures.checkpoint("clip").appendingPathComponent("config.json"),
                                         to: empty.appendingPathComponent("config.json"))
        #expect(throws: ModelError.self) { try CLIPModel.load(from: empty) }
    }

    @Test func badInputsThrow() throws {
        let model = try CLIPModel.load(from: CLIPFixtures.checkpoint("clip"))
        let text = model.config.textConfig
        #expect(throws: ModelError.self) { try model.forward(ImageTensor(shape: [1, 3, 32, 32], values: .init(repeating: 0, count: 3072))) }
        #expect(throws: ModelError.self) { try model.textFeatures(tokenIDs: [[]]) }
        #expect(throws: ModelError.self) { try model.textFeatures(tokenIDs: [[0, text.vocabSize]]) }
        #expect(throws: ModelError.self) { try model.textFeatures(tokenIDs: [[0, -1]]) }
        #expect(throws: ModelError.self) {
            try model.textFeatures(tokenIDs: [Array(repeating: 5, count: text.maxPositionEmbeddings + 1)])
        }
        #expect(try model.textFeatures(tokenIDs: []).isEmpty)
        #expect(try model.forward(ImageTensor(shape: [0, 3, 224, 224], values: [])).isEmpty)
    }

    @Test func concurrentCallersGetTheSerialResults() async throws {
        let model = try CLIPModel.load(from: CLIPFixtures.checkpoint("clip"))
        let cases = Array(try Self.imageCases("clip").prefix(6))
        let serial = try cases.map { try model.forward(ImageTensor(shape: [3, 224, 224], values: $0.input))[0] }
        let texts = try Self.textRecords().map(\.ids_truncated_77)
        let serialText = try model.textFeatures(tokenIDs: texts)
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for round in 0..<8 {
                group.addTask {
                    if round % 2 == 0 {
                        let index = round / 2 % cases.count
                        let result = try model.forward(ImageTensor(shape: [3, 224, 224], values: cases[index].input))
                        return result[0] == serial[index]
                    }
                    return try model.textFeatures(tokenIDs: texts) == serialText
                }
            }
            for try await same in group { #expect(same) }
        }
    }
}
