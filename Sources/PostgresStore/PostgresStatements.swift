// Running statements: connections from the pool, transactions, retries across server restarts and error mapping.
import PosterSimCore
import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Store
import Synchronization


extension PostgresVectorStore {
    // MARK: - Running statements

    static func all(_ conn: PostgresConnection, _ q: SQL) async throws -> [PostgresRow] {
        let out: [PostgresRow]
        do {
            // Guarded: a statement on a connection that closes under it must not wait for ever (ClosedConnectionGuard).
            out = try await ClosedConnectionGuard.shared.run(on: conn) {
                var rows: [PostgresRow] = []
                for try await row in try await conn.query(q.query, logger: disabledLogger) { rows.append(row) }
                return rows
            }
        } catch {
            if ProcessInfo.processInfo.environment["POSTERSIM_PG_DEBUG"] != nil {
                FileHandle.standardError.write(Data("SQL failed: \(q.text)\n\(describe(error))\n".utf8))
            }
            throw error
        }
        return out
    }

    static func run(_ conn: PostgresConnection, _ q: SQL) async throws {
        _ = try await all(conn, q)
    }

    static let disabledLogger = Logger(label: "postersim.pg.quiet", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A write: one READ COMMITTED transaction that first bumps the revision row (serialising all writers).
    func write<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction("BEGIN") { conn in
            try await Self.run(conn, SQL("UPDATE store_revision SET value = value + 1"))
            return try await body(conn)
        }
    }

    /// A read of one statement (its own snapshot).
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withRetry {
            try await self.withLease { conn in try await body(conn) }
        }
    }

    /// A read of several statements that must see one snapshot.
    func readSnapshot<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws
        -> T
    {
        try await transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
    }

    func transaction<T: Sendable>(
        _ begin: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withRetry {
            try await self.withLease { conn in
                try await Self.run(conn, SQL(begin))
                do {
                    let result = try await body(conn)
                    try await Self.run(conn, SQL("COMMIT"))
                    return result
                } catch {
                    try? await Self.run(conn, SQL("ROLLBACK"))
                    throw error
                }
            }
        }
    }

    /// Runs `body`, retrying transient connection failures (server restarting or unreachable) for `retryWindow`
    /// with exponential backoff; other errors are mapped to `StoreError` / `PostgresStoreError` at once.
    func withRetry<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + configuration.retryWindow
        var delay = Duration.milliseconds(50)
        while true {
            do {
                return try await body()
            } catch {
                guard Self.isTransient(error), !Task.isCancelled else {
                    throw Self.mapError(error, configuration: configuration)
                }
                guard ContinuousClock.now + delay < deadline else {
                    throw PostgresStoreError.unavailable(url: configuration.redactedURL, reason: Self.describe(error))
                }
                logger.debug("retrying after transient error: \(Self.describe(error))")
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    /// No connection could be leased from the pool within `leaseTimeout` (server down or restarting).
    struct LeaseTimeout: Error, CustomStringConvertible {
        var description: String { "no connection could be made within the lease timeout" }
    }

    /// How long one attempt may wait for a pooled connection before the retry loop takes over.
    var leaseTimeout: Duration { configuration.connectTimeout + .seconds(5) }

    /// `client.withConnection`, but an attempt that cannot lease a connection within `leaseTimeout` gives up (the
    /// lease request is cancelled) with a transient `LeaseTimeout`, so a pool that waits on an unreachable server
    /// never blocks an operation past the retry window. Once leased, the body runs without a deadline (the
    /// statement timeout, if any, bounds it).
    func withLease<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let leased = Flag()
        let timeout = leaseTimeout
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await self.client.withConnection { conn in
                    leased.set()
                    return try await body(conn)
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                if !leased.isSet { throw LeaseTimeout() }
                return nil
            }
            while let next = try await group.next() {
                if let value = next {
                    group.cancelAll()
                    return value
                }
            }
            throw LeaseTimeout()
        }
    }

    static func isTransient(_ error: any Error) -> Bool {
        if error is LeaseTimeout || error is ConnectionClosedUnderStatement { return true }
        if let e = error as? PSQLError {
            if let state = e.serverInfo?[.sqlState] {
                return state.hasPrefix("08") || state == "57P01" || state == "57P02" || state == "57P03"
            }
            return e.code == .connectionError || e.code == .serverClosedConnection || e.code == .uncleanShutdown
                || e.code == .clientClosedConnection
        }
        if error is PostgresStoreError || error is StoreError || error is RecordIndexError || error is CancellationError {
            return false
        }
        // Socket errors from NIO while (re)connecting.
        let text = String(describing: error)
        return text.contains("connection") || text.contains("Connection") || text.contains("refused")
    }

    static func mapError(_ error: any Error, configuration: PostgresStoreConfiguration) -> any Error {
        if error is StoreError || error is PostgresStoreError || error is RecordIndexError || error is CancellationError {
            return error
        }
        if let e = error as? PSQLError {
            if let state = e.serverInfo?[.sqlState] {
                let message = e.serverInfo?[.message] ?? ""
                if state == "57014", message.contains("statement timeout") {
                    return PostgresStoreError.statementTimeout(milliseconds: configuration.statementTimeoutMilliseconds)
                }
                return PostgresStoreError.server(sqlState: state, message: message)
            }
            if isTransient(e) {
                return PostgresStoreError.unavailable(url: configuration.redactedURL, reason: describe(e))
            }
        }
        return StoreError.database(describe(error))
    }

    /// A readable account of a postgres-nio error (its own description hides server details).
    static func describe(_ error: any Error) -> String {
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] {
                return "\(message) (SQLSTATE \(e.serverInfo?[.sqlState] ?? "?"))"
            }
            if let underlying = e.underlying { return "\(e.code): \(underlying)" }
            return "\(e.code)"
        }
        return "\(error)"
    }
}

final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
