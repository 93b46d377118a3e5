import Foundation
import Testing
@testable import TensorFiles

/// The checkpoint file holding the weights in a fixture directory.
private func checkpointFile(in directory: URL) throws -> URL {
    let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
    let weights = files.filter { ["safetensors", "bin", "pth", "pt"].contains($0.pathExtension) }
    return try #require(weights.count == 1 ? weights.first : nil, "expected one weights file in \(directory.path)")
}

@Suite struct CheckpointTests {
    /// Every golden in tensors.npz (key `<checkpoint dir>__<tensor>`, optionally with a row slice `[:k]` / `[-k:]`)
    /// reads back bit-identical through `openCheckpoint` from the format that directory holds.
    @Test func tensorsMatchGoldensInEveryFormat() throws {
        let goldens = try NPZArchive(contentsOf: checkpointsRoot.appendingPathComponent("tensors.npz"))
        var readers: [String: any CheckpointReader] = [:]
        var formats: Set<String> = []
        #expect(!goldens.names.isEmpty)
        for key in goldens.names {
            let parts = key.components(separatedBy: "__")
            try #require(parts.count == 2, "golden key \(key)")
            let directory = parts[0]
            var name = parts[1]
            var rows: (first: Bool, count: Int)?
            if name.hasSuffix("]"), let open = name.lastIndex(of: "[") {
                let slice = String(name[name.index(after: open)..<name.index(before: name.endIndex)])
                name = String(name[..<open])
                if slice.hasPrefix(":"), let count = Int(slice.dropFirst()) { rows = (true, count) }
                else if slice.hasPrefix("-"), slice.hasSuffix(":"), let count = Int(slice.dropFirst().dropLast()) { rows = (false, count) }
                else { Issue.record("unknown slice \(slice) in \(key)"); continue }
            }
            if readers[directory] == nil {
                readers[directory] = try openCheckpoint(at: checkpointFile(in: checkpointsRoot.appendingPathComponent(directory)))
            }
            let reader = try #require(readers[directory])
            formats.insert(String(describing: type(of: reader)))
            let info = try #require(reader.info(name), "\(directory) lacks \(name)")
            let tensor = try reader.floats(name, expectedShape: info.shape)
            var values = tensor.values
            var shape = info.shape
            if let rows {
                let rowSize = shape.dropFirst().reduce(1, *)
                values = rows.first ? Array(values.prefix(rows.count * rowSize)) : Array(values.suffix(rows.count * rowSize))
                shape[0] = rows.count
            }
            let expected = try goldens.array(key)
            #expect(shape == expected.shape || (shape == [] && expected.shape == [1]), "\(key)")
            #expect(sameBits(values, expected.floats()), "\(key)")
        }
        #expect(formats == ["SafetensorsFile", "TorchCheckpoint"])
        #expect(readers.keys.contains("resnet50-bin") && readers.keys.contains("vgg16-torchvision"))
    }

    /// pytorch_model.bin holds the same state dict as model.safetensors: same names, dtypes, shapes and values.
    @Test func torchBinEqualsSafetensors() throws {
        let safetensors = try openCheckpoint(at: checkpointsRoot.appendingPathComponent("resnet50/model.safetensors"))
        let torch = try openCheckpoint(at: checkpointsRoot.appendingPathComponent("resnet50-bin/pytorch_model.bin"))
        #expect(safetensors is SafetensorsFile)
        #expect(torch is TorchCheckpoint)
        #expect(Set(safetensors.tensorNames) == Set(torch.tensorNames))
        for name in safetensors.tensorNames {
            #expect(safetensors.info(name) == torch.info(name))
            #expect(try safetensors.tensor(name).bytes.bytes == torch.tensor(name).bytes.bytes, "\(name)")
        }
    }

    /// Contiguous F32 weights come back as views into the mapped file, from safetensors and torch zip alike.
    @Test func float32WeightsAreZeroCopy() throws {
        for path in ["clip/model.safetensors", "resnet50-bin/pytorch_model.bin"] {
            let reader = try openCheckpoint(at: checkpointsRoot.appendingPathComponent(path))
            var views = 0
            for name in reader.tensorNames where reader.info(name)?.dtype == .float32 {
                let tensor = try reader.floats(name)
                if tensor.isView { views += 1 }
                tensor.withUnsafeBufferPointer { #expect($0.count == tensor.count) }
            }
            #expect(views > 0 && views == reader.tensorNames.filter { reader.info($0)?.dtype == .float32 }.count, "\(path)")
        }
    }

    /// dtypes.safetensors stores the same values as F32/F16/BF16/...; dtypes.npz holds torch's `.float()` of each.
    @Test func dtypeConversionsMatchTorch() throws {
        let file = try SafetensorsFile(contentsOf: checkpointsRoot.appendingPathComponent("dtypes.safetensors"))
        let goldens = try NPZArchive(contentsOf: checkpointsRoot.appendingPathComponent("dtypes.npz"))
        #expect(Set(goldens.names) == Set(file.tensorNames))
        var dtypes: Set<TensorDType> = []
        for name in file.tensorNames {
            let expected = try goldens.array(name)
            let actual = try file.floats(name)
            // The reference stores a 0-d tensor as shape (1,).
            #expect(actual.shape == expected.shape || (actual.shape == [] && expected.shape == [1]), "\(name)")
            #expect(sameBitsOrBothNaN(actual.values, expected.floats()), "\(name) (\(file.info(name)!.dtype))")
            #expect(actual.values.filter(\.isNaN).count == expected.floats().filter(\.isNaN).count)
            dtypes.insert(file.info(name)!.dtype)
        }
        #expect(dtypes.isSuperset(of: [.float32, .float16, .bfloat16]))
    }

    /// The loader's shape and presence checks.
    @Test func expectedShapeAndMissingTensor() throws {
        let reader = try openCheckpoint(at: checkpointsRoot.appendingPathComponent("resnet50/model.safetensors"))
        let name = try #require(reader.tensorNames.first)
        let info = try #require(reader.info(name))
        #expect(throws: CheckpointError.shapeMismatch(name: name, expected: info.shape + [1], actual: info.shape)) {
            try reader.floats(name, expectedShape: info.shape + [1])
        }
        #expect(throws: CheckpointError.missingTensor("no.such.weight")) {
            try reader.floats("no.such.weight", expectedShape: [1])
        }
    }

    /// A misaligned F32 tensor is copied (not viewed), with the right values; an aligned one is viewed.
    @Test func misalignedFloat32IsCopied() throws {
        let values: [Float] = [1.5, -2, 3.25, .infinity, -0.0, 7]
        for padding in 0..<4 {
            let header = #"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"__metadata__":{"format":"pt"}}"#
            let bytes = makeSafetensors(header: header, padding: padding, data: floatBytes(values))
            let file = try SafetensorsFile(buffer: ByteBuffer(copying: bytes))
            #expect(file.metadata == ["format": "pt"])
            let tensor = try file.floats("w")
            #expect(sameBits(tensor.values, values))
            let aligned = (8 + Array(header.utf8).count + padding) % 4 == 0
            #expect(tensor.isView == aligned)
        }
    }

    /// The torchvision-layout .pth and the timm-layout safetensors hold the same `features.*` weights.
    @Test func torchvisionPthMatchesTimmSafetensors() throws {
        let pth = try openCheckpoint(at: checkpointsRoot.appendingPathComponent("vgg16-torchvision/vgg16.pth"))
        let timm = try openCheckpoint(at: checkpointsRoot.appendingPathComponent("vgg16/model.safetensors"))
        #expect(pth is TorchCheckpoint)
        let features = timm.tensorNames.filter { $0.hasPrefix("features.") }
        #expect(features.count == 26)
        for name in features {
            #expect(pth.info(name) == timm.info(name))
            #expect(sameBits(try pth.floats(name).values, try timm.floats(name).values), "\(name)")
        }
    }
}
