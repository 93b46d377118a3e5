import Foundation
import Testing
@testable import TensorFiles

/// Hand-assembled pickles (opcodes from CPython Lib/pickletools.py) run through the restricted unpickler.
@Suite struct PickleTests {
    private func load(_ bytes: [UInt8]) throws -> PickleValue {
        try bytes.withUnsafeBytes { try RestrictedUnpickler.load($0) }
    }

    private func binunicode(_ text: String) -> [UInt8] {
        let utf8 = Array(text.utf8)
        let n = UInt32(utf8.count)
        return [UInt8(ascii: "X")] + (0..<4).map { UInt8((n >> (8 * UInt32($0))) & 0xFF) } + utf8
    }

    private func shortUnicode(_ text: String) -> [UInt8] { [0x8C, UInt8(text.utf8.count)] + Array(text.utf8) }

    /// `os.system("touch <marker>")` via GLOBAL + REDUCE, the classic pickle exploit, inside a torch-style zip.
    private func osSystemCheckpoint(marker: String) -> [UInt8] {
        let pickle: [UInt8] = [0x80, 0x02] + Array("cos\nsystem\n".utf8) + [UInt8(ascii: "q"), 0]
            + binunicode("touch \(marker)") + [0x85, UInt8(ascii: "R"), UInt8(ascii: ".")]
        return makeStoredZip([("archive/data.pkl", pickle), ("archive/byteorder", Array("little".utf8))])
    }

    @Test func refusesOsSystemAndExecutesNothing() throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("tensorfiles-pwned-\(getpid())").path
        let bytes = osSystemCheckpoint(marker: marker)
        #expect(throws: PickleError.disallowedGlobal("os.system")) { try TorchCheckpoint(buffer: ByteBuffer(copying: bytes)) }
        let url = try temporaryFile(bytes, name: "evil.pth")
        #expect(throws: PickleError.disallowedGlobal("os.system")) { try openCheckpoint(at: url) }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test func refusesStackGlobalEval() throws {
        let pickle: [UInt8] = [0x80, 0x04] + shortUnicode("builtins") + [0x94] + shortUnicode("eval") + [0x94, 0x93]
            + shortUnicode("1+1") + [0x85, UInt8(ascii: "R"), UInt8(ascii: ".")]
        #expect(throws: PickleError.disallowedGlobal("builtins.eval")) { try load(pickle) }
    }

    /// The refusal happens at the GLOBAL opcode even when the rest of the stream is garbage.
    @Test func refusesBeforeAnythingElse() throws {
        for name in ["subprocess\nPopen", "torch\nload", "collections\ndefaultdict", "torch._utils\n_rebuild_qtensor", "__builtin__\ngetattr"] {
            let pickle: [UInt8] = [0x80, 0x02, UInt8(ascii: "c")] + Array((name + "\n").utf8) + [0xFF, 0xFF]
            #expect(throws: PickleError.disallowedGlobal(name.replacingOccurrences(of: "\n", with: "."))) { try load(pickle) }
        }
    }

    @Test func allowedGlobalsBuildAStateDict() throws {
        // OrderedDict() with one tensor: _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', 6) persid, 0,
        // (2, 3), (3, 1), False, OrderedDict()).
        var pickle: [UInt8] = [0x80, 0x02] + Array("ccollections\nOrderedDict\n".utf8) + [UInt8(ascii: "q"), 0, 0x29, UInt8(ascii: "R")]
        pickle += [UInt8(ascii: "(")] + binunicode("w") + Array("ctorch._utils\n_rebuild_tensor_v2\n".utf8)
        pickle += [UInt8(ascii: "("), UInt8(ascii: "(")] + binunicode("storage") + Array("ctorch\nFloatStorage\n".utf8)
        pickle += binunicode("0") + binunicode("cpu") + [UInt8(ascii: "K"), 6, UInt8(ascii: "t"), UInt8(ascii: "Q")]
        pickle += [UInt8(ascii: "K"), 0, UInt8(ascii: "K"), 2, UInt8(ascii: "K"), 3, 0x86, UInt8(ascii: "K"), 3, UInt8(ascii: "K"), 1, 0x86]
        pickle += [0x89, UInt8(ascii: "h"), 0, 0x29, UInt8(ascii: "R"), UInt8(ascii: "t"), UInt8(ascii: "R"), UInt8(ascii: "u"), UInt8(ascii: ".")]
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        let zip = makeStoredZip([("m/data.pkl", pickle), ("m/byteorder", Array("little".utf8)), ("m/data/0", floatBytes(values))])
        let checkpoint = try TorchCheckpoint(buffer: ByteBuffer(copying: zip))
        #expect(checkpoint.tensorNames == ["w"])
        #expect(checkpoint.info("w") == TensorInfo(name: "w", dtype: .float32, shape: [2, 3]))
        #expect(try checkpoint.floats("w").values == values)

        // The same tensor claiming a storage of 5 elements is rejected, as is a big-endian archive.
        let short = makeStoredZip([("m/data.pkl", pickle), ("m/data/0", floatBytes(Array(values.prefix(5))))])
        #expect(throws: TorchCheckpointError.storageSizeMismatch(tensor: "w", key: "0", expected: 24, actual: 20)) {
            try TorchCheckpoint(buffer: ByteBuffer(copying: short))
        }
        let big = makeStoredZip([("m/data.pkl", pickle), ("m/byteorder", Array("big".utf8)), ("m/data/0", floatBytes(values))])
        #expect(throws: TorchCheckpointError.unsupportedByteOrder("big")) { try TorchCheckpoint(buffer: ByteBuffer(copying: big)) }
        let missing = makeStoredZip([("m/data.pkl", pickle)])
        #expect(throws: TorchCheckpointError.missingStorage(tensor: "w", key: "0")) { try TorchCheckpoint(buffer: ByteBuffer(copying: missing)) }
    }

    /// Pushes `name` and `_rebuild_tensor_v2(storage persid, offset, size, stride, False, OrderedDict())` (F32).
    private func tensorItem(_ name: String, key: String, numel: Int, offset: Int, shape: [Int], stride: [Int]) -> [UInt8] {
        func tuple(_ values: [Int]) -> [UInt8] {
            [UInt8(ascii: "(")] + values.flatMap { [UInt8(ascii: "K"), UInt8($0)] } + [UInt8(ascii: "t")]
        }
        var out = binunicode(name) + Array("ctorch._utils\n_rebuild_tensor_v2\n".utf8) + [UInt8(ascii: "(")]
        out += [UInt8(ascii: "(")] + binunicode("storage") + Array("ctorch\nFloatStorage\n".utf8) + binunicode(key)
        out += binunicode("cpu") + [UInt8(ascii: "K"), UInt8(numel), UInt8(ascii: "t"), UInt8(ascii: "Q")]
        out += [UInt8(ascii: "K"), UInt8(offset)] + tuple(shape) + tuple(stride) + [0x89]
        out += Array("ccollections\nOrderedDict\n".utf8) + [0x29, UInt8(ascii: "R"), UInt8(ascii: "t"), UInt8(ascii: "R")]
        return out
    }

    /// Non-contiguous views (transpose, storage offset, shared storage) are gathered into C order, and a checkpoint
    /// dict whose tensors sit under `state_dict` is unwrapped.
    @Test func stridedTensorsAndWrappedStateDict() throws {
        let storage: [Float] = (0..<12).map { Float($0) }
        var inner: [UInt8] = [UInt8(ascii: "}"), UInt8(ascii: "(")]
        inner += tensorItem("t", key: "0", numel: 12, offset: 0, shape: [4, 3], stride: [1, 4])   // transpose of 3x4
        inner += tensorItem("o", key: "0", numel: 12, offset: 5, shape: [2, 3], stride: [3, 1])   // offset view
        inner += tensorItem("c", key: "0", numel: 12, offset: 1, shape: [2, 2], stride: [6, 2])   // strided rows/cols
        inner += tensorItem("e", key: "0", numel: 12, offset: 0, shape: [0, 3], stride: [3, 1])   // empty
        inner += [UInt8(ascii: "u")]
        var pickle: [UInt8] = [0x80, 0x02, UInt8(ascii: "}"), UInt8(ascii: "(")] + binunicode("epoch") + [UInt8(ascii: "K"), 3]
        pickle += binunicode("state_dict") + inner + [UInt8(ascii: "u"), UInt8(ascii: ".")]
        let zip = makeStoredZip([("ckpt/data.pkl", pickle), ("ckpt/data/0", floatBytes(storage))])
        let checkpoint = try TorchCheckpoint(buffer: ByteBuffer(copying: zip))
        #expect(checkpoint.tensorNames == ["t", "o", "c", "e"])
        // Expected values follow from the definition of strided indexing: element [i, j] = storage[offset + i*s0 + j*s1].
        func strided(_ offset: Int, _ shape: [Int], _ stride: [Int]) -> [Float] {
            (0..<shape[0]).flatMap { i in (0..<shape[1]).map { j in storage[offset + i * stride[0] + j * stride[1]] } }
        }
        #expect(try checkpoint.floats("t").values == strided(0, [4, 3], [1, 4]))
        #expect(try checkpoint.floats("o").values == strided(5, [2, 3], [3, 1]))
        #expect(try checkpoint.floats("o").isView)
        #expect(try checkpoint.floats("c").values == strided(1, [2, 2], [6, 2]))
        #expect(try checkpoint.floats("e").values.isEmpty)

        // A view reaching past its storage is rejected at open.
        var outOfRange: [UInt8] = [0x80, 0x02, UInt8(ascii: "}"), UInt8(ascii: "(")]
        outOfRange += tensorItem("bad", key: "0", numel: 12, offset: 4, shape: [3, 3], stride: [3, 1]) + [UInt8(ascii: "u"), UInt8(ascii: ".")]
        let badZip = makeStoredZip([("ckpt/data.pkl", outOfRange), ("ckpt/data/0", floatBytes(storage))])
        #expect(throws: TorchCheckpointError.self) { try TorchCheckpoint(buffer: ByteBuffer(copying: badZip)) }
    }

    @Test func malformedStreamsFailCleanly() throws {
        let cases: [([UInt8], PickleError)] = [
            ([0x80, 0x02, UInt8(ascii: "R")], .stackUnderflow(offset: 2)),
            ([0x80, 0x02, UInt8(ascii: "h"), 7], .missingMemo(index: 7, offset: 2)),
            ([0x80, 0x02, UInt8(ascii: "X"), 0xFF, 0xFF, 0, 0], .truncated(offset: 2)),
            ([0x80, 0x02, UInt8(ascii: "i")] + Array("os\nsystem\n".utf8), .unsupportedOpcode(opcode: UInt8(ascii: "i"), offset: 2)),
            ([0x80, 0x02, UInt8(ascii: "}"), UInt8(ascii: "u")], .missingMark(offset: 3)),
            ([0x80, 0x02, UInt8(ascii: "N")], .missingStop),
            ([0x80, 0x09], .unsupportedProtocol(9)),
            ([0x80, 0x02, 0x8A, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1], .integerTooLarge(offset: 2)),
        ]
        for (bytes, error) in cases {
            #expect(throws: error) { try load(bytes) }
        }
        // A dict that contains itself (memo reference) is refused rather than flattened forever.
        let selfReference: [UInt8] = [0x80, 0x02, UInt8(ascii: "}"), UInt8(ascii: "q"), 0] + binunicode("a")
            + [UInt8(ascii: "h"), 0, UInt8(ascii: "s"), UInt8(ascii: ".")]
        let zip = makeStoredZip([("m/data.pkl", selfReference)])
        #expect(throws: TorchCheckpointError.self) { try TorchCheckpoint(buffer: ByteBuffer(copying: zip)) }
    }

    /// LONG1 decoding matches Python's little-endian two's complement.
    @Test func longIntegers() throws {
        let cases: [([UInt8], Int)] = [([], 0), ([0xFF], -1), ([0x80], -128), ([0xFF, 0x00], 255), ([0, 0, 0, 0, 0, 0, 0, 0x80, 0xFF], Int.min)]
        for (digits, value) in cases {
            let result = try load([0x80, 0x02, 0x8A, UInt8(digits.count)] + digits + [UInt8(ascii: ".")])
            #expect(result.intValue == value)
        }
    }
}
