// The format-independent read API the inference engine uses to load weights.
import Foundation

/// Name, element type and shape of one tensor in a checkpoint.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: TensorDType
    public let shape: [Int]

    public init(name: String, dtype: TensorDType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }
}

/// Errors from loading tensors through `CheckpointReader`, and from recognising a checkpoint file.
public enum CheckpointError: Error, CustomStringConvertible, Sendable, Equatable {
    case missingTensor(String)
    case shapeMismatch(name: String, expected: [Int], actual: [Int])
    case unknownFormat(path: String)
    case legacyTorchFormat(path: String)

    public var description: String {
        switch self {
        case .missingTensor(let name): return "checkpoint has no tensor named \(name)"
        case .shapeMismatch(let name, let expected, let actual): return "tensor \(name) has shape \(actual), expected \(expected)"
        case .unknownFormat(let path): return "\(path) is neither a safetensors file nor a PyTorch zip checkpoint"
        case .legacyTorchFormat(let path):
            return "\(path) is a legacy (pre-1.6, non-zip) torch.save file, which is not supported; re-save it with a current torch"
        }
    }
}

/// Read access to the tensors of a checkpoint. `SafetensorsFile` and `TorchCheckpoint` implement it.
///
/// Guarantees: `tensorNames` lists every tensor exactly once; `info` is available without reading data; `floats`
/// returns Float32 values in C order, converting other dtypes (F16/BF16 exactly); F32 data that is stored contiguous
/// and 4-byte aligned in a mapped file is returned as a zero-copy view.
public protocol CheckpointReader: Sendable {
    var tensorNames: [String] { get }
    func info(_ name: String) -> TensorInfo?
    /// The tensor in its stored dtype as dense C-order bytes.
    func tensor(_ name: String) throws -> RawTensor
    /// The tensor's values as Float32.
    func floats(_ name: String) throws -> FloatTensor
    /// Drops the file's pages from the resident set (see `ByteBuffer.dropResidentPages`); values read before and
    /// after are the same. Call it once a model has loaded, so copied weights are not counted twice.
    func dropResidentPages()
}

extension CheckpointReader {
    /// Readers that hold no file mapping (in-memory ones) have nothing to drop.
    public func dropResidentPages() {}

    /// The tensor's values as Float32 after checking its shape; throws `missingTensor` or `shapeMismatch`.
    public func floats(_ name: String, expectedShape: [Int]) throws -> FloatTensor {
        guard let info = info(name) else { throw CheckpointError.missingTensor(name) }
        guard info.shape == expectedShape else {
            throw CheckpointError.shapeMismatch(name: name, expected: expectedShape, actual: info.shape)
        }
        return try floats(name)
    }
}

/// Opens a checkpoint by its leading bytes: `PK\x03\x04` is a PyTorch zip checkpoint (`pytorch_model.bin`, `.pth`,
/// `.pt`); a little-endian header length followed by `{` is safetensors. The file is memory-mapped.
public func openCheckpoint(at url: URL) throws -> any CheckpointReader {
    let buffer = try ByteBuffer(mapping: url)
    let head = buffer.withUnsafeBytes { Array($0.prefix(9)) }
    if head.count >= 4, head[0] == 0x50, head[1] == 0x4B, head[2] == 0x03, head[3] == 0x04 {
        return try TorchCheckpoint(buffer: buffer)
    }
    // Before torch 1.6, torch.save wrote a bare pickle stream (PROTO opcode 0x80, then the protocol number).
    if head.count >= 2, head[0] == 0x80, (2...5).contains(head[1]) {
        throw CheckpointError.legacyTorchFormat(path: url.path)
    }
    if url.pathExtension == "safetensors" || (head.count == 9 && head[8] == UInt8(ascii: "{")) {
        return try SafetensorsFile(buffer: buffer)
    }
    throw CheckpointError.unknownFormat(path: url.path)
}
