// A model folder or cache snapshot that holds its weights only as `pytorch_model.bin` (older caches, torch-only
// folders) resolves, and its identity is the sha256 of that file; the models read it through the restricted unpickler.
import Crypto
import Foundation
import ModelHub
import PosterSimCore
import TestSupport
import Testing

@Suite struct PickleWeightsTests {
    /// Tests/Fixtures/checkpoints/resnet50-bin: config.json, preprocessor_config.json and pytorch_model.bin only.
    static let binFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/checkpoints/resnet50-bin")

    static func sha256(of url: URL) throws -> String {
        SHA256.hash(data: try Data(contentsOf: url)).map { String(format: "%02x", $0) }.joined()
    }

    @Test func modelDirectoryWithOnlyPytorchModelBinResolves() throws {
        let resolver = try ModelResolver(
            settings: HubSettings(environment: ["HF_HUB_CACHE": "/nonexistent"]),
            modelDirectoryArguments: ["resnet50=\(Self.binFolder.path)"])
        let location = try resolver.resolve(.resnet50)
        #expect(location.weightsFileName == "pytorch_model.bin")
        #expect(location.presentFiles.contains("pytorch_model.bin"))
        #expect(try resolver.weightsSHA256(for: .resnet50)
            == Self.sha256(of: Self.binFolder.appendingPathComponent("pytorch_model.bin")))
    }

    @Test func cacheSnapshotWithOnlyPytorchModelBinResolves() throws {
        let cache = try temporaryFolder("modelhub")
        defer { try? FileManager.default.removeItem(at: cache) }
        let commit = String(repeating: "ab", count: 20)
        let repo = cache.appendingPathComponent("models--microsoft--resnet-50")
        let snapshot = repo.appendingPathComponent("snapshots/\(commit)")
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: repo.appendingPathComponent("refs"), withIntermediateDirectories: true)
        try Data(commit.utf8).write(to: repo.appendingPathComponent("refs/main"))
        for file in ["config.json", "preprocessor_config.json", "pytorch_model.bin"] {
            try FileManager.default.copyItem(
                at: Self.binFolder.appendingPathComponent(file), to: snapshot.appendingPathComponent(file))
        }
        let resolver = try ModelResolver(settings: HubSettings(environment: ["HF_HUB_CACHE": cache.path, "HF_HUB_OFFLINE": "1"]))
        let location = try resolver.resolve(.resnet50)
        #expect(location.directory.path.hasSuffix("snapshots/\(commit)") || location.directory.path.hasSuffix("snapshots/\(commit)/"))
        #expect(location.weightsURL.lastPathComponent == "pytorch_model.bin")
        #expect(try resolver.weightsSHA256(for: .resnet50) == Self.sha256(of: snapshot.appendingPathComponent("pytorch_model.bin")))
    }

    @Test func aFolderWithNeitherWeightsFileIsStillRefused() throws {
        let folder = try temporaryFolder("modelhub")
        defer { try? FileManager.default.removeItem(at: folder) }
        for file in ["config.json", "preprocessor_config.json"] {
            try FileManager.default.copyItem(at: Self.binFolder.appendingPathComponent(file), to: folder.appendingPathComponent(file))
        }
        let resolver = try ModelResolver(
            settings: HubSettings(environment: ["HF_HUB_CACHE": "/nonexistent"]), modelDirectoryArguments: ["resnet50=\(folder.path)"])
        #expect(throws: ModelHubError.self) { try resolver.resolve(.resnet50) }
    }
}
