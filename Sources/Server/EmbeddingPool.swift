import Dispatch
import Synchronization

/// The queue is full: the caller should answer 503 with Retry-After.
public struct EmbeddingPoolBusy: Error, Sendable {}

/// A bounded pool for CPU-heavy work (decoding and embedding): at most `maxConcurrent` jobs run at once, each on a
/// Dispatch worker thread (never on Swift's cooperative pool, so HTTP handling stays responsive); at most `maxQueued`
/// more wait, in arrival order; beyond that `run` throws `EmbeddingPoolBusy` at once instead of letting latency grow.
/// A waiting caller whose task is cancelled (its client went away) leaves the queue at once with `CancellationError`,
/// so abandoned requests never hold places in it; a job already running finishes (a forward pass cannot be stopped).
public final class EmbeddingPool: Sendable {
    public let maxConcurrent: Int
    public let maxQueued: Int

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var running = 0
        /// In arrival order; short (at most `maxQueued`), so removing from the middle is cheap.
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "postersim.embedding", qos: .userInitiated, attributes: .concurrent)

    public init(maxConcurrent: Int, maxQueued: Int) {
        self.maxConcurrent = max(1, maxConcurrent)
        self.maxQueued = max(0, maxQueued)
    }

    /// Jobs running and waiting now.
    public var load: (running: Int, queued: Int) { state.withLock { ($0.running, $0.waiters.count) } }

    /// Runs `body` on a worker thread once a slot is free; throws `EmbeddingPoolBusy` when the queue is full, and
    /// `CancellationError` when the calling task is cancelled before its turn.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Runs async `body` once a slot is free, on the caller's executor (for work that awaits rather than computes);
    /// throws like `run`.
    public func admit<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async throws {
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Decision { case run, wait, reject, cancelled }
                let decision: Decision = state.withLock { s in
                    // Checked under the lock: a cancellation after this finds the waiter below in `onCancel`.
                    if Task.isCancelled { return .cancelled }
                    if s.running < maxConcurrent {
                        s.running += 1
                        return .run
                    }
                    guard s.waiters.count < maxQueued else { return .reject }
                    s.waiters.append(Waiter(id: id, continuation: continuation))
                    return .wait
                }
                switch decision {
                case .run: continuation.resume()
                case .reject: continuation.resume(throwing: EmbeddingPoolBusy())
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .wait: break
                }
            }
        } onCancel: {
            let abandoned: CheckedContinuation<Void, any Error>? = state.withLock { s in
                guard let index = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: index).continuation
            }
            abandoned?.resume(throwing: CancellationError())
        }
    }

    private func release() {
        let next: CheckedContinuation<Void, any Error>? = state.withLock { s in
            guard !s.waiters.isEmpty else {
                s.running -= 1
                return nil
            }
            return s.waiters.removeFirst().continuation  // the slot passes to the waiter: `running` is unchanged
        }
        next?.resume()
    }
}
