import Foundation
import PosterSimCore
import TestSupport
import Testing

@testable import Store

/// The filter language: table cases with their expected answers, refusals, and random filters over random metadata
/// checked against a second evaluator written differently (it interprets the raw JSON filter directly, without the
/// typed parse).
@Suite struct MetadataFilterTests {
    static func parse(_ text: String) throws -> MetadataFilter {
        try MetadataFilter(json: try JSONValue.parse(Data(text.utf8)))
    }

    static let movie: RecordMetadata = [
        "genre": .string("drama"), "year": .number(2001), "rating": .number(7.5), "adult": .bool(false),
        "tags": .strings(["noir", "classic"]),
    ]

    @Test(arguments: [
        (#"{"genre": "drama"}"#, true),
        (#"{"genre": {"$eq": "comedy"}}"#, false),
        (#"{"genre": {"$ne": "comedy"}}"#, true),
        (#"{"missing": {"$ne": "x"}}"#, true),
        (#"{"missing": {"$eq": "x"}}"#, false),
        (#"{"missing": {"$nin": ["x"]}}"#, true),
        (#"{"missing": {"$in": ["x"]}}"#, false),
        (#"{"missing": {"$exists": false}}"#, true),
        (#"{"genre": {"$exists": true}}"#, true),
        (#"{"year": {"$gte": 2001, "$lt": 2002}}"#, true),
        (#"{"year": {"$gt": 2001}}"#, false),
        (#"{"year": {"$lte": 2001}}"#, true),
        (#"{"year": 2001.0}"#, true),
        (#"{"year": "2001"}"#, false),
        (#"{"genre": {"$gt": 1}}"#, false),
        (#"{"adult": false}"#, true),
        (#"{"adult": 0}"#, false),
        (#"{"tags": "noir"}"#, true),
        (#"{"tags": {"$in": ["western", "classic"]}}"#, true),
        (#"{"tags": {"$nin": ["western", "classic"]}}"#, false),
        (#"{"tags": {"$ne": "noir"}}"#, false),
        (#"{"tags": {"$ne": "western"}}"#, true),
        (#"{"$or": [{"genre": "comedy"}, {"rating": {"$gt": 7}}]}"#, true),
        (#"{"$and": [{"genre": "drama"}, {"rating": {"$gt": 8}}]}"#, false),
        (#"{"genre": "drama", "year": 1999}"#, false),
        (#"{}"#, true),
    ])
    func table(filter: String, expected: Bool) throws {
        #expect(try Self.parse(filter).matches(Self.movie) == expected, "\(filter)")
    }

    @Test(arguments: [
        #"[1]"#, #"{"$and": []}"#, #"{"$or": {"a": 1}}"#, #"{"$not": {"a": 1}}"#, #"{"a": {"$regex": "x"}}"#,
        #"{"a": {"$gt": "x"}}"#, #"{"a": {"$in": "x"}}"#, #"{"a": {"$in": [{"b": 1}]}}"#, #"{"a": {"$exists": 1}}"#,
        #"{"a": null}"#, #"{"a": [1, 2]}"#, #"{"a": {}}"#,
    ])
    func refused(filter: String) throws {
        #expect(throws: RecordIndexError.self) { try Self.parse(filter) }
    }

    @Test func deepNestingIsRefused() throws {
        var text = #"{"a": 1}"#
        for _ in 0..<40 { text = #"{"$and": ["# + text + "]}" }
        #expect(throws: RecordIndexError.self) { try Self.parse(text) }
    }

    @Test func metadataValuesAreChecked() throws {
        #expect(throws: RecordIndexError.self) { try RecordMetadataCoding.parse(.object(["a": .null])) }
        #expect(throws: RecordIndexError.self) { try RecordMetadataCoding.parse(.object(["a": .array([.number(1)])])) }
        #expect(throws: RecordIndexError.self) { try RecordMetadataCoding.parse(.object(["a": .object([:])])) }
        let big: RecordMetadata = ["pad": .string(String(repeating: "x", count: RecordLimits.maxMetadataBytes))]
        #expect(throws: RecordIndexError.self) { try RecordMetadataCoding.encodeChecked(big, id: "x") }
        let fine: RecordMetadata = ["a": .strings(["x", "y"]), "b": .number(1.5), "c": .bool(true), "d": .string("é")]
        #expect(try RecordMetadataCoding.decode(try RecordMetadataCoding.encodeChecked(fine, id: "x")) == fine)
    }

    // MARK: Random filters against the second evaluator

    @Test func randomFiltersAgreeWithTheJSONEvaluator() throws {
        var rng = SplitMix64(seed: 12)
        var records: [JSONValue] = []
        for _ in 0..<200 { records.append(Self.randomMetadata(&rng)) }
        var checked = 0
        for _ in 0..<800 {
            let filterJSON = Self.randomFilter(&rng, depth: 0)
            let filter = try MetadataFilter(json: filterJSON)
            for record in records {
                let typed = filter.matches(try RecordMetadataCoding.parse(record))
                let direct = JSONFilterEvaluator.matches(filterJSON, record)
                #expect(typed == direct, "filter \(filterJSON) on \(record)")
                checked += 1
            }
        }
        #expect(checked == 160_000)
    }

    static let words = ["a", "b", "c", "d"]

    static func randomScalar(_ rng: inout SplitMix64) -> JSONValue {
        switch rng.next() % 3 {
        case 0: return .string(words[Int(rng.next() % 4)])
        case 1: return .number(Double(rng.next() % 5))
        default: return .bool(rng.next() % 2 == 0)
        }
    }

    static func randomMetadata(_ rng: inout SplitMix64) -> JSONValue {
        var fields: [String: JSONValue] = [:]
        for name in ["f", "g", "h"] where rng.next() % 4 != 0 {
            if rng.next() % 4 == 0 {
                fields[name] = .array((0..<Int(rng.next() % 3)).map { _ in .string(words[Int(rng.next() % 4)]) })
            } else {
                fields[name] = randomScalar(&rng)
            }
        }
        return .object(fields)
    }

    static func randomFilter(_ rng: inout SplitMix64, depth: Int) -> JSONValue {
        let field = ["f", "g", "h"][Int(rng.next() % 3)]
        let roll = rng.next() % (depth < 2 ? 12 : 10)
        switch roll {
        case 0: return .object([field: randomScalar(&rng)])
        case 1: return .object([field: .object(["$eq": randomScalar(&rng)])])
        case 2: return .object([field: .object(["$ne": randomScalar(&rng)])])
        case 3: return .object([field: .object(["$gt": .number(Double(rng.next() % 5))])])
        case 4: return .object([field: .object(["$lte": .number(Double(rng.next() % 5))])])
        case 5: return .object([field: .object(["$in": .array((0..<3).map { _ in randomScalar(&rng) })])])
        case 6: return .object([field: .object(["$nin": .array((0..<2).map { _ in randomScalar(&rng) })])])
        case 7: return .object([field: .object(["$exists": .bool(rng.next() % 2 == 0)])])
        case 8: return .object([field: .object(["$gte": .number(1), "$lt": .number(4)])])
        case 9: return .object(["f": randomScalar(&rng), "g": .object(["$ne": randomScalar(&rng)])])
        case 10: return .object(["$and": .array((0..<2).map { _ in randomFilter(&rng, depth: depth + 1) })])
        default: return .object(["$or": .array((0..<3).map { _ in randomFilter(&rng, depth: depth + 1) })])
        }
    }
}

/// The second evaluator: reads the JSON filter as it comes, with its own notion of equality, and no parse step.
enum JSONFilterEvaluator {
    static func matches(_ filter: JSONValue, _ record: JSONValue) -> Bool {
        guard case .object(let clauses) = filter, case .object(let fields) = record else { return false }
        for (key, cond) in clauses {
            let ok: Bool
            if key == "$and", case .array(let subs) = cond {
                ok = subs.allSatisfy { matches($0, record) }
            } else if key == "$or", case .array(let subs) = cond {
                ok = subs.contains { matches($0, record) }
            } else if case .object(let ops) = cond {
                ok = ops.allSatisfy { op, arg in holds(op, arg, fields[key]) }
            } else {
                ok = holds("$eq", cond, fields[key])
            }
            if !ok { return false }
        }
        return true
    }

    static func holds(_ op: String, _ arg: JSONValue, _ value: JSONValue?) -> Bool {
        func equal(_ x: JSONValue) -> Bool {
            guard let value else { return false }
            if case .array(let items) = value { return items.contains(x) && x.isString }
            return value == x
        }
        switch op {
        case "$exists": return (value != nil) == (arg == .bool(true))
        case "$eq": return equal(arg)
        case "$ne": return !equal(arg)
        case "$in": if case .array(let xs) = arg { return xs.contains(where: equal) }
        case "$nin": if case .array(let xs) = arg { return !xs.contains(where: equal) }
        default:
            guard case .number(let v)? = value, case .number(let bound) = arg else { return false }
            switch op {
            case "$gt": return v > bound
            case "$gte": return v >= bound
            case "$lt": return v < bound
            case "$lte": return v <= bound
            default: return false
            }
        }
        return false
    }
}

extension JSONValue {
    fileprivate var isString: Bool { if case .string = self { return true } else { return false } }
}
