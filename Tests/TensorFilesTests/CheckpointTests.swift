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
    /// Every (checkpoint dir, tensor) golden in tensors.npz reads back bit-identical through `openCheckpoint`, from
    /// whichever format the directory holds; goldens of `resnet50` are also checked against `resnet50-bin`.
    @Test func tensorsMatchGoldensInEveryFormat() throws {
        let goldens = try NPZArchive(contentsOf: checkpointsRoot.appendingPathComponent("tensors.npz"))
        var readers: [String: any CheckpointReader] = [:]
        var checkedFormats: Set<String> = []
        #expect(!goldens.names.isEmpty)
        for key in goldens.names {
            let parts = key.components(separatedBy: "__")
            try #require(parts.count == 2, "golden key \(key)")
            let expected = try goldens.array(key)
            var directories = [parts[0]]
            if parts[0] == "resnet50" { directories.append("resnet50-bin") }
            for directory in directories {
                let url = checkpointsRoot.appendingPathComponent(directory)
                guard FileManager.default.fileExists(atPath: url.path) else { continue }
                if readers[directory] == nil { readers[directory] = try openCheckpoint(at: checkpointFile(in: url)) }
                let reader = try #require(readers[directory])
                let tensor = try reader.floats(parts[1], expectedShape: expected.shape)
                #expect(sameBits(tensor.values, expected.floats()), "\(directory): \(parts[1])")
                checkedFormats.insert(String(describing: type(of: reader)))
            }
        }
        #expect(checkedFormats == ["SafetensorsFile", "TorchCheckpoint"])
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
            #expect(actual.shape == expected.shape)
            #expect(sameBits(actual.values, expected.floats()), "\(name) (\(file.info(name)!.dtype))")
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

    /// Strided tensors in a torch zip (a transposed weight, an offset view) are gathered into C order.
    @Test func torchStridedTensors() throws {
        let golden = try NPZArchive(contentsOf: checkpointsRoot.appendingPathComponent("tensors.npz"))
        let pth = try checkpointFile(in: checkpointsRoot.appendingPathComponent("vgg16-torchvision"))
        let reader = try openCheckpoint(at: pth)
        #expect(reader is TorchCheckpoint)
        for key in golden.names where key.hasPrefix("vgg16-torchvision__") {
            let name = String(key.dropFirst("vgg16-torchvision__".count))
            #expect(sameBits(try reader.floats(name).values, try golden.array(key).floats()), "\(name)")
        }
    }
}
