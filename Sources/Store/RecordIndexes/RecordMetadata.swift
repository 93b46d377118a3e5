import Foundation
import PosterSimCore

/// One metadata value of a record, as Pinecone allows them: a string, a number, a boolean or a list of strings.
/// (Pinecone refuses nulls, objects and lists of anything but strings; so do we.)
public enum MetadataValue: Sendable, Hashable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case strings([String])

    /// The value as JSON (numbers as JSON numbers, lists as arrays of strings).
    public var json: JSONValue {
        switch self {
        case .string(let s): return .string(s)
        case .number(let d): return .number(d)
        case .bool(let b): return .bool(b)
        case .strings(let list): return .array(list.map { .string($0) })
        }
    }
}

/// A record's metadata: field name to value.
public typealias RecordMetadata = [String: MetadataValue]

/// Pinecone's limits on what one record may hold, enforced by every `RecordIndexStore` before it writes.
public enum RecordLimits {
    /// Longest record id, in UTF-8 bytes.
    public static let maxIDBytes = 512
    /// Largest metadata of one record, in bytes of its JSON encoding (Pinecone: 40 KB).
    public static let maxMetadataBytes = 40 * 1024
    /// Largest dimension of an index (Pinecone's own maximum).
    public static let maxDimension = 20_000
    /// Longest index name (Pinecone: 45 characters, lower-case letters, digits and hyphens).
    public static let maxIndexNameLength = 45
    /// Largest `top_k` of a query.
    public static let maxTopK = 10_000
}

extension MetadataValue {
    /// Parses one metadata value; `field` names it in the error.
    public init(json: JSONValue, field: String) throws {
        switch json {
        case .string(let s): self = .string(s)
        case .number(let d):
            guard d.isFinite else { throw RecordIndexError.invalidArgument("metadata field '\(field)' is not a finite number") }
            self = .number(d)
        case .bool(let b): self = .bool(b)
        case .array(let items):
            var list: [String] = []
            list.reserveCapacity(items.count)
            for item in items {
                guard case .string(let s) = item else {
                    throw RecordIndexError.invalidArgument(
                        "metadata field '\(field)' must be a string, number, boolean or list of strings; "
                            + "its list holds \(item.summary)")
                }
                list.append(s)
            }
            self = .strings(list)
        case .null, .object:
            throw RecordIndexError.invalidArgument(
                "metadata field '\(field)' must be a string, number, boolean or list of strings, got \(json.summary)")
        }
    }
}

/// Parsing, size checks and the stored JSON form of record metadata.
public enum RecordMetadataCoding {
    /// Metadata from a JSON object (nil stays nil); every value checked.
    public static func parse(_ json: JSONValue?) throws -> RecordMetadata? {
        guard let json else { return nil }
        switch json {
        case .null: return nil
        case .object(let fields):
            var out: RecordMetadata = [:]
            out.reserveCapacity(fields.count)
            for (key, value) in fields {
                out[key] = try MetadataValue(json: value, field: key)
            }
            return out
        default:
            throw RecordIndexError.invalidArgument("metadata must be a JSON object, got \(json.summary)")
        }
    }

    /// The metadata as one JSON object.
    public static func json(_ metadata: RecordMetadata) -> JSONValue {
        .object(metadata.mapValues(\.json))
    }

    /// The stored form: compact JSON with sorted keys (its length is what the 40 KB limit measures).
    public static func encode(_ metadata: RecordMetadata) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(json(metadata))
    }

    /// Reads the stored form back.
    public static func decode(_ data: Data) throws -> RecordMetadata {
        guard let parsed = try parse(JSONValue.parse(data)) else { return [:] }
        return parsed
    }

    /// Encodes and checks the 40 KB limit; `id` names the record in the error.
    public static func encodeChecked(_ metadata: RecordMetadata, id: String) throws -> Data {
        let data = try encode(metadata)
        guard data.count <= RecordLimits.maxMetadataBytes else {
            throw RecordIndexError.invalidArgument(
                "metadata size is \(data.count) bytes, which exceeds the limit of \(RecordLimits.maxMetadataBytes) "
                    + "bytes per vector (id '\(id.prefix(64))')")
        }
        return data
    }
}
