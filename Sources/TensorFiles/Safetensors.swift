// safetensors reader (format of huggingface/safetensors: u64 little-endian header length N, N bytes of UTF-8 JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data section; offsets are
// relative to the start of the data section).
import Foundation

/// Errors from validating a safetensors file. Errors about one tensor name it.
public enum SafetensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    case fileTooSmall(size: Int)
    case headerTooLarge(length: UInt64, fileSize: Int)
    case headerNotUTF8
    case headerNotJSON(String)
    case headerNotObject
    case invalidMetadata
    case invalidTensorEntry(name: String, reason: String)
    case unknownDType(name: String, dtype: String)
    case invalidOffsets(name: String, begin: Int, end: Int)
    case offsetsOutOfBounds(name: String, end: Int, dataSize: Int)
    case byteCountMismatch(name: String, expected: Int, actual: Int)
    case shapeOverflow(name: String, shape: [Int])
    case overlappingTensors(String, String)

    public var description: String {
        switch self {
        case .fileTooSmall(let size): return "safetensors: file of \(size) bytes is too small for a header"
        case .headerTooLarge(let length, let size): return "safetensors: header length \(length) does not fit in the \(size)-byte file"
        case .headerNotUTF8: return "safetensors: header is not valid UTF-8"
        case .headerNotJSON(let why): return "safetensors: header is not valid JSON (\(why))"
        case .headerNotObject: return "safetensors: header is not a JSON object"
        case .invalidMetadata: return "safetensors: __metadata__ must map strings to strings"
        case .invalidTensorEntry(let name, let reason): return "safetensors: tensor \(name): \(reason)"
        case .unknownDType(let name, let dtype): return "safetensors: tensor \(name) has unsupported dtype \(dtype)"
        case .invalidOffsets(let name, let begin, let end): return "safetensors: tensor \(name) has data_offsets [\(begin), \(end)] with begin > end"
        case .offsetsOutOfBounds(let name, let end, let size): return "safetensors: tensor \(name) ends at \(end), past the \(size)-byte data section"
        case .byteCountMismatch(let name, let expected, let actual):
            return "safetensors: tensor \(name) needs \(expected) bytes for its shape and dtype but data_offsets span \(actual)"
        case .shapeOverflow(let name, let shape): return "safetensors: tensor \(name) has an invalid shape \(shape)"
        case .overlappingTensors(let first, let second): return "safetensors: tensors \(first) and \(second) overlap"
        }
    }
}

/// A validated, memory-mapped safetensors file.
///
/// Guarantees (all checked at open): the header length fits the file (and is at most 100 MB, like the reference
/// implementation), the header is UTF-8 JSON, every tensor has a known dtype, `begin <= end` within the data section,
/// `product(shape) × dtype size == end - begin` without overflow, and no two tensors overlap. Tensor data is never
/// copied by `tensor(_:)`; F32 tensors at 4-byte aligned offsets come back from `floats(_:)` as views into the mapping.
public struct SafetensorsFile: CheckpointReader, MappedFile {
    public struct Entry: Sendable {
        public let info: TensorInfo
        /// Byte range relative to the start of the data section.
        public let begin: Int
        public let end: Int
    }

    public let buffer: ByteBuffer
    /// Offset of the data section in the file (8 + header length).
    public let dataStart: Int
    /// The `__metadata__` map, empty when absent.
    public let metadata: [String: String]
    /// Tensors in data-offset order.
    public let entries: [Entry]
    private let index: [String: Int]


    /// Validates the safetensors bytes in `buffer`.
    public init(buffer: ByteBuffer) throws {
        self.buffer = buffer
        guard buffer.count >= 8 else { throw SafetensorsError.fileTooSmall(size: buffer.count) }
        let headerLength = buffer.withUnsafeBytes { $0.u64(at: 0) }
        guard headerLength <= UInt64(buffer.count - 8), headerLength <= 100_000_000 else {
            throw SafetensorsError.headerTooLarge(length: headerLength, fileSize: buffer.count)
        }
        let dataStart = 8 + Int(headerLength)
        self.dataStart = dataStart
        let dataSize = buffer.count - dataStart
        let headerBytes = buffer.withUnsafeBytes { Data(UnsafeRawBufferPointer(rebasing: $0[8..<dataStart])) }
        guard String(data: headerBytes, encoding: .utf8) != nil else { throw SafetensorsError.headerNotUTF8 }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerBytes, options: [])
        } catch {
            throw SafetensorsError.headerNotJSON(String(describing: error))
        }
        guard json is [String: Any] else { throw SafetensorsError.headerNotObject }
        // Typed decoding rejects fractional, boolean and out-of-range numbers where integers are required.
        let header: HeaderDocument
        do {
            header = try JSONDecoder().decode(HeaderDocument.self, from: headerBytes)
        } catch let error as SafetensorsError {
            throw error
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
                let DecodingError.dataCorrupted(context) {
            throw Self.entryError(context.codingPath, context.debugDescription)
        } catch let DecodingError.keyNotFound(key, context) {
            throw Self.entryError(context.codingPath, "missing \(key.stringValue)")
        } catch {
            throw SafetensorsError.headerNotJSON(String(describing: error))
        }

        var entries: [Entry] = []
        entries.reserveCapacity(header.tensors.count)
        for (name, raw) in header.tensors {
            entries.append(try Self.validate(name: name, raw, dataSize: dataSize))
        }
        // Sorting by offset makes overlap a check between neighbours only. Empty tensors occupy no bytes.
        entries.sort { ($0.begin, $0.end, $0.info.name) < ($1.begin, $1.end, $1.info.name) }
        var previous: Entry?
        for entry in entries where entry.end > entry.begin {
            if let previous, entry.begin < previous.end {
                throw SafetensorsError.overlappingTensors(previous.info.name, entry.info.name)
            }
            previous = entry
        }
        self.metadata = header.metadata
        self.entries = entries
        var index: [String: Int] = [:]
        for (position, entry) in entries.enumerated() { index[entry.info.name] = position }
        self.index = index
    }

    private static func entryError(_ path: [any CodingKey], _ reason: String) -> SafetensorsError {
        guard let first = path.first else { return .headerNotObject }
        if first.stringValue == "__metadata__" { return .invalidMetadata }
        return .invalidTensorEntry(name: first.stringValue, reason: reason)
    }

    private static func validate(name: String, _ raw: RawHeaderEntry, dataSize: Int) throws -> Entry {
        guard let dtype = TensorDType(rawValue: raw.dtype) else {
            throw SafetensorsError.unknownDType(name: name, dtype: raw.dtype)
        }
        guard raw.shape.allSatisfy({ $0 >= 0 }) else {
            throw SafetensorsError.invalidTensorEntry(name: name, reason: "shape must hold non-negative integers")
        }
        guard raw.dataOffsets.count == 2, raw.dataOffsets[0] >= 0, raw.dataOffsets[1] >= 0 else {
            throw SafetensorsError.invalidTensorEntry(name: name, reason: "data_offsets must be two non-negative integers")
        }
        let begin = raw.dataOffsets[0], end = raw.dataOffsets[1]
        guard begin <= end else { throw SafetensorsError.invalidOffsets(name: name, begin: begin, end: end) }
        guard end <= dataSize else { throw SafetensorsError.offsetsOutOfBounds(name: name, end: end, dataSize: dataSize) }
        let expected: Int
        do {
            expected = try checkedByteCount(raw.shape, dtype)
        } catch {
            throw SafetensorsError.shapeOverflow(name: name, shape: raw.shape)
        }
        guard expected == end - begin else {
            throw SafetensorsError.byteCountMismatch(name: name, expected: expected, actual: end - begin)
        }
        return Entry(info: TensorInfo(name: name, dtype: dtype, shape: raw.shape), begin: begin, end: end)
    }

    private struct RawHeaderEntry: Decodable {
        let dtype: String
        let shape: [Int]
        let dataOffsets: [Int]
        enum CodingKeys: String, CodingKey {
            case dtype, shape
            case dataOffsets = "data_offsets"
        }
    }

    private struct AnyKey: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    /// The header object: `__metadata__` (string → string) plus one entry per tensor.
    private struct HeaderDocument: Decodable {
        var metadata: [String: String] = [:]
        var tensors: [(String, RawHeaderEntry)] = []
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            for key in container.allKeys {
                if key.stringValue == "__metadata__" {
                    do {
                        metadata = try container.decode([String: String].self, forKey: key)
                    } catch {
                        throw SafetensorsError.invalidMetadata
                    }
                } else {
                    tensors.append((key.stringValue, try container.decode(RawHeaderEntry.self, forKey: key)))
                }
            }
        }
    }

    // MARK: CheckpointReader

    public var tensorNames: [String] { entries.map(\.info.name) }

    public func info(_ name: String) -> TensorInfo? { index[name].map { entries[$0].info } }

    /// The tensor's bytes as a view into the mapping (never copied).
    public func tensor(_ name: String) throws -> RawTensor {
        guard let position = index[name] else { throw CheckpointError.missingTensor(name) }
        let entry = entries[position]
        guard let view = buffer.view.slice(dataStart + entry.begin, entry.end - entry.begin) else {
            throw SafetensorsError.offsetsOutOfBounds(name: name, end: entry.end, dataSize: buffer.count - dataStart)
        }
        return try RawTensor(dtype: entry.info.dtype, shape: entry.info.shape, bytes: view)
    }

    public func floats(_ name: String) throws -> FloatTensor {
        try tensor(name).floatTensor()
    }
}

extension SafetensorsFile {
    public func dropResidentPages() { buffer.dropResidentPages() }
}
