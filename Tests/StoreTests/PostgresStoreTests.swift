import PosterSimCore
import Foundation
import Logging
import PostgresNIO
import PostgresStore
import Store
import TestSupport
import Testing

/// What the PostgreSQL store adds to the contract: migrations, revision, the approximate path, typed server errors.
@Suite(.enabled(if: TestPostgres.shouldRun, Comment(rawValue: TestPostgres.skipMessage)))
struct PostgresStoreTests {
    func freshConfig(_ tag: String = "t") throws -> PostgresStoreConfiguration {
        var config = try PostgresStoreConfiguration(url: try TestPostgres.requireURL())
        config.schema = TestPostgres.freshSchema(tag)
        return config
    }

    @Test func migrationsAreVersionedAndIdempotent() async throws {
        let config = try freshConfig()
        let logger = Logger(label: "test")
        let first = try await PostgresMigrations.run(configuration: config, logger: logger)
        #expect(first.applied.map(\.version) == PostgresMigrations.all.map(\.version))
        #expect(first.version == PostgresMigrations.latestVersion)
        let second = try await PostgresMigrations.run(configuration: config, logger: logger)
        #expect(second.applied.isEmpty && second.version == PostgresMigrations.latestVersion)
        // A store opened without migrating on an unmigrated schema is refused with a hint.
        let bare = try freshConfig()
        await #expect(throws: PostgresStoreError.self) {
            _ = try await PostgresVectorStore.open(configuration: bare, migrate: false)
        }
        _ = try await PostgresVectorStore.open(configuration: config, migrate: false)
    }

    @Test func revisionChangesOnEveryCommittedWriteFromAnyInstance() async throws {
        let config = try freshConfig()
        let a = try await PostgresVectorStore.open(configuration: config)
        let b = try await PostgresVectorStore.open(configuration: config)
        let r0 = try await a.revision()
        #expect(try await b.revision() == r0)
        try await a.upsertMovies([Movie(id: 1, title: "One")])
        let r1 = try await b.revision()
        #expect(r1 != r0)
        // Reads do not change it; a failed write does not either.
        _ = try await a.fetchMovies(ids: [1])
        try await a.registerSpace(VectorSpace(name: "clip", dimension: 2, metric: .cosine),
                                  identity: ModelIdentity(repo: "r", weightsSHA256: "aa"))
        let r2 = try await a.revision()
        await #expect(throws: StoreError.unknownMovie(9)) {
            try await b.upsertEmbeddings([EmbeddingInput(movieID: 9, vector: [1, 0])], space: "clip",
                                         identity: ModelIdentity(repo: "r", weightsSHA256: "aa"))
        }
        #expect(try await a.revision() == r2)
        await a.shutdown()
        await b.shutdown()
    }

    /// Above `exactScanBelow` an unfiltered query goes through HNSW and exact re-ranking: on clustered data it finds the
    /// exact top 10 (recall 1 here), in the same order and with the same scores as the exact scan.
    @Test func approximatePathMatchesExactOnEasyData() async throws {
        var config = try freshConfig()
        config.exactScanBelow = 0
        config.largeSpaceIndex = .binaryQuantized
        let approx = try await PostgresVectorStore.open(configuration: config)
        var exactConfig = config
        exactConfig.approximateSearch = false
        let exact = try await PostgresVectorStore.open(configuration: exactConfig)
        let id = ModelIdentity(repo: "test/m", weightsSHA256: "ab")
        let spaces = [
            VectorSpace(name: "c", dimension: 32, metric: .cosine),
            VectorSpace(name: "h", dimension: 2048, metric: .euclidean),
            VectorSpace(name: "b", dimension: 4100, metric: .euclidean),
        ]
        let n = 300
        try await approx.upsertMovies((1...n).map { Movie(id: $0, title: "M\($0)") })
        var gen = SplitMix64(seed: 42)
        for s in spaces {
            try await approx.registerSpace(s, identity: id)
            let centers = (0..<10).map { _ in (0..<s.dimension).map { _ in gen.nextFloat() * 4 } }
            let inputs = (1...n).map { m in
                EmbeddingInput(movieID: m, vector: centers[m % 10].map { $0 + gen.nextFloat() * 0.01 })
            }
            try await approx.upsertEmbeddings(inputs, space: s.name, identity: id)
            try await approx.analyze()
            for probe in [1, 17, 123] {
                let a = try await approx.query(space: s.name, movieID: probe, k: 10)
                let e = try await exact.query(space: s.name, movieID: probe, k: 10)
                #expect(a.map(\.movieID) == e.map(\.movieID), "\(s)")
                #expect(a.map(\.score) == e.map(\.score), "\(s)")
                let v = inputs[probe - 1].vector
                #expect(try await approx.query(space: s.name, vector: v, k: 10) == exact.query(space: s.name, vector: v, k: 10))
            }
        }
        await approx.shutdown()
        await exact.shutdown()
    }

    @Test func statementTimeoutIsATypedError() async throws {
        var config = try freshConfig()
        config.statementTimeoutMilliseconds = 300
        let store = try await PostgresVectorStore.open(configuration: config)
        try await store.upsertMovies([Movie(id: 1, title: "One")])
        // Another session holds the revision row lock, so the next write waits until statement_timeout cancels it.
        let plain = try PostgresStoreConfiguration(url: try TestPostgres.requireURL())
        var conf = PostgresConnection.Configuration(
            host: plain.host, port: plain.port, username: plain.username, password: plain.password,
            database: plain.database, tls: .disable)
        conf.options.additionalStartupParameters = [("search_path", config.schema)]
        let blocker = try await PostgresConnection.connect(configuration: conf, id: 99, logger: Logger(label: "t"))
        try await blocker.query("BEGIN", logger: Logger(label: "t"))
        try await blocker.query("SELECT value FROM store_revision FOR UPDATE", logger: Logger(label: "t"))
        await #expect(throws: PostgresStoreError.statementTimeout(milliseconds: 300)) {
            try await store.upsertMovies([Movie(id: 2, title: "Two")])
        }
        try await blocker.query("ROLLBACK", logger: Logger(label: "t"))
        try await blocker.close()
        // The store works again once the lock is gone; the timed-out write left nothing behind.
        #expect(try await store.fetchMovies(ids: [1, 2]).map(\.id) == [1])
        await store.shutdown()
    }
}

/// Start-up failures need no server: a refused connection is a typed error naming the URL without its password.
@Suite struct PostgresConnectionErrorTests {
    @Test func connectionRefusedNamesTheURLWithoutPassword() async throws {
        // A port nothing listens on: bind one, close it, use it.
        let url = "postgres://alice:s3cret-pw@127.0.0.1:\(try closedPort())/films"
        do {
            _ = try await PostgresVectorStore.open(url: url)
            Issue.record("expected a connection failure")
        } catch let error as PostgresStoreError {
            guard case .connectionFailed(let shown, let reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(shown.hasPrefix("postgres://alice:***@127.0.0.1:"))
            #expect(!error.description.contains("s3cret"))
            #expect(error.description.contains("cannot connect to postgres://alice:***@127.0.0.1:"))
            #expect(!reason.isEmpty)
        }
    }

    @Test func urlParsingAndRedaction() throws {
        let c = try PostgresStoreConfiguration(url: "postgresql://bob:p%40ss@db.example:6543/posters?schema=prod&ef_search=200")
        #expect(c.host == "db.example" && c.port == 6543 && c.username == "bob" && c.password == "p@ss")
        #expect(c.database == "posters" && c.schema == "prod" && c.efSearch == 200)
        #expect(c.redactedURL == "postgres://bob:***@db.example:6543/posters?schema=prod")
        #expect(throws: PostgresStoreError.self) { try PostgresStoreConfiguration(url: "mysql://x@y/z") }
        #expect(throws: PostgresStoreError.self) { try PostgresStoreConfiguration(url: "postgres://x@y/z?schema=Bad-Name") }
    }

    func closedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                bind(fd, p, len) == 0 && getsockname(fd, p, &len) == 0
            }
        }
        guard ok else { throw TestPostgres.Missing(description: "cannot bind a port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
