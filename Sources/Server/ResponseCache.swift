import NIOCore
import Synchronization

/// Encoded responses by request key, valid for one store revision and at most `ttl`; bounded in entries and bytes
/// (the oldest entries go first). When the store's revision changes every entry is dropped at the next lookup.
public final class ResponseCache: Sendable {
    public let ttl: Duration
    public let maxEntries: Int
    public let maxBytes: Int

    private struct Entry {
        var body: ByteBuffer
        var expires: ContinuousClock.Instant
    }

    private struct State {
        var revision: UInt64?
        var entries: [String: Entry] = [:]
        var order: [String] = []
        var head = 0
        var bytes = 0
        var hits = 0
        var misses = 0

        mutating func clear() {
            entries.removeAll(keepingCapacity: true)
            order.removeAll(keepingCapacity: true)
            head = 0
            bytes = 0
        }
    }

    private let state = Mutex(State())

    public init(ttl: Duration, maxEntries: Int, maxBytes: Int) {
        self.ttl = ttl
        self.maxEntries = max(0, maxEntries)
        self.maxBytes = max(0, maxBytes)
    }

    /// The cached body for `key` under `revision`, or nil.
    public func lookup(_ key: String, revision: UInt64) -> ByteBuffer? {
        let now = ContinuousClock.now
        return state.withLock { s in
            if s.revision != revision {
                s.clear()
                s.revision = revision
            }
            guard let entry = s.entries[key] else {
                s.misses += 1
                return nil
            }
            guard entry.expires > now else {
                s.entries[key] = nil
                s.bytes -= entry.body.readableBytes
                s.misses += 1
                return nil
            }
            s.hits += 1
            return entry.body
        }
    }

    /// Keeps `body` for `key`, if the cache is still at `revision` (a response computed before a write is not kept
    /// after it).
    public func insert(_ key: String, body: ByteBuffer, revision: UInt64) {
        let size = body.readableBytes + key.utf8.count
        guard maxEntries > 0, size <= maxBytes else { return }
        let expires = ContinuousClock.now + ttl
        state.withLock { s in
            if s.revision != revision {
                guard s.revision == nil else { return }
                s.revision = revision
            }
            if let old = s.entries[key] {
                s.bytes -= old.body.readableBytes
            } else {
                s.order.append(key)
            }
            s.entries[key] = Entry(body: body, expires: expires)
            s.bytes += body.readableBytes
            while s.entries.count > maxEntries || s.bytes > maxBytes, s.head < s.order.count {
                let oldest = s.order[s.head]
                s.head += 1
                if let gone = s.entries.removeValue(forKey: oldest) { s.bytes -= gone.body.readableBytes }
            }
            // Keys of expired or replaced entries may linger in `order`; compact once half of it is consumed.
            if s.head > 1024, s.head * 2 > s.order.count {
                s.order.removeFirst(s.head)
                s.head = 0
                s.order.removeAll { s.entries[$0] == nil }
            }
        }
    }

    /// Entries, bytes, hits and misses so far.
    public var counts: (entries: Int, bytes: Int, hits: Int, misses: Int) {
        state.withLock { ($0.entries.count, $0.bytes, $0.hits, $0.misses) }
    }
}
