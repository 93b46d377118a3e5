import Foundation
import Testing
@testable import TensorFiles

@Suite struct NumPyTests {
    /// Every writable dtype survives encode → decode with identical bytes and shape, including scalars and empty arrays.
    @Test(arguments: [TensorDType.float32, .float64, .float16, .uint8, .int8, .int16, .int32, .int64, .bool])
    func roundTrip(dtype: TensorDType) throws {
        var random = LCG(state: UInt64(dtype.byteSize) * 7919 + UInt64(dtype.rawValue.count))
        for shape in [[2, 3, 4], [5], [], [0, 3], [1, 1, 7]] {
            let count = checkedElementCount(shape)!
            var bytes = (0..<(count * dtype.byteSize)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if dtype == .bool { bytes = bytes.map { $0 & 1 } }
            let tensor = try RawTensor(dtype: dtype, shape: shape, bytes: ByteView(copying: bytes))
            let encoded = try NPY.encode(tensor)
            // NumPy pads the preamble + header to a multiple of 64 bytes and ends it with a newline.
            let headerLength = Int(encoded[8]) | Int(encoded[9]) << 8
            #expect((10 + headerLength) % 64 == 0)
            #expect(encoded[10 + headerLength - 1] == 0x0A)
            let decoded = try NPY.read(ByteView(copying: encoded))
            #expect(decoded.dtype == dtype)
            #expect(decoded.shape == shape)
            #expect(decoded.bytes.bytes == bytes)

            let url = try temporaryFile([], name: "roundtrip-\(dtype.rawValue)-\(shape.count).npy")
            try NPY.write(tensor, to: url)
            let mapped = try NPY.read(contentsOf: url)
            #expect(mapped.bytes.bytes == bytes)
            #expect(mapped.shape == shape)
        }
    }

    @Test func floatWriterRoundTrip() throws {
        let values: [Float] = (0..<24).map { Float($0) * 0.37 - 3 }
        let url = try temporaryFile([], name: "floats.npy")
        try NPY.write(floats: values, shape: [2, 3, 4], to: url)
        let read = try NPY.read(contentsOf: url)
        #expect(read.dtype == .float32)
        #expect(read.shape == [2, 3, 4])
        #expect(sameBits(read.floats(), values))
        #expect(throws: NumPyError.self) { try NPY.write(floats: values, shape: [5, 5], to: url) }
    }

    /// Builds a .npy with a given version and header text, to exercise parsing of headers NumPy may write.
    private func npy(version: UInt8, header: String, data: [UInt8]) -> [UInt8] {
        var text = Array(header.utf8)
        let preamble = version == 1 ? 10 : 12
        while (preamble + text.count + 1) % 64 != 0 { text.append(0x20) }
        text.append(0x0A)
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
        let length = UInt32(text.count)
        out += version == 1 ? [UInt8(length & 0xFF), UInt8(length >> 8)] : (0..<4).map { UInt8((length >> (8 * UInt32($0))) & 0xFF) }
        return out + text + data
    }

    @Test func versionsTwoAndThree() throws {
        let data = floatBytes([1, 2, 3, 4, 5, 6])
        for version: UInt8 in [1, 2, 3] {
            let bytes = npy(version: version, header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data: data)
            let tensor = try NPY.read(ByteView(copying: bytes))
            #expect(tensor.shape == [2, 3])
            #expect(tensor.floats() == [1, 2, 3, 4, 5, 6])
        }
    }

    @Test func rejectsBadInput() throws {
        let data = floatBytes([1, 2, 3, 4, 5, 6])
        func read(_ bytes: [UInt8]) throws { _ = try NPY.read(ByteView(copying: bytes)) }
        #expect(throws: NumPyError.fortranOrderUnsupported) {
            try read(npy(version: 1, header: "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data: data))
        }
        #expect(throws: NumPyError.unsupportedDType(">f4")) {
            try read(npy(version: 1, header: "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", data: data))
        }
        #expect(throws: NumPyError.dataSizeMismatch(expected: 28, actual: 24)) {
            try read(npy(version: 1, header: "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }", data: data))
        }
        #expect(throws: NumPyError.self) {
            try read(npy(version: 1, header: "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", data: data))
        }
        #expect(throws: TensorError.self) {
            try read(npy(version: 1, header: "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", data: data))
        }
        #expect(throws: NumPyError.self) {
            try read(npy(version: 1, header: "{'descr': '<f4', 'shape': (6,), }", data: data))
        }
        #expect(throws: NumPyError.unsupportedVersion(major: 4, minor: 0)) {
            try read(npy(version: 4, header: "{}", data: []))
        }
        #expect(throws: NumPyError.notNPY) { try read(Array("not numpy at all".utf8)) }
        // Every truncation of a valid file fails cleanly.
        let valid = npy(version: 1, header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data: data)
        for length in 0..<valid.count {
            #expect(throws: NumPyError.self) { try read(Array(valid.prefix(length))) }
        }
    }

    /// decoded.npz (np.savez_compressed, deflate): every decodable image is an HxWx3 uint8 array whose size matches
    /// the image manifest written by the reference script.
    @Test func decodedGoldensReadable() throws {
        let archive = try NPZArchive(contentsOf: fixturesRoot.appendingPathComponent("decoded.npz"))
        let manifest = try #require(try readJSON(fixturesRoot.appendingPathComponent("images/manifest.json")) as? [[String: Any]])
        let ok = manifest.filter { $0["expect"] as? String == "ok" }
        #expect(!ok.isEmpty)
        #expect(Set(archive.names) == Set(ok.compactMap { $0["file"] as? String }))
        #expect(archive.zip.entries.allSatisfy { $0.method == 8 })
        for entry in ok {
            let name = try #require(entry["file"] as? String)
            let array = try archive.array(name)
            #expect(array.dtype == .uint8)
            #expect(array.shape == [entry["height"] as? Int ?? -1, entry["width"] as? Int ?? -1, 3], "\(name)")
        }
    }

    @Test(arguments: ["clip", "resnet50", "vgg16"])
    func preprocessGoldensReadable(processor: String) throws {
        let archive = try NPZArchive(contentsOf: fixturesRoot.appendingPathComponent("preprocess/\(processor).npz"))
        #expect(!archive.names.isEmpty)
        for name in archive.names {
            let array = try archive.array(name)
            if name.hasSuffix("__tensor") {
                #expect(array.dtype == .float32)
                #expect(array.shape == [3, 224, 224])
                #expect(array.floats().allSatisfy { $0.isFinite })
            } else {
                #expect(name.hasSuffix("__resized"))
                #expect(array.dtype == .uint8)
                #expect(array.shape.count == 3 && array.shape[2] == 3)
            }
        }
        #expect(throws: NumPyError.arrayNotFound("no-such-array")) { try archive.array("no-such-array") }
    }
}
