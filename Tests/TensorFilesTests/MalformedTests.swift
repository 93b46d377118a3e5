import Foundation
import Testing
@testable import TensorFiles

/// The error kind names used by checkpoints/malformed/manifest.json, for our typed errors.
private func manifestKind(_ error: any Error) -> String {
    switch error {
    case let error as SafetensorsError:
        switch error {
        case .offsetsOutOfBounds, .invalidOffsets: return "offsetsOutOfBounds"
        case .overlappingTensors: return "overlappingTensors"
        case .byteCountMismatch, .shapeOverflow: return "sizeMismatch"
        case .headerTooLarge, .fileTooSmall: return "headerTooLarge"
        case .headerNotUTF8, .headerNotJSON, .headerNotObject, .invalidMetadata, .invalidTensorEntry, .unknownDType: return "invalidHeader"
        }
    case PickleError.disallowedGlobal: return "forbiddenGlobal"
    case CheckpointError.missingTensor: return "missingTensor"
    case CheckpointError.shapeMismatch: return "shapeMismatch"
    default: return "other: \(error)"
    }
}

@Suite struct MalformedTests {
    struct Case: Sendable, CustomStringConvertible {
        let file: String
        let error: String
        let description: String
    }

    static let cases: [Case] = {
        let url = checkpointsRoot.appendingPathComponent("malformed/manifest.json")
        guard let data = try? Data(contentsOf: url),
              let items = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else { return [] }
        return items.map { Case(file: $0["file"] as? String ?? "", error: $0["error"] as? String ?? "", description: $0["description"] as? String ?? "") }
    }()

    @Test func manifestIsPresent() {
        #expect(Self.cases.count >= 10)
    }

    /// Single-file cases: opening the file (and reading every tensor) fails with the manifest's error kind; pickle
    /// cases name the forbidden global that the manifest describes.
    @Test(arguments: cases.filter { !$0.file.hasSuffix("/") })
    func fileFailsAsManifestSays(_ item: Case) throws {
        let url = checkpointsRoot.appendingPathComponent("malformed").appendingPathComponent(item.file)
        do {
            let reader = try openCheckpoint(at: url)
            for name in reader.tensorNames { _ = try reader.floats(name) }
            Issue.record("\(item.file) loaded without error")
        } catch {
            #expect(manifestKind(error) == item.error, "\(item.file): \(error)")
            if case PickleError.disallowedGlobal(let name) = error {
                // The description says e.g. "GLOBAL os.system + REDUCE" or "... names posix.system".
                let words = item.description.split(separator: " ").map(String.init)
                #expect(words.contains(name), "\(item.file): refused \(name), manifest says \(item.description)")
            }
        }
    }

    /// Directory cases: loading every tensor of the intact checkpoint with its expected shape fails with the manifest's
    /// error kind, naming the tensor the manifest describes.
    @Test(arguments: cases.filter { $0.file.hasSuffix("/") })
    func checkpointDirectoryFailsAsManifestSays(_ item: Case) throws {
        let directory = checkpointsRoot.appendingPathComponent("malformed").appendingPathComponent(item.file)
        let intactName = item.file.hasPrefix("resnet50") ? "resnet50" : "vgg16"
        let intact = try openCheckpoint(at: checkpointsRoot.appendingPathComponent("\(intactName)/model.safetensors"))
        let broken = try openCheckpoint(at: directory.appendingPathComponent("model.safetensors"))
        var failures: [(String, any Error)] = []
        for name in intact.tensorNames {
            do {
                _ = try broken.floats(name, expectedShape: intact.info(name)!.shape)
            } catch {
                failures.append((name, error))
            }
        }
        try #require(failures.count == 1, "\(item.file): \(failures.map(\.0))")
        let (name, error) = failures[0]
        #expect(manifestKind(error) == item.error)
        #expect(item.description.contains(name), "\(item.file): failed on \(name), manifest says \(item.description)")
    }
}
