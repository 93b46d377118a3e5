import Foundation
import HTTPSupport
import Synchronization

/// A token bucket shared by every request of a client: tokens refill at `rate` per second up to `burst`; each request
/// takes one, waiting for it if the bucket is empty. Implemented as the equivalent "virtual scheduling" rule: each
/// caller reserves the next free slot under a lock, then sleeps until it, so waiting callers are served in arrival
/// order and none is starved. Over any interval of length T at most `burst + rate * T` requests start.
/// Time is `clock`'s (the client's), so tests check the spacing on a `VirtualClock`.
public final class RateLimiter: Sendable {
    public let rate: Double
    public let burst: Int
    private let interval: Double
    private let clock: any HTTPClock
    private let origin: Duration
    /// The theoretical time (seconds since `origin`) at which the bucket is full again.
    private let fullAt: Mutex<Double>

    public init(rate: Double, burst: Int = 1, clock: any HTTPClock = SystemHTTPClock()) {
        self.rate = rate
        self.burst = max(1, burst)
        self.interval = 1 / rate
        self.clock = clock
        self.origin = clock.now
        self.fullAt = Mutex(0)
    }

    private func secondsSinceOrigin() -> Double {
        let d = clock.now - origin
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// Waits until a token is available and takes it. Throws `CancellationError` if the task is cancelled while
    /// waiting (the reserved slot is then simply unused).
    public func acquire() async throws {
        let now = secondsSinceOrigin()
        let startAt: Double = fullAt.withLock { full in
            // The bucket holds `burst` tokens: a request may start up to (burst - 1) intervals before `full`.
            let earliest = max(now, full - Double(burst - 1) * interval)
            full = max(full, now) + interval
            return earliest
        }
        try await clock.sleep(for: .nanoseconds(Int64(max(0, startAt - now) * 1e9)))
    }
}
