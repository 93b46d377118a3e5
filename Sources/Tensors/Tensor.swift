import CDNNL
#if canImport(Glibc)
import Glibc
#endif

/// A oneDNN memory descriptor (shape + physical layout), compared with `dnnl_memory_desc_equal`.
/// It is a plain C value (no pointers inside), so it is safe to share between threads.
public struct MemoryDescriptor: @unchecked Sendable, Equatable {
    var raw: dnnl_memory_desc_t

    init(raw: dnnl_memory_desc_t) { self.raw = raw }

    /// A dense row-major (plain) descriptor for `shape` (up to 6 dimensions), float32 unless `dataType` says.
    init(plain shape: [Int], dataType: dnnl_data_type_t = dnnl_f32) throws(EngineError) {
        let tags: [dnnl_format_tag_t] = [dnnl_a, dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd, dnnl_abcde, dnnl_abcdef]
        guard shape.count >= 1, shape.count < tags.count else {
            throw .invalidArgument("tensors of rank \(shape.count) are not supported")
        }
        var md = dnnl_memory_desc_t()
        let dims = shape.map { Int64($0) }
        try check(dnnl_memory_desc_init_by_tag(&md, Int32(shape.count), dims, dataType, tags[shape.count]),
                  "dnnl_memory_desc_init_by_tag")
        raw = md
    }

    /// nChw16c: an NCHW tensor with channels in blocks of 16 (zero padded), images back to back.
    init(blocked16 shape: [Int]) throws(EngineError) {
        guard shape.count == 4 else { throw .invalidArgument("nChw16c needs a rank-4 shape, got \(shape)") }
        var md = dnnl_memory_desc_t()
        try check(dnnl_memory_desc_init_by_tag(&md, 4, shape.map { Int64($0) }, dnnl_f32, dnnl_nChw16c),
                  "dnnl_memory_desc_init_by_tag(nChw16c)")
        raw = md
    }

    /// The element type (float32, or bfloat16 for bf16 activations and weights).
    var dataType: dnnl_data_type_t { raw.data_type }

    /// Whether this is one of oneDNN's Winograd weight layouts (which no reorder can read from).
    var isWinograd: Bool { raw.format_kind == dnnl_format_kind_wino }

    /// Bytes the layout occupies, padding included.
    var byteCount: Int {
        var md = raw
        return dnnl_memory_desc_get_size(&md)
    }

    public static func == (lhs: MemoryDescriptor, rhs: MemoryDescriptor) -> Bool {
        var a = lhs.raw, b = rhs.raw
        return dnnl_memory_desc_equal(&a, &b) != 0
    }
}

/// Float32 memory behind a tensor: either owned (freed with the last reference) or a slice of a workspace arena
/// chunk that it keeps alive. Contents may be written only by the operation that produced the tensor.
final class TensorStorage: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    /// Keeps an arena chunk alive while this slice is referenced; nil when `base` is owned.
    let owner: AnyObject?

    /// Allocates owned, 64-byte aligned, zero-filled memory.
    init(ownedBytes: Int) throws(EngineError) {
        let size = max(ownedBytes, 64)
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, 64, size) == 0, let pointer else { throw .outOfMemory(bytes: size) }
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        base = pointer
        byteCount = ownedBytes
        owner = nil
    }

    init(slice base: UnsafeMutableRawPointer, byteCount: Int, owner: AnyObject) {
        self.base = base
        self.byteCount = byteCount
        self.owner = owner
    }

    var floats: UnsafeMutablePointer<Float> { base.assumingMemoryBound(to: Float.self) }

    deinit { if owner == nil { free(base) } }
}

/// A tensor: a logical shape (PyTorch order, e.g. NCHW or [rows, columns]) and its storage.
///
/// Guarantees: `layout` is either `nil` (dense row-major, `count` float32 values) or a oneDNN layout chosen by a
/// primitive (e.g. channels-last `acdb` or nChw16c, float32 or, at bf16 precision, bfloat16), whose bytes may
/// include zero padding; `toArray()` always returns row-major float32 values, and every op that reads floats
/// itself (element-wise, pooling, attention) gets a plain float32 view first (`Workspace.plain`).
/// Tensors are values: operations never modify their inputs. A tensor produced inside a `Workspace` shares the
/// workspace's arena and is valid until the workspace is reset; copy out results with `toArray()` before that.
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    /// oneDNN layout when not plain row-major.
    public let blockedLayout: MemoryDescriptor?
    let storage: TensorStorage

    /// Number of logical elements.
    public var count: Int { shape.reduce(1, *) }
    public var isPlain: Bool { blockedLayout == nil }
    /// Whether the elements are float32 (plain tensors always are; bf16 ones have a layout).
    var isFloat32: Bool { blockedLayout.map { $0.dataType == dnnl_f32 } ?? true }

    init(shape: [Int], blockedLayout: MemoryDescriptor?, storage: TensorStorage) {
        self.shape = shape
        self.blockedLayout = blockedLayout
        self.storage = storage
    }

    /// An owned plain tensor holding `values` (row-major).
    public init(shape: [Int], values: [Float]) throws(EngineError) {
        let count = try checkedProduct(shape)
        guard count == values.count else {
            throw .shapeMismatch("\(values.count) values for shape \(shape)")
        }
        let storage = try TensorStorage(ownedBytes: count * 4)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { storage.floats.update(from: base, count: count) }
        }
        self.init(shape: shape, blockedLayout: nil, storage: storage)
    }

    /// An owned plain tensor of zeros.
    public init(zeros shape: [Int]) throws(EngineError) {
        let count = try checkedProduct(shape)
        self.init(shape: shape, blockedLayout: nil, storage: try TensorStorage(ownedBytes: count * 4))
    }

    /// The oneDNN descriptor of this tensor's actual memory.
    func memoryLayout() throws(EngineError) -> MemoryDescriptor {
        if let blockedLayout { return blockedLayout }
        return try MemoryDescriptor(plain: shape)
    }

    /// Row-major values. Blocked tensors are reordered on the fly (one small allocation).
    public func toArray() throws(EngineError) -> [Float] {
        if blockedLayout == nil {
            return Array(UnsafeBufferPointer(start: storage.floats, count: count))
        }
        let plain = try Engine.shared().reorderedCopy(self)
        return Array(UnsafeBufferPointer(start: plain.storage.floats, count: count))
    }

    /// The largest float32 value held, blocked layouts' zero padding included (so at least 0 for a blocked
    /// tensor): for the activation ranges of ReLU outputs, which int8 calibration records (`QuantizedConv2d`).
    public func maximum() throws(EngineError) -> Float {
        guard isFloat32 else { throw .invalidArgument("maximum() reads float32 tensors") }
        let values = UnsafeBufferPointer(start: storage.floats, count: blockedLayout == nil ? count : storage.byteCount / 4)
        return values.reduce(-Float.infinity) { Swift.max($0, $1) }
    }

    /// Read-only access to the raw (row-major) floats of a plain tensor.
    public func withUnsafeFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        guard blockedLayout == nil else { throw EngineError.invalidArgument("tensor is in a blocked layout") }
        return try body(UnsafeBufferPointer(start: storage.floats, count: count))
    }

    /// The same values under another shape with the same element count (plain tensors only; no copy).
    public func reshaped(_ newShape: [Int]) throws(EngineError) -> Tensor {
        guard blockedLayout == nil else { throw .invalidArgument("cannot reshape a blocked tensor; make it plain first") }
        guard try checkedProduct(newShape) == count else { throw .shapeMismatch("reshape \(shape) -> \(newShape)") }
        return Tensor(shape: newShape, blockedLayout: nil, storage: storage)
    }
}
