// Element types, raw tensors and Float32 tensors shared by every file format in this module.

/// Element types this module can read. Raw values are the safetensors dtype names.
public enum TensorDType: String, Sendable, CaseIterable, Equatable, Hashable {
    case float64 = "F64"
    case float32 = "F32"
    case float16 = "F16"
    case bfloat16 = "BF16"
    case int64 = "I64"
    case int32 = "I32"
    case int16 = "I16"
    case int8 = "I8"
    case uint8 = "U8"
    case bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }
}

/// Errors from tensor shape arithmetic and element conversion.
public enum TensorError: Error, CustomStringConvertible, Sendable, Equatable {
    case negativeDimension(shape: [Int])
    case sizeOverflow(shape: [Int])
    case byteCountMismatch(shape: [Int], dtype: TensorDType, expected: Int, actual: Int)
    case dtypeMismatch(expected: TensorDType, actual: TensorDType)

    public var description: String {
        switch self {
        case .negativeDimension(let shape): return "shape \(shape) has a negative dimension"
        case .sizeOverflow(let shape): return "shape \(shape) has too many elements (integer overflow)"
        case .byteCountMismatch(let shape, let dtype, let expected, let actual):
            return "shape \(shape) of \(dtype.rawValue) needs \(expected) bytes but \(actual) are present"
        case .dtypeMismatch(let expected, let actual): return "expected dtype \(expected.rawValue), found \(actual.rawValue)"
        }
    }
}

/// Element count of `shape` (1 for a scalar), or nil on a negative dimension or overflow.
func checkedElementCount(_ shape: [Int]) -> Int? {
    var total = 1
    for dim in shape {
        guard dim >= 0 else { return nil }
        let (product, overflow) = total.multipliedReportingOverflow(by: dim)
        guard !overflow else { return nil }
        total = product
    }
    return total
}

/// Byte count of `shape` × `dtype`, throwing on negative dimensions or overflow.
func checkedByteCount(_ shape: [Int], _ dtype: TensorDType) throws -> Int {
    if shape.contains(where: { $0 < 0 }) { throw TensorError.negativeDimension(shape: shape) }
    guard let elements = checkedElementCount(shape) else { throw TensorError.sizeOverflow(shape: shape) }
    let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
    guard !overflow else { throw TensorError.sizeOverflow(shape: shape) }
    return bytes
}

/// IEEE 754 binary16 → binary32, exact for every input: normals, subnormals (renormalised), ±0 and ±inf. NaNs keep
/// their sign and payload (in the high mantissa bits) and come out quiet, as the x86 F16C instruction `vcvtph2ps`
/// converts them; torch's vectorised `Half -> float` path gives the same bits for all 65536 inputs (torch's scalar
/// path may return a different NaN payload, so NaN bits are not a stable contract).
@inline(__always) public func float32(fromFloat16Bits h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    var mantissa = UInt32(h & 0x03FF)
    if exponent == 0x1F {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa != 0 ? 0x0040_0000 : 0) | (mantissa << 13))
    }
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }
        // Subnormal half: shift the mantissa up until its leading one reaches the implicit bit.
        var e: UInt32 = 127 - 15 + 1
        while mantissa & 0x0400 == 0 {
            mantissa <<= 1
            e -= 1
        }
        mantissa &= 0x03FF
        return Float(bitPattern: sign | (e << 23) | (mantissa << 13))
    }
    return Float(bitPattern: sign | ((exponent + 127 - 15) << 23) | (mantissa << 13))
}

/// bfloat16 → binary32: bfloat16 is the top half of a float32, so the conversion is exact.
@inline(__always) public func float32(fromBFloat16Bits b: UInt16) -> Float {
    Float(bitPattern: UInt32(b) << 16)
}

/// A dense, C-ordered (row-major), little-endian tensor whose bytes are a view into a buffer (often a file mapping).
///
/// Guarantees: `bytes.count == product(shape) × dtype.byteSize` (checked at construction, overflow-safe).
public struct RawTensor: Sendable {
    public let dtype: TensorDType
    public let shape: [Int]
    public let bytes: ByteView

    /// Checks that `bytes` holds exactly `shape` × `dtype`.
    public init(dtype: TensorDType, shape: [Int], bytes: ByteView) throws {
        let expected = try checkedByteCount(shape, dtype)
        guard expected == bytes.count else {
            throw TensorError.byteCountMismatch(shape: shape, dtype: dtype, expected: expected, actual: bytes.count)
        }
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// Number of elements (1 for a scalar).
    public var elementCount: Int { bytes.count / dtype.byteSize }

    /// Values as Float32. F32 views stay zero-copy when the data is 4-byte aligned; every other dtype is converted:
    /// F16/BF16 exactly, F64 and integers rounded to nearest (as `Tensor.float()` in torch), BOOL as 0/1.
    public func floatTensor() -> FloatTensor {
        if dtype == .float32, let address = bytes.address, Int(bitPattern: address) % MemoryLayout<Float>.alignment == 0 {
            #if _endian(little)
            return FloatTensor(shape: shape, mapped: bytes)
            #endif
        }
        return FloatTensor(shape: shape, values: floats())
    }

    /// Values converted to Float32 in a new array (see `floatTensor()` for the conversion rules).
    public func floats() -> [Float] {
        let count = elementCount
        return bytes.withUnsafeBytes { raw -> [Float] in
            switch dtype {
            case .float32: return (0..<count).map { Float(bitPattern: raw.u32(at: $0 * 4)) }
            case .float16: return (0..<count).map { float32(fromFloat16Bits: raw.u16(at: $0 * 2)) }
            case .bfloat16: return (0..<count).map { float32(fromBFloat16Bits: raw.u16(at: $0 * 2)) }
            case .float64: return (0..<count).map { Float(Double(bitPattern: raw.u64(at: $0 * 8))) }
            case .int64: return (0..<count).map { Float(Int64(bitPattern: raw.u64(at: $0 * 8))) }
            case .int32: return (0..<count).map { Float(Int32(bitPattern: raw.u32(at: $0 * 4))) }
            case .int16: return (0..<count).map { Float(Int16(bitPattern: raw.u16(at: $0 * 2))) }
            case .int8: return (0..<count).map { Float(Int8(bitPattern: raw[$0])) }
            case .uint8: return (0..<count).map { Float(raw[$0]) }
            case .bool: return (0..<count).map { raw[$0] != 0 ? 1 : 0 }
            }
        }
    }

    /// Values as Double (exact for every dtype except I64 beyond 2^53).
    public func doubles() -> [Double] {
        if dtype == .float64 {
            return bytes.withUnsafeBytes { raw in
                (0..<elementCount).map { Double(bitPattern: raw.u64(at: $0 * 8)) }
            }
        }
        return floats().map(Double.init)
    }

    /// Values of an integer or bool tensor as Int64; throws `dtypeMismatch` for floating dtypes.
    public func int64s() throws -> [Int64] {
        let count = elementCount
        return try bytes.withUnsafeBytes { raw -> [Int64] in
            switch dtype {
            case .int64: return (0..<count).map { Int64(bitPattern: raw.u64(at: $0 * 8)) }
            case .int32: return (0..<count).map { Int64(Int32(bitPattern: raw.u32(at: $0 * 4))) }
            case .int16: return (0..<count).map { Int64(Int16(bitPattern: raw.u16(at: $0 * 2))) }
            case .int8: return (0..<count).map { Int64(Int8(bitPattern: raw[$0])) }
            case .uint8, .bool: return (0..<count).map { Int64(raw[$0]) }
            case .float64, .float32, .float16, .bfloat16: throw TensorError.dtypeMismatch(expected: .int64, actual: dtype)
            }
        }
    }

    /// Bytes of a U8 (or BOOL) tensor; throws `dtypeMismatch` otherwise.
    public func uint8s() throws -> [UInt8] {
        guard dtype == .uint8 || dtype == .bool else { throw TensorError.dtypeMismatch(expected: .uint8, actual: dtype) }
        return bytes.bytes
    }
}

/// A Float32 tensor in C order.
///
/// Storage is either an owned `[Float]` or a zero-copy view into a `ByteBuffer` (a memory-mapped safetensors file or a
/// stored entry of a torch zip) holding little-endian F32 data at a 4-byte aligned address. A view keeps the mapping
/// alive. `withUnsafeBufferPointer` never copies; `values` copies a view into a new array.
public struct FloatTensor: Sendable {
    public let shape: [Int]
    private let storage: Storage

    private enum Storage: Sendable {
        case owned([Float])
        case mapped(ByteView)
    }

    /// A tensor owning `values`; `values.count` must equal the element count of `shape` (checked).
    public init(shape: [Int], values: [Float]) {
        precondition(checkedElementCount(shape) == values.count, "FloatTensor: shape \(shape) does not match \(values.count) values")
        self.shape = shape
        self.storage = .owned(values)
    }

    /// Internal: `bytes` is F32 little-endian data of exactly `shape`, 4-byte aligned.
    init(shape: [Int], mapped bytes: ByteView) {
        self.shape = shape
        self.storage = .mapped(bytes)
    }

    /// Number of elements.
    public var count: Int {
        switch storage {
        case .owned(let values): return values.count
        case .mapped(let view): return view.count / 4
        }
    }

    /// True when the values are read in place from a file mapping or archive buffer (no copy was made).
    public var isView: Bool {
        if case .mapped = storage { return true }
        return false
    }

    /// The values as an array (copies when the tensor is a view).
    public var values: [Float] {
        switch storage {
        case .owned(let values): return values
        case .mapped: return withUnsafeBufferPointer { Array($0) }
        }
    }

    /// Calls `body` with the values in place, without copying.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        switch storage {
        case .owned(let values):
            return try values.withUnsafeBufferPointer(body)
        case .mapped(let view):
            return try view.withUnsafeBytes { raw in
                // The address was checked to be 4-byte aligned and the count a multiple of 4 when the view was made.
                try raw.withMemoryRebound(to: Float.self, body)
            }
        }
    }
}
