import Foundation
import Logging
import PostgresNIO
import Synchronization
import TestSupport
import Testing

@testable import PostgresStore

/// A statement on a connection that closed before the statement was written (what a pooled connection leased just
/// as the server restarts gets) is a retryable failure at once. postgres-nio alone never answers it: NIO has removed
/// the channel's handlers and drops the write, so the statement's promise is never completed (the hang of
/// PostgresIngestFaultTests; see ClosedConnectionGuard).
@Suite(.enabled(if: TestPostgres.shouldRun, Comment(rawValue: TestPostgres.skipMessage)))
struct PostgresClosedConnectionTests {
    @Test func aStatementOnAClosedConnectionFailsInsteadOfWaitingForEver() async throws {
        let config = try PostgresStoreConfiguration(url: try TestPostgres.requireURL())
        let connection = try await PostgresConnection.connect(
            configuration: PostgresVectorStore.connectionConfiguration(config, tls: try config.transportSecurity()),
            id: 1, logger: Logger(label: "t"))
        try await connection.close()
        // closeFuture completes after NIO has removed the channel's handlers.
        try await connection.closeFuture.get()

        let statement = Task { try await PostgresVectorStore.all(connection, SQL("SELECT 1")) }
        // Only a hang detector: the answer is expected at once, and the bound is there to turn a hang (the bug) into
        // a failure instead of a stuck test run.
        let result = await Self.result(of: statement, unlessHungFor: .seconds(60))
        guard let result else {
            Issue.record("the statement on a closed connection was never answered")
            return
        }
        #expect(throws: (any Error).self) { try result.get() }
        if case .failure(let error) = result {
            #expect(PostgresVectorStore.isTransient(error), "\(error)")
        }
    }

    /// The task's result, or nil if it has none after `limit` (the task is then left behind).
    static func result<T: Sendable>(of task: Task<T, any Error>, unlessHungFor limit: Duration) async
        -> Result<T, any Error>?
    {
        let first = FirstResult<T>()
        return await withCheckedContinuation { (done: CheckedContinuation<Result<T, any Error>?, Never>) in
            first.set(done)
            Task { first.finish(await task.result) }
            Task {
                try? await Task.sleep(for: limit)
                first.finish(nil)
            }
        }
    }
}

/// Resumes its continuation once, with whichever value comes first.
final class FirstResult<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<Result<T, any Error>?, Never>?>(nil)

    func set(_ c: CheckedContinuation<Result<T, any Error>?, Never>) { continuation.withLock { $0 = c } }

    func finish(_ value: Result<T, any Error>?) {
        continuation.withLock { c -> CheckedContinuation<Result<T, any Error>?, Never>? in
            defer { c = nil }
            return c
        }?.resume(returning: value)
    }
}
