// NumPy .npy (format versions 1.0, 2.0, 3.0) and .npz, as specified in numpy/lib/format.py: magic "\x93NUMPY", a
// version, a little-endian header length, then a Python dict literal {'descr', 'fortran_order', 'shape'} padded with
// spaces and a newline, then the raw array data.
import Foundation

/// Errors from reading or writing NumPy files.
public enum NumPyError: Error, CustomStringConvertible, Sendable, Equatable {
    case notNPY
    case unsupportedVersion(major: UInt8, minor: UInt8)
    case truncatedHeader
    case invalidHeader(String)
    case unsupportedDType(String)
    case fortranOrderUnsupported
    case dataSizeMismatch(expected: Int, actual: Int)
    case arrayNotFound(String)
    case shapeMismatch(expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .notNPY: return "not a .npy file (bad magic)"
        case .unsupportedVersion(let major, let minor): return ".npy format version \(major).\(minor) is not supported"
        case .truncatedHeader: return ".npy header is truncated"
        case .invalidHeader(let why): return ".npy header is invalid: \(why)"
        case .unsupportedDType(let descr): return ".npy dtype '\(descr)' is not supported (supported: <f4 <f8 <f2 |u1 |i1 <i2 <i4 <i8 |b1)"
        case .fortranOrderUnsupported: return ".npy array is in Fortran order; only C order is supported"
        case .dataSizeMismatch(let expected, let actual): return ".npy data should be \(expected) bytes but is \(actual)"
        case .arrayNotFound(let name): return ".npz has no array named \(name)"
        case .shapeMismatch(let expected, let actual): return "shape has \(expected) elements but \(actual) values were given"
        }
    }
}

/// Reading and writing single arrays in the `.npy` format.
public enum NPY {
    /// NumPy `descr` strings for each dtype, as NumPy writes them (little-endian, `|` for single bytes).
    static func descr(for dtype: TensorDType) -> String? {
        switch dtype {
        case .float32: return "<f4"
        case .float64: return "<f8"
        case .float16: return "<f2"
        case .uint8: return "|u1"
        case .int8: return "|i1"
        case .int16: return "<i2"
        case .int32: return "<i4"
        case .int64: return "<i8"
        case .bool: return "|b1"
        case .bfloat16: return nil
        }
    }

    static func dtype(forDescr descr: String) -> TensorDType? {
        switch descr {
        case "<f4": return .float32
        case "<f8": return .float64
        case "<f2": return .float16
        case "|u1", "<u1", "u1": return .uint8
        case "|i1", "<i1", "i1": return .int8
        case "<i2": return .int16
        case "<i4": return .int32
        case "<i8": return .int64
        case "|b1", "<b1", "b1", "?": return .bool
        default: return nil
        }
    }

    /// Reads an array from a memory-mapped `.npy` file; the data stays a view into the mapping.
    public static func read(contentsOf url: URL) throws -> RawTensor {
        try read(ByteBuffer(mapping: url).view)
    }

    /// Parses `.npy` bytes; the returned tensor's data is a view into `bytes` (no copy).
    public static func read(_ bytes: ByteView) throws -> RawTensor {
        let (major, minor, headerText, dataStart): (UInt8, UInt8, String, Int) = try bytes.withUnsafeBytes { raw in
            guard raw.count >= 10, raw[0] == 0x93, Array(raw[1..<6]) == Array("NUMPY".utf8) else { throw NumPyError.notNPY }
            let major = raw[6], minor = raw[7]
            let lengthSize: Int
            switch major {
            case 1: lengthSize = 2
            case 2, 3: lengthSize = 4
            default: throw NumPyError.unsupportedVersion(major: major, minor: minor)
            }
            guard minor == 0 else { throw NumPyError.unsupportedVersion(major: major, minor: minor) }
            guard raw.count >= 8 + lengthSize else { throw NumPyError.truncatedHeader }
            let headerLength = lengthSize == 2 ? Int(raw.u16(at: 8)) : Int(raw.u32(at: 8))
            let headerStart = 8 + lengthSize
            guard raw.count - headerStart >= headerLength else { throw NumPyError.truncatedHeader }
            let headerBytes = UnsafeRawBufferPointer(rebasing: raw[headerStart..<headerStart + headerLength])
            // Versions 1 and 2 use latin-1 headers, version 3 UTF-8; the keys and values we accept are ASCII either way.
            let text: String
            if major == 3 {
                guard let decoded = String(validating: headerBytes, as: UTF8.self) else { throw NumPyError.invalidHeader("not UTF-8") }
                text = decoded
            } else {
                text = String(headerBytes.map { Character(Unicode.Scalar($0)) })
            }
            return (major, minor, text, headerStart + headerLength)
        }
        _ = (major, minor)
        let header = try parseHeader(headerText)
        guard let dtype = dtype(forDescr: header.descr) else { throw NumPyError.unsupportedDType(header.descr) }
        if header.fortranOrder { throw NumPyError.fortranOrderUnsupported }
        let expected = try checkedByteCount(header.shape, dtype)
        let available = bytes.count - dataStart
        guard available == expected, let data = bytes.slice(dataStart, expected) else {
            throw NumPyError.dataSizeMismatch(expected: expected, actual: available)
        }
        return try RawTensor(dtype: dtype, shape: header.shape, bytes: data)
    }

    /// Encodes `tensor` as `.npy` bytes (format 1.0, or 2.0 when the header would not fit), header padded to a
    /// multiple of 64 bytes like NumPy does.
    public static func encode(_ tensor: RawTensor) throws -> [UInt8] {
        guard let descr = descr(for: tensor.dtype) else { throw NumPyError.unsupportedDType(tensor.dtype.rawValue) }
        let shapeText: String
        switch tensor.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(tensor.shape[0]),)"
        default: shapeText = "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var dict = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        var lengthSize = 2
        var total = 8 + lengthSize + dict.count + 1
        if (total + 63) / 64 * 64 - 10 > Int(UInt16.max) {
            lengthSize = 4
            total = 8 + lengthSize + dict.count + 1
        }
        let padded = (total + 63) / 64 * 64
        dict.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padded - total))
        dict.append(UInt8(ascii: "\n"))
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [lengthSize == 2 ? 1 : 2, 0]
        let headerLength = UInt32(dict.count)
        out.append(UInt8(headerLength & 0xFF))
        out.append(UInt8((headerLength >> 8) & 0xFF))
        if lengthSize == 4 {
            out.append(UInt8((headerLength >> 16) & 0xFF))
            out.append(UInt8(headerLength >> 24))
        }
        out += dict
        out.reserveCapacity(out.count + tensor.bytes.count)
        tensor.bytes.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }

    /// Writes `tensor` to `url` as `.npy` (atomically).
    public static func write(_ tensor: RawTensor, to url: URL) throws {
        try Data(encode(tensor)).write(to: url, options: .atomic)
    }

    /// Writes Float32 `values` of `shape` to `url` as a `<f4` `.npy` file.
    public static func write(floats values: [Float], shape: [Int], to url: URL) throws {
        try write(RawTensor(floats: values, shape: shape), to: url)
    }

    // MARK: Header

    struct Header {
        var descr: String
        var fortranOrder: Bool
        var shape: [Int]
    }

    /// Parses the header dict literal, e.g. `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
    static func parseHeader(_ text: String) throws -> Header {
        var parser = PythonLiteralParser(Array(text.utf8))
        let value = try parser.parseValue()
        parser.skipSpace()
        guard parser.atEnd else { throw NumPyError.invalidHeader("trailing characters after the dict") }
        guard case .dict(let entries) = value else { throw NumPyError.invalidHeader("not a dict") }
        var descr: String?
        var fortran: Bool?
        var shape: [Int]?
        for (key, item) in entries {
            switch (key, item) {
            case ("descr", .string(let s)): descr = s
            case ("fortran_order", .bool(let b)): fortran = b
            case ("shape", .tuple(let dims)): shape = dims
            case ("descr", _): throw NumPyError.unsupportedDType("structured or non-string descr")
            case ("fortran_order", _), ("shape", _): throw NumPyError.invalidHeader("bad value for '\(key)'")
            default: throw NumPyError.invalidHeader("unexpected key '\(key)'")
            }
        }
        guard let descr, let fortran, let shape else { throw NumPyError.invalidHeader("missing descr, fortran_order or shape") }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw NumPyError.invalidHeader("negative dimension") }
        return Header(descr: descr, fortranOrder: fortran, shape: shape)
    }
}

/// The subset of Python literal syntax that appears in .npy headers: a dict with string keys whose values are
/// strings, booleans or tuples of non-negative integers.
struct PythonLiteralParser {
    enum Value {
        case string(String)
        case bool(Bool)
        case tuple([Int])
        case dict([(String, Value)])
    }

    private let text: [UInt8]
    private var position = 0

    init(_ text: [UInt8]) { self.text = text }

    var atEnd: Bool { position >= text.count }

    mutating func skipSpace() {
        while position < text.count, [0x20, 0x09, 0x0A, 0x0D].contains(text[position]) { position += 1 }
    }

    private mutating func expect(_ character: Character) throws {
        skipSpace()
        guard position < text.count, text[position] == character.asciiValue else {
            throw NumPyError.invalidHeader("expected '\(character)'")
        }
        position += 1
    }

    private mutating func peek() -> UInt8? {
        skipSpace()
        return position < text.count ? text[position] : nil
    }

    mutating func parseValue() throws -> Value {
        guard let first = peek() else { throw NumPyError.invalidHeader("unexpected end") }
        switch first {
        case UInt8(ascii: "{"):
            position += 1
            var entries: [(String, Value)] = []
            while true {
                if peek() == UInt8(ascii: "}") { position += 1; break }
                guard case .string(let key) = try parseValue() else { throw NumPyError.invalidHeader("dict key is not a string") }
                try expect(":")
                entries.append((key, try parseValue()))
                if peek() == UInt8(ascii: ",") { position += 1; continue }
                try expect("}")
                break
            }
            return .dict(entries)
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            position += 1
            let start = position
            while position < text.count, text[position] != first {
                guard text[position] != UInt8(ascii: "\\") else { throw NumPyError.invalidHeader("escapes in strings are not supported") }
                position += 1
            }
            guard position < text.count else { throw NumPyError.invalidHeader("unterminated string") }
            let string = String(decoding: text[start..<position], as: UTF8.self)
            position += 1
            return .string(string)
        case UInt8(ascii: "("):
            position += 1
            var items: [Int] = []
            while true {
                if peek() == UInt8(ascii: ")") { position += 1; break }
                items.append(try parseInteger())
                if peek() == UInt8(ascii: ",") { position += 1; continue }
                try expect(")")
                break
            }
            return .tuple(items)
        case UInt8(ascii: "T"), UInt8(ascii: "F"):
            for (word, value) in [("True", true), ("False", false)] {
                let bytes = Array(word.utf8)
                if text.count - position >= bytes.count, Array(text[position..<position + bytes.count]) == bytes {
                    position += bytes.count
                    return .bool(value)
                }
            }
            throw NumPyError.invalidHeader("unknown name")
        default:
            throw NumPyError.invalidHeader("unexpected character")
        }
    }

    private mutating func parseInteger() throws -> Int {
        skipSpace()
        var value = 0
        var digits = 0
        while position < text.count, text[position] >= 0x30, text[position] <= 0x39 {
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(Int(text[position] - 0x30))
            guard !o1, !o2 else { throw NumPyError.invalidHeader("dimension too large") }
            value = sum
            digits += 1
            position += 1
        }
        // Python 2 era files may write long dimensions as "3L".
        if position < text.count, text[position] == UInt8(ascii: "L") { position += 1 }
        guard digits > 0 else { throw NumPyError.invalidHeader("expected a non-negative integer") }
        return value
    }
}

extension RawTensor {
    /// A tensor owning a copy of `values` as little-endian F32.
    public init(floats values: [Float], shape: [Int]) throws {
        guard checkedElementCount(shape) == values.count else {
            throw NumPyError.shapeMismatch(expected: checkedElementCount(shape) ?? -1, actual: values.count)
        }
        let buffer = ByteBuffer(owningCount: values.count * 4) { destination in
            for (index, value) in values.enumerated() { destination.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: index * 4, as: UInt32.self) }
        }
        try self.init(dtype: .float32, shape: shape, bytes: buffer.view)
    }

    /// A tensor owning a copy of `values` as U8.
    public init(uint8 values: [UInt8], shape: [Int]) throws {
        guard checkedElementCount(shape) == values.count else {
            throw NumPyError.shapeMismatch(expected: checkedElementCount(shape) ?? -1, actual: values.count)
        }
        try self.init(dtype: .uint8, shape: shape, bytes: ByteView(copying: values))
    }
}

/// A NumPy `.npz` archive (a zip of `<name>.npy` members, stored or deflated as `np.savez_compressed` writes them).
///
/// Guarantees: arrays are parsed on access; stored members are views into the mapped file, compressed members are
/// inflated into their own buffer. CRC-32 is checked for each member read.
public struct NPZArchive: Sendable, MappedFile {
    public let zip: ZipArchive

    public init(buffer: ByteBuffer) throws {
        zip = try ZipArchive(buffer: buffer)
    }

    /// Array names (member names without the `.npy` suffix), in archive order.
    public var names: [String] {
        zip.names.map { $0.hasSuffix(".npy") ? String($0.dropLast(4)) : $0 }
    }

    /// The array called `name` (with or without `.npy`).
    public func array(_ name: String) throws -> RawTensor {
        let member = zip.entry(named: name + ".npy") ?? zip.entry(named: name)
        guard let member else { throw NumPyError.arrayNotFound(name) }
        return try NPY.read(zip.contents(of: member))
    }
}
