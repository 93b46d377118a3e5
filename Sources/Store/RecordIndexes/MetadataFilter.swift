import PosterSimCore

/// A metadata filter in Pinecone's language, parsed and checked once, then evaluated per record.
///
/// The language (as Pinecone documents it, modelled on MongoDB's):
/// - `{"field": value}` is `{"field": {"$eq": value}}`; several fields in one object must all match.
/// - Field operators: `$eq`, `$ne` (string, number or boolean), `$gt`, `$gte`, `$lt`, `$lte` (numbers), `$in`, `$nin`
///   (a list of strings, numbers or booleans), `$exists` (boolean). Several operators on one field must all hold.
/// - `$and` and `$or` take a non-empty list of filters.
///
/// Semantics, fixed here for every store:
/// - A list-of-strings field matches `$eq`/`$in` when any element does, and `$ne`/`$nin` when none does.
/// - Values of another type never match (`{"year": {"$eq": "2000"}}` does not match the number 2000); numbers compare
///   as IEEE doubles.
/// - A record without the field fails every operator but `$ne`, `$nin` and `$exists: false` (as in MongoDB).
/// - `{}` matches every record.
public indirect enum MetadataFilter: Sendable, Hashable {
    case all([MetadataFilter])
    case any([MetadataFilter])
    case field(String, FieldCondition)

    /// One operator applied to one field.
    public enum FieldCondition: Sendable, Hashable {
        case eq(Scalar)
        case ne(Scalar)
        case gt(Double)
        case gte(Double)
        case lt(Double)
        case lte(Double)
        case `in`([Scalar])
        case nin([Scalar])
        case exists(Bool)
    }

    /// A value a filter compares with.
    public enum Scalar: Sendable, Hashable {
        case string(String)
        case number(Double)
        case bool(Bool)
    }

    /// Filters are refused beyond this nesting depth (a client cannot make evaluation recurse without bound).
    public static let maxDepth = 32

    // MARK: Parsing

    /// Parses a filter from its JSON form; throws `RecordIndexError.invalidArgument` naming the problem.
    public init(json: JSONValue) throws {
        self = try Self.parse(json, depth: 0)
    }

    static func parse(_ json: JSONValue, depth: Int) throws -> MetadataFilter {
        guard depth < maxDepth else { throw invalid("nested more than \(maxDepth) levels") }
        guard case .object(let members) = json else { throw invalid("a filter must be a JSON object, got \(json.summary)") }
        var parts: [MetadataFilter] = []
        for key in members.keys.sorted() {
            let value = members[key]!
            switch key {
            case "$and", "$or":
                guard case .array(let items) = value, !items.isEmpty else {
                    throw invalid("\(key) takes a non-empty list of filters, got \(value.summary)")
                }
                let children = try items.map { try parse($0, depth: depth + 1) }
                parts.append(key == "$and" ? .all(children) : .any(children))
            default:
                guard !key.hasPrefix("$") else { throw invalid("unknown operator \(key) where a field name or $and/$or belongs") }
                parts.append(contentsOf: try conditions(field: key, value).map { .field(key, $0) })
            }
        }
        return parts.count == 1 ? parts[0] : .all(parts)
    }

    static func conditions(field: String, _ value: JSONValue) throws -> [FieldCondition] {
        guard case .object(let ops) = value else {
            return [.eq(try scalar(value, op: "$eq", field: field))]
        }
        guard !ops.isEmpty else { throw invalid("field '\(field)' has an empty condition {}") }
        return try ops.keys.sorted().map { op in
            let operand = ops[op]!
            switch op {
            case "$eq": return .eq(try scalar(operand, op: op, field: field))
            case "$ne": return .ne(try scalar(operand, op: op, field: field))
            case "$gt": return .gt(try number(operand, op: op, field: field))
            case "$gte": return .gte(try number(operand, op: op, field: field))
            case "$lt": return .lt(try number(operand, op: op, field: field))
            case "$lte": return .lte(try number(operand, op: op, field: field))
            case "$in", "$nin":
                guard case .array(let items) = operand else {
                    throw invalid("\(op) on field '\(field)' takes a list, got \(operand.summary)")
                }
                let list = try items.map { try scalar($0, op: op, field: field) }
                return op == "$in" ? .in(list) : .nin(list)
            case "$exists":
                guard case .bool(let b) = operand else {
                    throw invalid("$exists on field '\(field)' takes true or false, got \(operand.summary)")
                }
                return .exists(b)
            default:
                throw invalid("unknown operator '\(op.prefix(40))' on field '\(field)'")
            }
        }
    }

    static func scalar(_ json: JSONValue, op: String, field: String) throws -> Scalar {
        switch json {
        case .string(let s): return .string(s)
        case .number(let d) where d.isFinite: return .number(d)
        case .bool(let b): return .bool(b)
        default:
            throw invalid("\(op) on field '\(field)' takes a string, number or boolean, got \(json.summary)")
        }
    }

    static func number(_ json: JSONValue, op: String, field: String) throws -> Double {
        guard case .number(let d) = json, d.isFinite else {
            throw invalid("\(op) on field '\(field)' takes a number, got \(json.summary)")
        }
        return d
    }

    static func invalid(_ why: String) -> RecordIndexError { .invalidArgument("invalid filter: \(why)") }

    // MARK: Evaluation

    /// Whether a record with this metadata passes.
    public func matches(_ metadata: RecordMetadata?) -> Bool {
        switch self {
        case .all(let parts): return parts.allSatisfy { $0.matches(metadata) }
        case .any(let parts): return parts.contains { $0.matches(metadata) }
        case .field(let name, let condition): return condition.holds(for: metadata?[name])
        }
    }
}

extension MetadataFilter.FieldCondition {
    /// Whether the condition holds for a field's value (nil: the record lacks the field).
    public func holds(for value: MetadataValue?) -> Bool {
        switch self {
        case .exists(let wanted): return (value != nil) == wanted
        case .ne(let s): return value.map { !Self.equal($0, s) } ?? true
        case .nin(let list): return value.map { v in !list.contains { Self.equal(v, $0) } } ?? true
        default: break
        }
        guard let value else { return false }
        switch self {
        case .eq(let s): return Self.equal(value, s)
        case .in(let list): return list.contains { Self.equal(value, $0) }
        case .gt(let bound): return Self.number(value).map { $0 > bound } ?? false
        case .gte(let bound): return Self.number(value).map { $0 >= bound } ?? false
        case .lt(let bound): return Self.number(value).map { $0 < bound } ?? false
        case .lte(let bound): return Self.number(value).map { $0 <= bound } ?? false
        case .exists, .ne, .nin: return false  // handled above
        }
    }

    static func number(_ value: MetadataValue) -> Double? {
        if case .number(let d) = value { return d }
        return nil
    }

    /// Equality of a stored value and a filter's scalar; a list matches when any element does.
    static func equal(_ value: MetadataValue, _ s: MetadataFilter.Scalar) -> Bool {
        switch (value, s) {
        case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
        case (.number(let a), .number(let b)): return a == b
        case (.bool(let a), .bool(let b)): return a == b
        case (.strings(let list), .string(let b)): return list.contains { $0.utf8.elementsEqual(b.utf8) }
        default: return false
        }
    }
}
// Strings compare by their UTF-8 bytes (code points), not by Swift's canonical equivalence, as Pinecone and Python do.
