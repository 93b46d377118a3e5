import Foundation
import Synchronization

/// The time an HTTP client waits by: its retry back-off and its rate limit read and sleep through this, never through
/// the system clock directly, so tests can run them on `VirtualClock` and assert on exact waits instead of racing a
/// loaded machine's wall clock.
public protocol HTTPClock: Sendable {
    /// Monotonic time since an arbitrary origin fixed for the clock's life (for spacing and deadlines).
    var now: Duration { get }
    /// The calendar date, for HTTP-dates (`Retry-After: Sun, 06 Nov 1994 08:49:37 GMT`).
    var date: Date { get }
    /// Waits `duration` (nothing for zero or less); throws `CancellationError` if the task is cancelled meanwhile.
    func sleep(for duration: Duration) async throws
}

/// The real clocks: `ContinuousClock` for `now` and sleeping, `Date()` for `date`.
public struct SystemHTTPClock: HTTPClock {
    private let origin: ContinuousClock.Instant

    public init() { origin = ContinuousClock.now }

    public var now: Duration { ContinuousClock.now - origin }
    public var date: Date { Date() }

    public func sleep(for duration: Duration) async throws {
        if duration > .zero {
            try await Task.sleep(for: duration)
        } else {
            try Task.checkCancellation()
        }
    }
}

/// A clock whose time moves only when someone sleeps on it: `sleep(for: d)` returns at once (after a yield) and moves
/// the clock to the sleeper's deadline (`now` when it started sleeping, plus `d`) unless it is already later. So a
/// sequence of waits adds up exactly, concurrent sleepers leave the clock at the latest deadline, and no test waits
/// for real time. Every sleep is recorded.
public final class VirtualClock: HTTPClock {
    private struct State {
        var now: Duration = .zero
        var sleeps: [Duration] = []
    }

    private let state = Mutex(State())
    private let origin: Date

    /// `date` starts at `date` and moves with `now`.
    public init(date: Date = Date(timeIntervalSince1970: 1_700_000_000)) { origin = date }

    public var now: Duration { state.withLock { $0.now } }
    public var date: Date { origin.addingTimeInterval(now.inSeconds) }
    /// Every duration passed to `sleep`, in call order.
    public var sleeps: [Duration] { state.withLock { $0.sleeps } }

    /// Moves the clock forward by `duration` (time passing outside any sleep).
    public func advance(by duration: Duration) { state.withLock { $0.now += max(.zero, duration) } }

    public func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        state.withLock { s in
            let deadline = s.now + max(.zero, duration)
            s.sleeps.append(duration)
            s.now = max(s.now, deadline)
        }
        await Task.yield()
        try Task.checkCancellation()
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }

    /// `seconds` as a duration; negative and NaN as zero, and beyond a day as a day (no HTTP wait is longer, and
    /// `Duration` cannot hold every `Double`).
    static func clamped(seconds: Double) -> Duration {
        let s = seconds.isNaN ? 0 : min(max(seconds, 0), 86_400)
        return .nanoseconds(Int64(s * 1e9))
    }
}
