import Foundation

/// The PostgreSQL server the tests use, started by `scripts/pgserver run` (which `make test` wraps around
/// `swift test`) and passed as `POSTERSIM_TEST_PG_URL`. Without it the PostgreSQL suites are skipped with a visible
/// message on a developer machine, but fail under CI (`CI=true`), where a missing server is a broken setup.
public enum TestPostgres {
    public static let url: String? = {
        let v = ProcessInfo.processInfo.environment["POSTERSIM_TEST_PG_URL"] ?? ""
        return v.isEmpty ? nil : v
    }()

    public static let isCI: Bool = {
        let v = (ProcessInfo.processInfo.environment["CI"] ?? "").lowercased()
        return v == "true" || v == "1"
    }()

    /// Whether the PostgreSQL suites run: a server is given, or we are in CI (where they then fail loudly).
    public static let shouldRun: Bool = url != nil || isCI

    public static let skipMessage =
        "PostgreSQL tests skipped: POSTERSIM_TEST_PG_URL is not set (run `make test`, or `scripts/pgserver run swift test`)"

    /// `scripts/pgserver` (absolute path), from `scripts/pgserver run`: fault tests start their own server with it.
    public static let serverScript: String? = ProcessInfo.processInfo.environment["POSTERSIM_TEST_PGSERVER"]

    public struct Missing: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// The server URL, or an error saying why there is none (under CI this fails the test).
    public static func requireURL() throws -> String {
        guard let url else {
            throw Missing(description: "CI=true but no PostgreSQL server: POSTERSIM_TEST_PG_URL is not set "
                + "(make test starts one with scripts/pgserver)")
        }
        return url
    }

    /// A new schema name for one test case, so cases never see each other's tables.
    public static func freshSchema(_ tag: String = "t") -> String {
        "\(tag)_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
    }
}
