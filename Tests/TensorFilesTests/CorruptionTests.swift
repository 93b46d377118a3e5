import Foundation
import Testing
@testable import TensorFiles

/// Truncates and corrupts valid checkpoints at many deterministic points. Every variant must either fail with a typed
/// error or load; nothing may crash. Truncations must always fail.
@Suite struct CorruptionTests {
    /// Opens `bytes` as a checkpoint and reads every tensor; returns the error, or nil when all of it loaded.
    private func loadEverything(_ bytes: [UInt8], torch: Bool) -> (any Error)? {
        do {
            let buffer = ByteBuffer(copying: bytes)
            let reader: any CheckpointReader = torch ? try TorchCheckpoint(buffer: buffer) : try SafetensorsFile(buffer: buffer)
            for name in reader.tensorNames {
                let tensor = try reader.floats(name)
                _ = tensor.withUnsafeBufferPointer { $0.reduce(0, +) }
            }
            return nil
        } catch {
            #expect(!String(describing: error).isEmpty)
            return error
        }
    }

    @Test(arguments: ["clip/model.safetensors", "resnet50-bin/pytorch_model.bin", "vgg16-torchvision/vgg16.pth"])
    func truncationAndCorruption(path: String) throws {
        let original = try [UInt8](Data(contentsOf: checkpointsRoot.appendingPathComponent(path)))
        let torch = !path.hasSuffix(".safetensors")
        #expect(loadEverything(original, torch: torch) == nil)

        var random = LCG(state: UInt64(original.count))
        // Truncation: every prefix length near the start and end, plus 200 spread points.
        var lengths = Array(0..<min(64, original.count)) + Array(max(0, original.count - 64)..<original.count)
        lengths += (0..<200).map { _ in random.below(original.count) }
        for length in Set(lengths) {
            #expect(loadEverything(Array(original.prefix(length)), torch: torch) != nil, "truncated to \(length)")
        }

        // Single-byte corruption: the header / directory regions (first 1 KB, last 512 bytes) densely, the rest sparsely.
        var errors = 0
        var positions = Array(0..<min(1024, original.count)) + Array(max(0, original.count - 512)..<original.count)
        positions += (0..<200).map { _ in random.below(original.count) }
        for position in positions {
            var corrupted = original
            corrupted[position] ^= UInt8(1 + random.below(255))
            if loadEverything(corrupted, torch: torch) != nil { errors += 1 }
        }
        // Many flips land in metadata that is checked (offsets, JSON, CRC-protected data), so errors must occur.
        #expect(errors > 0)

        // Overwriting 8-byte words with extreme values stresses size and offset arithmetic.
        for _ in 0..<200 {
            var corrupted = original
            let position = random.below(max(1, original.count - 8))
            let word: UInt64 = [UInt64.max, UInt64(Int64.max), 0x8000_0000, 0xFFFF_FFFF, 0][random.below(5)]
            for i in 0..<8 where position + i < corrupted.count { corrupted[position + i] = UInt8((word >> (8 * UInt64(i))) & 0xFF) }
            _ = loadEverything(corrupted, torch: torch)
        }
    }

    /// ZIP64 central-directory extra fields and end records are followed; every truncation of such an archive fails.
    @Test func zip64Archive() throws {
        let payload = (0..<300).map { UInt8($0 % 251) }
        let bytes = makeStoredZip([("a.bin", payload), ("b/c.txt", Array("hello".utf8))], zip64: true)
        let archive = try ZipArchive(buffer: ByteBuffer(copying: bytes))
        #expect(archive.names == ["a.bin", "b/c.txt"])
        #expect(try archive.contents(of: "a.bin").bytes == payload)
        #expect(try archive.contents(of: "b/c.txt").bytes == Array("hello".utf8))
        #expect(archive.entry(named: "a.bin")?.uncompressedSize == 300)
        for length in 0..<bytes.count {
            #expect(throws: ZipError.self) { try ZipArchive(buffer: ByteBuffer(copying: Array(bytes.prefix(length)))) }
        }
        var badCRC = bytes
        badCRC[100] ^= 0x55
        let corrupted = try ZipArchive(buffer: ByteBuffer(copying: badCRC))
        #expect(throws: ZipError.self) { try corrupted.contents(of: "a.bin") }
    }

    /// Malicious zip structures: huge claimed sizes and entry counts are rejected before any allocation.
    @Test func hostileZipFields() throws {
        let valid = makeStoredZip([("a/data.pkl", [0x80, 0x02, UInt8(ascii: "}"), UInt8(ascii: ".")])])
        _ = try ZipArchive(buffer: ByteBuffer(copying: valid))
        let eocd = valid.count - 22
        var manyEntries = valid
        manyEntries[eocd + 8] = 0xFF; manyEntries[eocd + 9] = 0xFF; manyEntries[eocd + 10] = 0xFF; manyEntries[eocd + 11] = 0xFF
        #expect(throws: ZipError.self) { try ZipArchive(buffer: ByteBuffer(copying: manyEntries)) }
        var farDirectory = valid
        for i in 16..<20 { farDirectory[eocd + i] = 0xFF }
        #expect(throws: ZipError.centralDirectoryOutOfBounds) { try ZipArchive(buffer: ByteBuffer(copying: farDirectory)) }
        // A deflate entry claiming 4 GB from a few bytes is refused by the ratio check.
        var bomb = valid
        let central = Int(valid[eocd + 16]) | Int(valid[eocd + 17]) << 8
        bomb[central + 10] = 8
        for i in 24..<28 { bomb[central + i] = 0xFF }
        let archive = try ZipArchive(buffer: ByteBuffer(copying: bomb))
        #expect(throws: ZipError.implausibleCompressionRatio(entry: "a/data.pkl")) { try archive.contents(of: "a/data.pkl") }
        #expect(throws: ZipError.endOfCentralDirectoryNotFound) { try ZipArchive(buffer: ByteBuffer(copying: [])) }
    }

    @Test func hostileSafetensorsHeaders() throws {
        let data = floatBytes([1, 2, 3, 4])
        let cases: [(String, SafetensorsError)] = [
            (#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,32]}}"#, .offsetsOutOfBounds(name: "a", end: 32, dataSize: 16)),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, .invalidOffsets(name: "a", begin: 8, end: 0)),
            (#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#, .byteCountMismatch(name: "a", expected: 12, actual: 16)),
            (#"{"a":{"dtype":"Q8","shape":[4],"data_offsets":[0,16]}}"#, .unknownDType(name: "a", dtype: "Q8")),
            (#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#, .shapeOverflow(name: "a", shape: [4611686018427387904, 4])),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, .overlappingTensors("a", "b")),
            (#"[1,2]"#, .headerNotObject),
            (#"{"__metadata__":{"k":1}}"#, .invalidMetadata),
        ]
        for (header, error) in cases {
            #expect(throws: error) { try SafetensorsFile(buffer: ByteBuffer(copying: makeSafetensors(header: header, data: data))) }
        }
        #expect(throws: SafetensorsError.self) {
            try SafetensorsFile(buffer: ByteBuffer(copying: makeSafetensors(header: #"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,16]}}"#, data: data)))
        }
        #expect(throws: SafetensorsError.self) {
            try SafetensorsFile(buffer: ByteBuffer(copying: makeSafetensors(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,-16]}}"#, data: data)))
        }
        #expect(throws: SafetensorsError.headerNotUTF8) {
            try SafetensorsFile(buffer: ByteBuffer(copying: makeSafetensors(header: "{\"\u{00e9}\":1}", data: []).map { $0 == 0xC3 ? 0xFF : $0 }))
        }
    }
}
