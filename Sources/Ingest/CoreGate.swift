/// Keeps the pipeline's CPU work from running beside a model's forward pass.
///
/// The models spread each batch over every core with OpenMP, whose threads meet at a barrier after every layer:
/// when a decoding task takes one core, the other model thread waits at the barrier, so a poster's 8 ms of decoding
/// and preprocessing cost the model up to twice that. Measured on 2 cores with 96 posters: the pipeline added 6–21 %
/// to the pure model time with decoding running beside the models. So decoding and preprocessing take the gate
/// shared (up to `width` at once, one per core) and a forward pass takes it exclusively; downloads stay outside it.
///
/// Guarantees: an exclusive holder runs alone; shared holders never exceed `width`; a waiting exclusive request
/// stops new shared ones from starting (the models are not starved by a stream of posters); waiters are served in
/// arrival order within their kind. The body runs after `await`ing the gate and the gate is released when it
/// returns or throws.
actor CoreGate {
    let width: Int
    private var sharedHolders = 0
    private var exclusiveHeld = false
    private var waitingShared: [CheckedContinuation<Void, Never>] = []
    private var waitingExclusive: [CheckedContinuation<Void, Never>] = []

    init(width: Int) {
        self.width = max(width, 1)
    }

    /// Runs `body` while holding one of the gate's `width` shared places.
    nonisolated func shared<T: Sendable>(_ body: @Sendable () throws -> T) async rethrows -> T {
        await acquireShared()
        do {
            let result = try body()
            await releaseShared()
            return result
        } catch {
            await releaseShared()
            throw error
        }
    }

    /// Runs `body` with the gate to itself.
    nonisolated func exclusive<T: Sendable>(_ body: @Sendable () async throws -> T) async rethrows -> T {
        await acquireExclusive()
        do {
            let result = try await body()
            await releaseExclusive()
            return result
        } catch {
            await releaseExclusive()
            throw error
        }
    }

    private func acquireShared() async {
        if !exclusiveHeld, waitingExclusive.isEmpty, sharedHolders < width {
            sharedHolders += 1
            return
        }
        await withCheckedContinuation { waitingShared.append($0) }  // resumed holding a place
    }

    private func releaseShared() {
        sharedHolders -= 1
        admitWaiters()
    }

    private func acquireExclusive() async {
        if !exclusiveHeld, sharedHolders == 0 {
            exclusiveHeld = true
            return
        }
        await withCheckedContinuation { waitingExclusive.append($0) }  // resumed holding the gate
    }

    private func releaseExclusive() {
        exclusiveHeld = false
        admitWaiters()
    }

    private func admitWaiters() {
        guard !exclusiveHeld else { return }
        if !waitingExclusive.isEmpty {
            guard sharedHolders == 0 else { return }
            exclusiveHeld = true
            waitingExclusive.removeFirst().resume()
            return
        }
        while sharedHolders < width, !waitingShared.isEmpty {
            sharedHolders += 1
            waitingShared.removeFirst().resume()
        }
    }
}
