import Dispatch
import Synchronization

/// The queue is full: the caller should answer 503 with Retry-After.
public struct EmbeddingPoolBusy: Error, Sendable {}

/// A bounded pool for CPU-heavy work (decoding and embedding): at most `maxConcurrent` jobs run at once, each on a
/// Dispatch worker thread (never on Swift's cooperative pool, so HTTP handling stays responsive); at most `maxQueued`
/// more wait, in arrival order; beyond that `run` throws `EmbeddingPoolBusy` at once instead of letting latency grow.
public final class EmbeddingPool: Sendable {
    public let maxConcurrent: Int
    public let maxQueued: Int

    private struct State {
        var running = 0
        var waiters: [CheckedContinuation<Void, any Error>] = []
        var head = 0
        var queued: Int { waiters.count - head }
    }

    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "postersim.embedding", qos: .userInitiated, attributes: .concurrent)

    public init(maxConcurrent: Int, maxQueued: Int) {
        self.maxConcurrent = max(1, maxConcurrent)
        self.maxQueued = max(0, maxQueued)
    }

    /// Jobs running and waiting now.
    public var load: (running: Int, queued: Int) { state.withLock { ($0.running, $0.queued) } }

    /// Runs `body` on a worker thread once a slot is free; throws `EmbeddingPoolBusy` when the queue is full.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    private func acquire() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            enum Decision { case run, wait, reject }
            let decision: Decision = state.withLock { s in
                if s.running < maxConcurrent {
                    s.running += 1
                    return .run
                }
                guard s.queued < maxQueued else { return .reject }
                s.waiters.append(continuation)
                return .wait
            }
            switch decision {
            case .run: continuation.resume()
            case .reject: continuation.resume(throwing: EmbeddingPoolBusy())
            case .wait: break
            }
        }
    }

    private func release() {
        let next: CheckedContinuation<Void, any Error>? = state.withLock { s in
            guard s.queued > 0 else {
                s.running -= 1
                return nil
            }
            let waiter = s.waiters[s.head]
            s.head += 1
            if s.head > 64, s.head * 2 > s.waiters.count {
                s.waiters.removeFirst(s.head)
                s.head = 0
            }
            return waiter  // the slot passes to the waiter: `running` is unchanged
        }
        next?.resume()
    }
}
