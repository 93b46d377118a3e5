import NIOCore
import Synchronization

/// Encoded responses by request key, valid for one store revision and at most `ttl`; bounded in entries and bytes
/// (keys count as well as bodies; the oldest entries go first). When the store's revision changes every entry is
/// dropped at the next lookup. A second key for the same answer (`insertAlias`) refers to the entry instead of
/// holding its body again.
public final class ResponseCache: Sendable {
    public let ttl: Duration
    public let maxEntries: Int
    public let maxBytes: Int
    private let now: @Sendable () -> ContinuousClock.Instant

    private enum Value {
        case body(ByteBuffer)
        /// Another key's entry.
        case alias(String)
    }

    private struct Entry {
        var value: Value
        var expires: ContinuousClock.Instant
        /// Which insertion made it: the eviction order lists (key, serial) pairs, and a pair whose serial is no longer
        /// its key's (the entry was replaced, expired or evicted) is skipped, so a key re-inserted after it expired
        /// is evicted in its new place, not its old one.
        var serial: UInt64
        var size: Int
    }

    private struct State {
        var revision: UInt64?
        var entries: [String: Entry] = [:]
        var order: [(key: String, serial: UInt64)] = []
        var head = 0
        var nextSerial: UInt64 = 0
        var bytes = 0
        var hits = 0
        var misses = 0

        mutating func clear() {
            entries.removeAll(keepingCapacity: true)
            order.removeAll(keepingCapacity: true)
            head = 0
            bytes = 0
        }

        mutating func remove(_ key: String) {
            if let gone = entries.removeValue(forKey: key) { bytes -= gone.size }
        }

        /// The live entry for `key` (an expired one is removed).
        mutating func live(_ key: String, at now: ContinuousClock.Instant) -> Entry? {
            guard let entry = entries[key] else { return nil }
            guard entry.expires > now else {
                remove(key)
                return nil
            }
            return entry
        }
    }

    private let state = Mutex(State())

    /// `now` is the clock expiry is measured on (tests pass their own).
    public init(
        ttl: Duration, maxEntries: Int, maxBytes: Int,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.ttl = ttl
        self.maxEntries = max(0, maxEntries)
        self.maxBytes = max(0, maxBytes)
        self.now = now
    }

    /// The cached body for `key` under `revision`, or nil.
    public func lookup(_ key: String, revision: UInt64) -> ByteBuffer? {
        let now = now()
        return state.withLock { s in
            if s.revision != revision {
                s.clear()
                s.revision = revision
            }
            var body: ByteBuffer?
            switch s.live(key, at: now)?.value {
            case .body(let found): body = found
            case .alias(let target):
                if case .body(let found) = s.live(target, at: now)?.value { body = found } else { s.remove(key) }
            case nil: break
            }
            if body == nil { s.misses += 1 } else { s.hits += 1 }
            return body
        }
    }

    /// Keeps `body` for `key`, if the cache is still at `revision` (a response computed before a write is not kept
    /// after it).
    public func insert(_ key: String, body: ByteBuffer, revision: UInt64) {
        put(key, .body(body), size: key.utf8.count + body.readableBytes, revision: revision)
    }

    /// Makes `alias` answer with `key`'s entry while both are kept; costs the two keys, not a second body.
    public func insertAlias(_ alias: String, for key: String, revision: UInt64) {
        guard alias != key else { return }
        put(alias, .alias(key), size: alias.utf8.count + key.utf8.count, revision: revision)
    }

    private func put(_ key: String, _ value: Value, size: Int, revision: UInt64) {
        guard maxEntries > 0, size <= maxBytes else { return }
        let now = now()
        let expires = now + ttl
        state.withLock { s in
            if s.revision != revision {
                guard s.revision == nil else { return }
                s.revision = revision
            }
            if case .alias(let target) = value, case .alias(let current)? = s.live(key, at: now)?.value,
                current == target
            {
                return  // already there: re-inserting on every hit would only churn the order
            }
            s.remove(key)
            s.nextSerial += 1
            s.entries[key] = Entry(value: value, expires: expires, serial: s.nextSerial, size: size)
            s.order.append((key, s.nextSerial))
            s.bytes += size
            while s.entries.count > maxEntries || s.bytes > maxBytes, s.head < s.order.count {
                let oldest = s.order[s.head]
                s.head += 1
                if s.entries[oldest.key]?.serial == oldest.serial { s.remove(oldest.key) }
            }
            // Pairs of replaced, expired or evicted entries linger in `order`; drop them once they outnumber the
            // live ones, so the list stays proportional to the cache.
            if s.order.count > 2 * s.entries.count + 1024 {
                let entries = s.entries
                s.order = s.order[s.head...].filter { entries[$0.key]?.serial == $0.serial }
                s.head = 0
            }
        }
    }

    /// Entries, bytes, hits and misses so far.
    public var counts: (entries: Int, bytes: Int, hits: Int, misses: Int) {
        state.withLock { ($0.entries.count, $0.bytes, $0.hits, $0.misses) }
    }
}
