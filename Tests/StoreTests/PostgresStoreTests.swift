import PosterSimCore
import Foundation
import Logging
import PostgresNIO
import PostgresStore
import Store
import Synchronization
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

    /// A plain connection of its own to the test server, working in `schema` (what another process would do).
    func otherSession(schema: String) async throws -> PostgresConnection {
        let plain = try PostgresStoreConfiguration(url: try TestPostgres.requireURL())
        var conf = PostgresConnection.Configuration(
            host: plain.host, port: plain.port, username: plain.username, password: plain.password,
            database: plain.database, tls: .disable)
        conf.options.additionalStartupParameters = [("search_path", schema)]
        return try await PostgresConnection.connect(configuration: conf, id: 99, logger: Logger(label: "t"))
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
        let blocker = try await otherSession(schema: config.schema)
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

    /// A table name in `vector_space` that is not one the store makes never reaches SQL: the space reads as corrupt,
    /// and what the name tried to do is not done.
    @Test func tableNamesFromTheSchemaAreValidated() async throws {
        let config = try freshConfig()
        let store = try await PostgresVectorStore.open(configuration: config)
        try await store.upsertMovies([Movie(id: 1, title: "One")])
        try await store.registerSpace(
            VectorSpace(name: "clip", dimension: 2, metric: .cosine), identity: ModelIdentity(repo: "r", weightsSHA256: "aa"))
        await store.shutdown()
        let other = try await otherSession(schema: config.schema)
        for hostile in ["movie WHERE false) x; --", "(SELECT 1) AS x", "movie", "emb_Clip"] {
            try await other.query("UPDATE vector_space SET table_name = \(hostile)", logger: Logger(label: "t"))
            // A new instance: nothing of the space is cached yet, so everything comes from the altered row.
            let reopened = try await PostgresVectorStore.open(configuration: config)
            await #expect(throws: StoreError.self, "\(hostile)") { _ = try await reopened.stats() }
            await #expect(throws: StoreError.self, "\(hostile)") {
                _ = try await reopened.query(space: "clip", vector: [1, 0], k: 1, filter: SearchFilter())
            }
            await #expect(throws: StoreError.self, "\(hostile)") { try await reopened.analyze() }
            #expect(try await reopened.movieCount() == 1)
            await reopened.shutdown()
        }
        try await other.close()
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

    /// A URL that does not parse (a space or a bare '@' in the password is what usually breaks it) is reported
    /// without its password, and so is one whose options are wrong.
    @Test func unparsableURLNeverShowsItsPassword() throws {
        for url in [
            "postgres://alice:s3cret word@db.example/films", "postgres://alice:s3cr@t@db.example:5432/films",
            "postgres://alice:s3cret@db.example:port/films", "postgres://alice:s3cret@db.example/films?sslmode=maybe",
            "postgres://alice:s3cret@db.example/films?statement_timeout=soon", "postgres ://alice:s3cret@db/films",
            "postgres://db.example/films?password=s3cret&sslmode=maybe",
        ] {
            // Some of these Foundation still parses (a space, a second '@'); the others are refused. Either way the
            // password shows nowhere.
            do {
                let parsed = try PostgresStoreConfiguration(url: url)
                #expect(!parsed.redactedURL.contains("s3cr"), "\(parsed.redactedURL)")
            } catch {
                #expect(!"\(error)".contains("s3cr"), "\(error)")
            }
            #expect(!PostgresStoreConfiguration.redact(url).contains("s3cr"), "\(PostgresStoreConfiguration.redact(url))")
        }
        // Refused by the parser itself (a space in the scheme, a port that is no number): the message still hides it.
        for url in ["postgres ://alice:s3cret@db/films", "postgres://alice:s3cret@db.example:port/films"] {
            #expect(throws: PostgresStoreError.self) { try PostgresStoreConfiguration(url: url) }
        }
        #expect(PostgresStoreConfiguration.redact("postgres ://alice:s3c ret@db/films") == "postgres ://alice:***@db/films")
        #expect(PostgresStoreConfiguration.redact("postgres://alice@db/films") == "postgres://alice@db/films")
    }

    /// Every statement has a time limit unless the URL turns it off.
    @Test func statementTimeoutHasADefault() throws {
        #expect(try PostgresStoreConfiguration(url: "postgres://u@h/d").statementTimeoutMilliseconds == 30_000)
        #expect(try PostgresStoreConfiguration(url: "postgres://u@h/d?statement_timeout=500").statementTimeoutMilliseconds == 500)
        #expect(try PostgresStoreConfiguration(url: "postgres://u@h/d?statement_timeout=0").statementTimeoutMilliseconds == 0)
        #expect(throws: PostgresStoreError.self) { try PostgresStoreConfiguration(url: "postgres://u@h/d?statement_timeout=-1") }
    }

    /// `prefer` (the default) and `require` without a root certificate do not check the certificate: towards another
    /// machine that is worth a warning at start; on loopback, and with checked modes, it is not.
    @Test func uncheckedTLSTowardsAnotherHostWarnsAtStart() async throws {
        for url in [
            "postgres://u@127.0.0.1/d", "postgres://u@localhost/d", "postgres://u@[::1]/d",
            "postgres://u@db.example/d?sslmode=verify-full", "postgres://u@db.example/d?sslmode=disable",
        ] {
            #expect(try PostgresStoreConfiguration(url: url).tlsWarning == nil, "\(url)")
        }
        for url in ["postgres://u@db.example/d", "postgres://u@10.1.2.3/d?sslmode=require", "postgres://u@127.0.0.1.example/d"] {
            #expect(try PostgresStoreConfiguration(url: url).tlsWarning?.contains("not checked") == true, "\(url)")
        }
        // Logged by open, before it connects (here to an address of TEST-NET-1 that answers nothing).
        let logged = LogRecorder()
        var config = try PostgresStoreConfiguration(url: "postgres://u:pw@192.0.2.1:5432/d")
        config.connectTimeout = .seconds(1)
        await #expect(throws: PostgresStoreError.self) {
            _ = try await PostgresVectorStore.open(configuration: config, logger: Logger(label: "t") { _ in logged })
        }
        #expect(logged.messages.contains { $0.level == .warning && $0.text.contains("192.0.2.1") && $0.text.contains("verify-full") })
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

/// Keeps what is logged through it, for tests that check a warning.
final class LogRecorder: LogHandler, Sendable {
    struct Entry: Sendable {
        let level: Logger.Level
        let text: String
    }

    private let entries = Mutex<[Entry]>([])
    var messages: [Entry] { entries.withLock { $0 } }

    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }
    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(event: LogEvent) {
        entries.withLock { $0.append(Entry(level: event.level, text: "\(event.message)")) }
    }
}
