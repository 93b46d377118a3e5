import Foundation
import NIOCore
import PostgresNIO
import Synchronization

/// The connection closed before a statement sent on it was answered, and the statement may never be: worth retrying
/// on another connection (every store operation is safe to repeat).
struct ConnectionClosedUnderStatement: Error, CustomStringConvertible {
    var description: String { "the connection closed before the statement was answered" }
}

/// Ends the wait for a statement when its connection closes.
///
/// Why: postgres-nio hands a statement to the connection's channel without a write promise. When the server closes a
/// connection (a restart: "terminating connection due to administrator command"), NIO removes the channel's handlers
/// right after, and a statement written from then on reaches no handler: NIO drops the write silently, the
/// statement's result promise is never completed, and `query` waits for ever. No statement timeout can help, the
/// server never saw it. It takes a close between two statements of one lease: the next statement of a transaction
/// (seen: `UPDATE store_revision` after its `BEGIN`, then its `ROLLBACK`), or the first one on a connection the pool
/// handed out just before it heard of the close. That is what hung `PostgresIngestFaultTests` in some full runs. So
/// each statement also watches its connection: when the connection closes first, the wait ends with
/// `ConnectionClosedUnderStatement` (the abandoned statement can never reach the server, so nothing is left half
/// done), and the retry loop takes another connection.
///
/// One `closeFuture` callback per connection (not per statement: pooled connections live long and NIO callbacks
/// cannot be removed), which fails every statement still pending on it.
final class ClosedConnectionGuard: Sendable {
    static let shared = ClosedConnectionGuard()

    private struct Watched {
        /// Keeps the connection (so its ObjectIdentifier is not reused) until its close callback has run.
        let connection: PostgresConnection
        var pending: [UInt64: @Sendable (any Error) -> Void] = [:]
    }

    private struct State {
        var nextID: UInt64 = 0
        var connections: [ObjectIdentifier: Watched] = [:]
    }

    private let state = Mutex(State())

    /// Runs `body` (statements on `connection`), returning its result, or throwing `ConnectionClosedUnderStatement`
    /// as soon as `connection` closes if `body` has not finished by then. Cancellation is passed on to `body`.
    func run<T: Sendable>(
        on connection: PostgresConnection, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let outcome = Outcome<T>()
        let finished = Flag()
        // Unstructured, so that a statement that will never be answered can be left behind.
        let work = Task { try await body() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                outcome.set(continuation)
                let id = watch(connection) { error in
                    outcome.resume(with: .failure(error))
                    if Self.debug { Self.reportIfNeverAnswered(finished) }
                }
                Task {
                    let result = await work.result
                    finished.set()
                    self.unwatch(connection, id)
                    outcome.resume(with: result)
                }
            }
        } onCancel: {
            work.cancel()
        }
    }

    static let debug = ProcessInfo.processInfo.environment["POSTERSIM_PG_DEBUG"] != nil

    /// With POSTERSIM_PG_DEBUG: says so on standard error when a statement whose connection closed has still not been
    /// answered 5 s later (the case this guard exists for, as opposed to one that failed with the close anyway).
    private static func reportIfNeverAnswered(_ finished: Flag) {
        Task {
            try? await Task.sleep(for: .seconds(5))
            if !finished.isSet {
                FileHandle.standardError.write(
                    Data("postersim.pg: a statement was never answered after its connection closed (abandoned)\n".utf8))
            }
        }
    }

    private func watch(_ connection: PostgresConnection, fail: @escaping @Sendable (any Error) -> Void) -> UInt64 {
        let key = ObjectIdentifier(connection)
        let (id, first) = state.withLock { s -> (UInt64, Bool) in
            s.nextID += 1
            let first = s.connections[key] == nil
            if first { s.connections[key] = Watched(connection: connection) }
            s.connections[key]!.pending[s.nextID] = fail
            return (s.nextID, first)
        }
        if first {
            // Runs at once if the connection has closed already.
            connection.closeFuture.whenComplete { _ in
                let failing = self.state.withLock { $0.connections.removeValue(forKey: key)?.pending.values }
                for fail in failing.map(Array.init) ?? [] { fail(ConnectionClosedUnderStatement()) }
            }
        }
        return id
    }

    private func unwatch(_ connection: PostgresConnection, _ id: UInt64) {
        _ = state.withLock { $0.connections[ObjectIdentifier(connection)]?.pending.removeValue(forKey: id) }
    }

    /// A continuation resumed by whichever comes first: the statement's own result, or its connection's close.
    private final class Outcome<T: Sendable>: Sendable {
        private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)

        func set(_ c: CheckedContinuation<T, any Error>) { continuation.withLock { $0 = c } }

        func resume(with result: Result<T, any Error>) {
            continuation.withLock { c -> CheckedContinuation<T, any Error>? in
                defer { c = nil }
                return c
            }?.resume(with: result)
        }
    }
}
