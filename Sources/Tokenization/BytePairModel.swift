import Foundation

/// The BPE model of Hugging Face `tokenizers` (`models/bpe/model.rs` and `word.rs`) as CLIP configures it:
/// the last character of every word carries the end-of-word suffix `</w>`, characters missing from the vocabulary
/// become the unknown token one by one (`fuse_unk = false`), and merges are applied by a priority queue that always
/// takes the pair with the lowest merge rank, the leftmost one on ties. Merges are keyed by token ids, so a merge
/// applies exactly when its two halves are the current adjacent symbols.
struct BytePairModel: Sendable {
    /// Id of the byte's character inside a word, or of the unknown token if that character is not in the vocabulary.
    private let byteIds: [Int32]
    /// Same, for the byte's character followed by `</w>` (the last byte of a word).
    private let byteEndIds: [Int32]
    /// `(left << 32) | right` → `(rank << 32) | mergedId`. When a merge is listed twice the later rank wins, as the
    /// `HashMap` collect in `tokenizers` does.
    private let merges: [UInt64: UInt64]
    private let cache = WordCache()

    static let endOfWordSuffix = "</w>"

    init(vocabulary: [String: Int], merges mergeList: [(String, String)], unknownToken: String?) throws {
        var byteIds = [Int32](repeating: -1, count: 256)
        var byteEndIds = [Int32](repeating: -1, count: 256)
        let unknownId: Int32?
        if let unknownToken {
            guard let id = vocabulary[unknownToken] else {
                throw TokenizerError.specialTokenNotInVocabulary(role: "unknown", token: unknownToken)
            }
            unknownId = Int32(id)
        } else {
            unknownId = nil
        }
        for byte in 0..<256 {
            let symbol = String(ByteLevel.characters[byte])
            for (table, token) in [(0, symbol), (1, symbol + Self.endOfWordSuffix)] {
                let id: Int32
                if let known = vocabulary[token] {
                    id = Int32(known)
                } else if let unknownId {
                    id = unknownId
                } else {
                    throw TokenizerError.missingUnknownToken(byteSymbol: token)
                }
                if table == 0 { byteIds[byte] = id } else { byteEndIds[byte] = id }
            }
        }
        var map = [UInt64: UInt64](minimumCapacity: mergeList.count)
        for (rank, (left, right)) in mergeList.enumerated() {
            guard let leftId = vocabulary[left] else { throw TokenizerError.mergeTokenNotInVocabulary(token: left) }
            guard let rightId = vocabulary[right] else { throw TokenizerError.mergeTokenNotInVocabulary(token: right) }
            let mergedToken = left + right
            guard let mergedId = vocabulary[mergedToken] else {
                throw TokenizerError.mergeTokenNotInVocabulary(token: mergedToken)
            }
            map[Self.pairKey(Int32(leftId), Int32(rightId))] = UInt64(rank) << 32 | UInt64(UInt32(mergedId))
        }
        self.byteIds = byteIds
        self.byteEndIds = byteEndIds
        self.merges = map
    }

    @inline(__always)
    private static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Appends the ids of one pre-tokenized word, given as its UTF-8 bytes (non-empty), to `output`.
    func appendTokens(ofWord bytes: [UInt8], to output: inout [Int]) {
        if bytes.count == 1 {
            output.append(Int(byteEndIds[Int(bytes[0])]))
            return
        }
        let cacheable = bytes.count <= WordCache.maximumWordBytes
        if cacheable, let cached = cache.lookup(bytes) {
            for id in cached { output.append(Int(id)) }
            return
        }
        let ids = mergeWord(bytes)
        for id in ids { output.append(Int(id)) }
        if cacheable { cache.insert(bytes, ids) }
    }

    private struct QueuedMerge {
        /// `(rank << 32) | position`: the queue pops the smallest, i.e. lowest rank, then leftmost.
        var order: UInt64
        var mergedId: Int32
    }

    /// `Word::merge_all` of `tokenizers`: symbols form a linked list over their original positions; a queued merge
    /// is stale (and skipped) when its left symbol was absorbed, has no right neighbour any more, or the current
    /// pair there no longer merges into the same token.
    private func mergeWord(_ bytes: [UInt8]) -> [Int32] {
        let count = bytes.count
        var ids = [Int32](repeating: 0, count: count)
        for index in 0..<count {
            ids[index] = index == count - 1 ? byteEndIds[Int(bytes[index])] : byteIds[Int(bytes[index])]
        }
        var previous = [Int32](repeating: -1, count: count)
        var next = [Int32](repeating: -1, count: count)
        var alive = [Bool](repeating: true, count: count)
        for index in 0..<count {
            previous[index] = Int32(index) - 1
            next[index] = index + 1 < count ? Int32(index + 1) : -1
        }
        var queue = MinHeap<QueuedMerge>(areInIncreasingOrder: { $0.order < $1.order })
        func enqueue(_ position: Int32, _ left: Int32, _ right: Int32) {
            if let merge = merges[Self.pairKey(left, right)] {
                let rank = merge >> 32
                queue.push(QueuedMerge(order: rank << 32 | UInt64(UInt32(position)),
                                       mergedId: Int32(truncatingIfNeeded: merge & 0xFFFF_FFFF)))
            }
        }
        for index in 0..<(count - 1) {
            enqueue(Int32(index), ids[index], ids[index + 1])
        }
        while let top = queue.pop() {
            let position = Int(top.order & 0xFFFF_FFFF)
            guard alive[position] else { continue }
            let right = next[position]
            guard right >= 0 else { continue }
            let rightIndex = Int(right)
            guard let merge = merges[Self.pairKey(ids[position], ids[rightIndex])],
                  Int32(truncatingIfNeeded: merge & 0xFFFF_FFFF) == top.mergedId
            else { continue }
            ids[position] = top.mergedId
            alive[rightIndex] = false
            let after = next[rightIndex]
            next[position] = after
            if after >= 0 { previous[Int(after)] = Int32(position) }
            let before = previous[position]
            if before >= 0 { enqueue(before, ids[Int(before)], ids[position]) }
            if after >= 0 { enqueue(Int32(position), ids[position], ids[Int(after)]) }
        }
        var result: [Int32] = []
        var index: Int32 = 0
        while index >= 0 {
            result.append(ids[Int(index)])
            index = next[Int(index)]
        }
        return result
    }
}

/// Thread-safe memo of word → ids. Like the cache of `tokenizers`' BPE it stops growing once full instead of
/// evicting, which keeps lookups cheap and memory bounded.
final class WordCache: @unchecked Sendable {
    static let maximumWordBytes = 256
    static let capacity = 100_000
    private let lock = NSLock()
    private var entries: [[UInt8]: [Int32]] = [:]

    func lookup(_ word: [UInt8]) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return entries[word]
    }

    func insert(_ word: [UInt8], _ ids: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        if entries.count < Self.capacity { entries[word] = ids }
    }
}

/// A plain binary min-heap.
struct MinHeap<Element> {
    private var storage: [Element] = []
    private let areInIncreasingOrder: (Element, Element) -> Bool

    init(areInIncreasingOrder: @escaping (Element, Element) -> Bool) {
        self.areInIncreasingOrder = areInIncreasingOrder
    }

    mutating func push(_ element: Element) {
        storage.append(element)
        var child = storage.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard areInIncreasingOrder(storage[child], storage[parent]) else { break }
            storage.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard let last = storage.popLast() else { return nil }
        guard !storage.isEmpty else { return last }
        let top = storage[0]
        storage[0] = last
        var parent = 0
        let count = storage.count
        while true {
            let left = 2 * parent + 1
            guard left < count else { break }
            var smallest = left
            let right = left + 1
            if right < count, areInIncreasingOrder(storage[right], storage[left]) { smallest = right }
            guard areInIncreasingOrder(storage[smallest], storage[parent]) else { break }
            storage.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
