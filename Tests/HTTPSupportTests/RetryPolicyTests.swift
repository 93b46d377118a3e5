// The one retry policy: statuses, Retry-After in both forms, back-off bounds and cap, the retry loop — all on a
// VirtualClock and a fixed random source, so nothing here depends on how busy the machine is.
import Foundation
import HTTPSupport
import Synchronization
import Testing

/// A policy whose jitter draws `r` every time (0: the low end of the range, 1: the high end).
func policy(attempts: Int = 5, base: Double = 0.5, max: Double = 30, maxRetryAfter: Double = 120, r: Double)
    -> RetryPolicy
{
    RetryPolicy(maxAttempts: attempts, baseDelay: base, maxDelay: max, maxRetryAfter: maxRetryAfter, random: { r })
}

func imfFixdate(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "GMT")
    formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
    return formatter.string(from: date)
}

@Suite struct RetryPolicyTests {
    @Test func retryableStatuses() {
        for status in [408, 429, 500, 502, 503, 504, 520] { #expect(RetryPolicy.isRetryable(status: status), "\(status)") }
        for status in [200, 204, 301, 400, 401, 403, 404, 409, 413, 501, 505, 511] {
            #expect(!RetryPolicy.isRetryable(status: status), "\(status)")
        }
    }

    @Test func retryAfterInSecondsAndAsHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(RetryPolicy.retryAfter("3", now: now) == 3)
        #expect(RetryPolicy.retryAfter(" 0 ", now: now) == 0)
        #expect(RetryPolicy.retryAfter(imfFixdate(now.addingTimeInterval(10)), now: now) == 10)
        // A date in the past: retry at once.
        #expect(RetryPolicy.retryAfter(imfFixdate(now.addingTimeInterval(-100)), now: now) == 0)
        // The obsolete forms RFC 9110 still asks recipients to accept.
        #expect(RetryPolicy.retryAfter("Tuesday, 14-Nov-23 22:13:30 GMT", now: now) == 10)
        #expect(RetryPolicy.retryAfter("Tue Nov 14 22:13:30 2023", now: now) == 10)
        // Longer than any Int: still a (huge) wait, which the cap then cuts.
        #expect(RetryPolicy.retryAfter("99999999999999999999999", now: now) ?? 0 >= 1e22)
        for bad in ["soon", "-5", "", "1.5", "Tue, 14 Nov 2023"] { #expect(RetryPolicy.retryAfter(bad, now: now) == nil) }
    }

    @Test func backoffDoublesWithinJitterBoundsUpToTheCap() {
        let low = policy(base: 0.5, max: 30, r: 0)
        let high = policy(base: 0.5, max: 30, r: 1)
        // Retry n waits within [d/2, d], d = min(30, 0.5 * 2^(n-1)).
        for (n, d) in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (7, 30.0), (40, 30.0), (10_000, 30.0)] {
            #expect(low.backoff(beforeRetry: n) == d / 2, "retry \(n)")
            #expect(high.backoff(beforeRetry: n) == d, "retry \(n)")
        }
        // A random source straying outside [0, 1] cannot break the bounds.
        #expect(policy(base: 1, max: 8, r: 7).backoff(beforeRetry: 1) == 1)
        #expect(policy(base: 1, max: 8, r: -3).backoff(beforeRetry: 1) == 0.5)
    }

    @Test func retryAfterIsWaitedAtLeastAndCapped() {
        let p = policy(base: 0.5, max: 30, maxRetryAfter: 120, r: 1)
        #expect(p.delay(beforeRetry: 1, retryAfter: nil) == 0.5)
        #expect(p.delay(beforeRetry: 1, retryAfter: 7) == 7)
        // A Retry-After shorter than the back-off does not shorten it.
        #expect(p.delay(beforeRetry: 3, retryAfter: 1) == 2)
        // An hour is cut to maxRetryAfter.
        #expect(p.delay(beforeRetry: 1, retryAfter: 3600) == 120)
        #expect(p.delay(beforeRetry: 1, retryAfter: .greatestFiniteMagnitude) == 120)
    }

    @Test func runRetriesOnTheClockThenGivesUp() async throws {
        struct GaveUp: Error, Equatable {
            let attempts: Int
            let last: String
        }
        let clock = VirtualClock()
        let p = policy(attempts: 4, base: 1, max: 8, r: 1)
        let attempts = Mutex(0)
        let retries = Mutex<[Double]>([])
        await #expect(throws: GaveUp(attempts: 4, last: "503 #4")) {
            _ = try await p.run(clock: clock) { n -> RetryPolicy.Outcome<Int, String> in
                attempts.withLock { $0 += 1 }
                return .retry("503 #\(n)", retryAfter: n == 2 ? 5 : nil)
            } willRetry: { retry in
                retries.withLock { $0.append(retry.delay) }
            } giveUp: { n, last in
                GaveUp(attempts: n, last: last)
            }
        }
        #expect(attempts.withLock { $0 } == 4)
        // Back-off 1, then Retry-After 5 (longer than the back-off of 2), then 4; no wait after the last attempt.
        #expect(retries.withLock { $0 } == [1, 5, 4])
        #expect(clock.sleeps == [.seconds(1), .seconds(5), .seconds(4)])
        #expect(clock.now == .seconds(10))

        // Success on the second attempt after one wait; a thrown error ends the loop at once.
        let value = try await p.run(clock: clock) { n -> RetryPolicy.Outcome<Int, String> in
            n == 1 ? .retry("429", retryAfter: 0) : .success(42)
        } giveUp: { _, _ in GaveUp(attempts: 0, last: "") }
        #expect(value == 42)
        struct Fatal: Error {}
        await #expect(throws: Fatal.self) {
            _ = try await p.run(clock: clock) { _ -> RetryPolicy.Outcome<Int, String> in throw Fatal() } giveUp: { _, _ in
                GaveUp(attempts: 0, last: "")
            }
        }
    }

    @Test func anHTTPDateRetryAfterIsWaitedOnTheClocksDate() async throws {
        let clock = VirtualClock(date: Date(timeIntervalSince1970: 1_700_000_000))
        let retryAt = clock.date.addingTimeInterval(3)
        let p = policy(base: 0.01, max: 0.05, r: 0)
        _ = try await p.run(clock: clock) { n -> RetryPolicy.Outcome<Bool, Int> in
            n == 1 ? .retry(503, retryAfter: RetryPolicy.retryAfter(imfFixdate(retryAt), now: clock.date)) : .success(true)
        } giveUp: { _, _ in CancellationError() }
        #expect(clock.date >= retryAt)
        #expect(clock.sleeps == [.seconds(3)])
    }

    @Test func cancellationEndsTheWait() async throws {
        let p = policy(base: 3600, max: 3600, r: 1)
        let task = Task {
            try await p.run(clock: SystemHTTPClock()) { _ -> RetryPolicy.Outcome<Int, String> in
                .retry("busy", retryAfter: nil)
            } giveUp: { _, _ in CancellationError() }
        }
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
    }

    @Test func virtualClockAddsUpWaitsAndKeepsTheLatestDeadline() async throws {
        let clock = VirtualClock()
        try await clock.sleep(for: .milliseconds(250))
        try await clock.sleep(for: .milliseconds(750))
        #expect(clock.now == .seconds(1))
        // Concurrent sleepers: the clock ends at the latest deadline, not the sum.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for ms in [100, 300, 200] { group.addTask { try await clock.sleep(for: .milliseconds(ms)) } }
            try await group.waitForAll()
        }
        #expect(clock.now >= .milliseconds(1300) && clock.now <= .milliseconds(1600))
        clock.advance(by: .seconds(2))
        #expect(clock.date == Date(timeIntervalSince1970: 1_700_000_000).addingTimeInterval(clock.now.inSeconds))
    }
}

extension Duration {
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
