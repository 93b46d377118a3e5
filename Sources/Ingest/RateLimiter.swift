import Foundation
import Synchronization

/// A token bucket shared by every request of a client: tokens refill at `rate` per second up to `burst`; each request
/// takes one, waiting for it if the bucket is empty. Implemented as the equivalent "virtual scheduling" rule: each
/// caller reserves the next free slot under a lock, then sleeps until it, so waiting callers are served in arrival
/// order and none is starved. Over any interval of length T at most `burst + rate * T` requests start.
public final class RateLimiter: Sendable {
    public let rate: Double
    public let burst: Int
    private let interval: Double
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant
    /// The theoretical time (seconds since `origin`) at which the bucket is full again.
    private let fullAt: Mutex<Double>

    public init(rate: Double, burst: Int = 1) {
        self.rate = rate
        self.burst = max(1, burst)
        self.interval = 1 / rate
        self.origin = clock.now
        self.fullAt = Mutex(0)
    }

    private func seconds(since origin: ContinuousClock.Instant) -> Double {
        let d = clock.now - origin
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// Waits until a token is available and takes it. Throws `CancellationError` if the task is cancelled while
    /// waiting (the reserved slot is then simply unused).
    public func acquire() async throws {
        let now = seconds(since: origin)
        let startAt: Double = fullAt.withLock { full in
            // The bucket holds `burst` tokens: a request may start up to (burst - 1) intervals before `full`.
            let earliest = max(now, full - Double(burst - 1) * interval)
            full = max(full, now) + interval
            return earliest
        }
        let wait = startAt - now
        if wait > 0 {
            try await Task.sleep(for: .nanoseconds(Int64(wait * 1e9)))
        } else {
            try Task.checkCancellation()
        }
    }
}

/// When to retry and how long to wait: exponential backoff with jitter, or the server's `Retry-After`.
struct RetryPolicy: Sendable {
    var maxAttempts: Int
    var baseDelay: Double
    var maxDelay: Double
    var maxRetryAfter: Double

    static func isRetryable(status: Int) -> Bool { status == 429 || (500...599).contains(status) }

    /// Seconds to wait before retry number `retry` (1-based). The backoff `d = min(maxDelay, base * 2^(retry-1))` is
    /// jittered into `[d/2, d]` so clients that failed together do not come back together; a `Retry-After` is waited
    /// at least (capped at `maxRetryAfter`).
    func delay(beforeRetry retry: Int, retryAfter: Double?) -> Double {
        let exponent = Double(min(max(retry - 1, 0), 30))
        let ceiling = min(maxDelay, baseDelay * pow(2, exponent))
        let backoff = ceiling / 2 + Double.random(in: 0...1) * ceiling / 2
        guard let retryAfter else { return backoff }
        return max(min(retryAfter, maxRetryAfter), backoff)
    }

    /// Parses `Retry-After` (RFC 9110 §10.2.3): a non-negative number of seconds, or an HTTP-date (IMF-fixdate, or
    /// the obsolete RFC 850 and asctime forms) turned into seconds from `now` (0 when in the past). nil if malformed.
    static func parseRetryAfter(_ value: String, now: Date = Date()) -> Double? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            // Long digit strings overflow Int: treat them as "very long", the cap applies anyway.
            return Double(text) ?? .greatestFiniteMagnitude
        }
        for format in httpDateFormats {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                return max(0, date.timeIntervalSince(now))
            }
        }
        return nil
    }

    private static let httpDateFormats = [
        "EEE, dd MMM yyyy HH:mm:ss 'GMT'",  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        "EEEE, dd-MMM-yy HH:mm:ss 'GMT'",  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        "EEE MMM d HH:mm:ss yyyy",  // asctime: Sun Nov  6 08:49:37 1994
    ]
}
