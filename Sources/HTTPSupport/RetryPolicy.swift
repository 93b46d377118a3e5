import Foundation

/// The one retry policy of PosterSim's HTTP clients (TMDB, the model hub): which answers are worth another attempt,
/// how long to wait before it, and how many attempts to make.
///
/// - Retryable statuses: 408 (request timeout), 429 (too many requests) and 5xx, except 501, 505 and 511, which state
///   something permanent about the request or the network (not implemented, HTTP version, network login).
///   Transport failures (refused, reset, timed out) are the client's to classify; they go through `run` the same way.
/// - Back-off before retry `n` (1-based): `d = min(maxDelay, baseDelay * 2^(n-1))`, drawn from `[d/2, d]` (jitter, so
///   clients that failed together do not come back together, while the wait still grows).
/// - `Retry-After` (delta-seconds or an HTTP-date, RFC 9110 §10.2.3) is waited at least, cut to `maxRetryAfter`: a
///   server asking for an hour does not stall a run for an hour.
/// - At most `maxAttempts` attempts, the first included.
///
/// Time and randomness are injected (`HTTPClock`, `random`), so tests check exact waits.
public struct RetryPolicy: Sendable {
    /// Attempts per request, the first included (at least 1).
    public var maxAttempts: Int
    /// Seconds: the back-off before the first retry is drawn from `[baseDelay/2, baseDelay]`.
    public var baseDelay: Double
    /// Seconds: the longest back-off (before jitter).
    public var maxDelay: Double
    /// Seconds: the longest `Retry-After` honoured; longer ones are waited only this long.
    public var maxRetryAfter: Double
    /// Uniform random numbers in `[0, 1]` for the jitter.
    public var random: @Sendable () -> Double

    public init(
        maxAttempts: Int, baseDelay: Double, maxDelay: Double, maxRetryAfter: Double,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0...1) }
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = max(0, baseDelay)
        self.maxDelay = max(0, maxDelay)
        self.maxRetryAfter = max(0, maxRetryAfter)
        self.random = random
    }

    /// Whether an answer with this status may succeed if asked again.
    public static func isRetryable(status: Int) -> Bool {
        switch status {
        case 408, 429: true
        case 501, 505, 511: false
        case 500...599: true
        default: false
        }
    }

    /// Seconds of back-off before retry number `retry` (1-based), jittered into `[d/2, d]`.
    public func backoff(beforeRetry retry: Int) -> Double {
        let exponent = Double(min(max(retry - 1, 0), 60))
        let ceiling = min(maxDelay, baseDelay * pow(2, exponent))
        let r = min(max(random(), 0), 1)
        return ceiling / 2 + r * ceiling / 2
    }

    /// Seconds to wait before retry number `retry`: the back-off, or the server's `Retry-After` (in seconds, see
    /// `retryAfter(_:now:)`) when that is longer, cut to `maxRetryAfter`.
    public func delay(beforeRetry retry: Int, retryAfter: Double?) -> Double {
        let backoff = backoff(beforeRetry: retry)
        guard let retryAfter else { return backoff }
        return max(min(retryAfter, maxRetryAfter), backoff)
    }

    /// Parses a `Retry-After` value (RFC 9110 §10.2.3): a non-negative number of seconds, or an HTTP-date
    /// (IMF-fixdate, or the obsolete RFC 850 and asctime forms) as seconds from `now` (0 when past). nil if malformed.
    public static func retryAfter(_ value: String, now: Date) -> Double? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            // Digits beyond any Int still parse as a (huge) Double; the cap applies anyway.
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

    /// What one attempt came to: a result, or a failure worth another attempt (with the server's `Retry-After` in
    /// seconds, if it gave one). A failure not worth retrying is thrown from the attempt instead.
    public enum Outcome<Success: Sendable, Failure: Sendable>: Sendable {
        case success(Success)
        case retry(Failure, retryAfter: Double?)
    }

    /// A retry about to happen: attempt `attempt` (1-based) failed with `failure`; the next starts after `delay`
    /// seconds.
    public struct Retry<Failure: Sendable>: Sendable {
        public let attempt: Int
        public let delay: Double
        public let failure: Failure
    }

    /// Runs `attempt(n)` for n = 1, 2, … until it succeeds or throws, sleeping on `clock` between attempts as the
    /// policy says (`willRetry` hears of each wait first). After `maxAttempts` failures, throws
    /// `giveUp(attempts, lastFailure)`. Cancellation ends the wait at once (the clock's sleep throws).
    public func run<Success: Sendable, Failure: Sendable>(
        isolation: isolated (any Actor)? = #isolation,
        clock: any HTTPClock,
        attempt: (_ number: Int) async throws -> Outcome<Success, Failure>,
        willRetry: (Retry<Failure>) -> Void = { _ in },
        giveUp: (_ attempts: Int, _ last: Failure) -> any Error
    ) async throws -> Success {
        var number = 1
        while true {
            switch try await attempt(number) {
            case .success(let value):
                return value
            case .retry(let failure, let retryAfter):
                guard number < maxAttempts else { throw giveUp(number, failure) }
                let wait = delay(beforeRetry: number, retryAfter: retryAfter)
                willRetry(Retry(attempt: number, delay: wait, failure: failure))
                try await clock.sleep(for: .clamped(seconds: wait))
                number += 1
            }
        }
    }
}
