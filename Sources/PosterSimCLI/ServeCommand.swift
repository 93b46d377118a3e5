// `postersim serve`: the HTTP API and the web page, over the store and the models loaded once.
import CommandSupport
import Models
import PosterSimCore
import ArgumentParser
import Embedding
import Foundation
import Hummingbird
import Ingest
import Logging
import ModelHub
import Server
import Store

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP API and the web page.",
        discussion: """
            Every option also reads an environment variable (the flag wins): POSTERSIM_HOST, POSTERSIM_PORT, \
            POSTERSIM_CORS_ORIGIN and POSTERSIM_ALLOWED_HOST (comma-separated), POSTERSIM_PUBLIC_DIR, POSTERSIM_MODELS, \
            TMDB_IMAGE_BASE_URL, POSTERSIM_POSTER_CACHE, LOG_LEVEL. Stops gracefully on SIGINT or SIGTERM (requests in \
            flight finish).
            """)

    @Option(help: "Address to listen on (POSTERSIM_HOST; default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on, 0 for any free one (POSTERSIM_PORT; default 8080).") var port: Int?
    @Option(help: "An origin allowed to call the API from a browser, or * for any (repeatable; POSTERSIM_CORS_ORIGIN).")
    var corsOrigin: [String] = []
    @Option(help: "Serve the web page from this folder instead of the one built in (POSTERSIM_PUBLIC_DIR).")
    var publicDir: String?
    @Option(help: "Models to load, comma-separated, or none (POSTERSIM_MODELS; default all three).")
    var models: String?
    @Option(help: "TMDB image base URL for posters not in the local cache (TMDB_IMAGE_BASE_URL).") var imageBaseURL: String?
    @Option(help: "TMDB image size for posters not in the local cache.") var posterSize = "w500"
    @Option(help: "The ingest's poster cache (POSTERSIM_POSTER_CACHE; default .cache/posters).") var posterCache: String?
    @Option(help: "Largest request body, bytes.") var maxBodyBytes = 10 * 1024 * 1024
    @Option(help: "Embeddings computed at once (default: the number of cores).") var embedConcurrency: Int?
    @Option(help: "Embedding requests that may wait; beyond, 503 with Retry-After (default: twice the cores).")
    var embedQueue: Int?
    @Option(help: "Seconds a cached response stays valid.") var cacheTTL = 600
    @Option(help: """
        A name the Host header may give (repeatable; POSTERSIM_ALLOWED_HOST): NAME (any port), NAME:PORT, *.DOMAIN, \
        or * for any. Default: localhost, 127.0.0.1 and [::1], plus --host when it is a name or a single address.
        """)
    var allowedHost: [String] = []
    @Option(help: "Seconds a connection may sit without a request before it is closed; 0: never.") var idleTimeout = 60
    @Option(help: "Seconds a request's headers may take to arrive after its first byte (else 408).") var headerTimeout = 10
    @Option(help: "Seconds a request's body may take to arrive after its headers (else 408).") var bodyTimeout = 60
    @Option(help: "Connections open at once; those beyond get 503 and are closed.") var maxConnections = 1024
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (LOG_LEVEL; default info).")
    var logLevel: String?
    @Option(help: """
        Run `postersim sync` inside the server this often (e.g. 24h, 6h, 30m; one run at a time, metrics on \
        /metrics). Off by default.
        """)
    var syncEvery: String?
    @Option(help: "The sync's flags, as `postersim sync` takes them, after an = sign: --sync-args=\"--prune --list popular\".")
    var syncArgs: String?
    @Option(help: ArgumentHelp(
        "A key /pinecone requests must give in Api-Key (repeatable; POSTERSIM_API_KEY, comma-separated). Without any, /pinecone answers clients on this machine only.",
        valueName: "key"))
    var apiKey: [String] = []
    @Option(help: ArgumentHelp("A file of /pinecone keys, one a line.", valueName: "file")) var apiKeyFile: String?
    @Option(help: "The origin clients reach this server at (https://host[:port]), for the host describe_index returns behind a proxy.")
    var publicURL: String?
    @Flag(help: .hidden) var benchRoutes = false
    @OptionGroup var store: StoreOptions
    @OptionGroup var location: ModelLocationOptions

    static func env(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }

    func serverConfiguration() throws -> ServerConfiguration {
        var c = ServerConfiguration()
        c.host = host ?? Self.env("POSTERSIM_HOST") ?? "127.0.0.1"
        if let port {
            c.port = port
        } else if let text = Self.env("POSTERSIM_PORT") {
            guard let value = Int(text) else { throw ValidationError("POSTERSIM_PORT is not a port number: \(text)") }
            c.port = value
        }
        guard (0...65535).contains(c.port) else { throw ValidationError("--port must be between 0 and 65535") }
        c.corsOrigins = corsOrigin.isEmpty
            ? (Self.env("POSTERSIM_CORS_ORIGIN")?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? [])
            : corsOrigin
        c.publicDirectory = publicDir ?? Self.env("POSTERSIM_PUBLIC_DIR")
        if let dir = c.publicDirectory {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--public-dir \(dir) is not a folder")
            }
        }
        c.imageBaseURL = TMDBSettings.resolve(imageBaseURL: imageBaseURL).imageBaseURL
        c.posterSize = posterSize
        c.posterCacheDirectory = posterCache ?? Self.env("POSTERSIM_POSTER_CACHE") ?? PosterCache.defaultDirectory
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
        c.maxBodyBytes = maxBodyBytes
        if let embedConcurrency { c.embedConcurrency = max(1, embedConcurrency) }
        if let embedQueue { c.embedQueueLimit = max(0, embedQueue) }
        c.cacheTTL = .seconds(max(0, cacheTTL))
        c.allowedHosts = allowedHosts(bindHost: c.host)
        guard idleTimeout >= 0 else { throw ValidationError("--idle-timeout must not be negative") }
        c.idleTimeout = idleTimeout == 0 ? nil : .seconds(idleTimeout)
        guard headerTimeout > 0, bodyTimeout > 0 else {
            throw ValidationError("--header-timeout and --body-timeout must be positive")
        }
        c.headTimeout = .seconds(headerTimeout)
        c.bodyTimeout = .seconds(bodyTimeout)
        guard maxConnections > 0 else { throw ValidationError("--max-connections must be positive") }
        c.maxConnections = maxConnections
        c.benchRoutes = benchRoutes
        c.pineconeAPIKeys = try pineconeKeys()
        if let url = publicURL {
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw ValidationError("--public-url must be an http or https URL such as https://vectors.example.org")
            }
            c.publicURL = url
        }
        return c
    }

    /// The `Host` allow-list: the flags, else POSTERSIM_ALLOWED_HOST, else the loopback names and the bound address
    /// itself when that names one interface (so `--host 192.168.1.5` answers to `192.168.1.5`, and `0.0.0.0` to no
    /// extra name: a server on every interface must name the hosts it serves).
    func allowedHosts(bindHost: String) -> [String] {
        if !allowedHost.isEmpty { return allowedHost }
        if let env = Self.env("POSTERSIM_ALLOWED_HOST") {
            return env.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        var hosts = ServerConfiguration.loopbackHosts
        if !["0.0.0.0", "::", "[::]", ""].contains(bindHost) {
            hosts.append(bindHost.contains(":") && !bindHost.hasPrefix("[") ? "[\(bindHost)]" : bindHost)
        }
        return hosts
    }

    /// The keys of `--api-key`, POSTERSIM_API_KEY and `--api-key-file`, together. (Never echoed: errors name the
    /// source, not the value.)
    func pineconeKeys() throws -> [String] {
        var keys = apiKey
        if let env = Self.env("POSTERSIM_API_KEY") {
            keys += env.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        if let file = apiKeyFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("cannot read --api-key-file \(file)")
            }
            keys += text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return keys.filter { !$0.isEmpty }
    }

    func modelNames() throws -> [ModelName] {
        let text = models ?? Self.env("POSTERSIM_MODELS") ?? "all"
        switch text.lowercased() {
        case "all": return ModelName.allCases
        case "none", "": return []
        default: return try text.split(separator: ",").map { try ModelName.parseArgument(String($0)) }
        }
    }

    func run() async throws {
        let level = logLevel ?? Self.env("LOG_LEVEL") ?? "info"
        guard let parsedLevel = Logger.Level(rawValue: level.lowercased()) else {
            throw ValidationError("unknown log level '\(level)'")
        }
        var logger = Logger(label: "postersim.server")
        logger.logLevel = parsedLevel
        let configuration = try serverConfiguration()
        let started = ContinuousClock.now
        let store = try await store.open(indexFile: .mapAndRefresh)
        if let sqlite = store as? SQLiteVectorStore {
            switch sqlite.indexLoad {
            case .mapped:
                // The matrices are checked in the background; a damaged one is logged by the store, which then
                // answers from the database rows.
                logger.info(
                    "store opened from its index file; checking its matrices in the background",
                    metadata: ["took": "\(ContinuousClock.now - started)"])
            case .rows(let reason):
                logger.info(
                    "store loaded from its rows; writing its index file in the background",
                    metadata: ["took": "\(ContinuousClock.now - started)", "reason": "\(reason.map(String.init(describing:)) ?? "off")"])
            }
        }
        var served: [any EmbeddingModel] = []
        for name in try modelNames() {
            let started = ContinuousClock.now
            let loaded: PosterEmbeddingModel
            do {
                loaded = try location.load(name)
            } catch {
                throw ValidationError(
                    "cannot load \(name.apiName): \(error)\n(run `postersim models fetch`, point --model-dir at the files, "
                        + "or serve without it: --models with the others, or none)")
            }
            served.append(loaded)
            logger.info("model loaded", metadata: ["model": "\(name.apiName)", "load_time": "\(ContinuousClock.now - started)"])
        }
        if configuration.pineconeAPIKeys.isEmpty {
            logger.notice(
                "no API key set: /pinecone answers only clients on this machine (loopback); set --api-key, POSTERSIM_API_KEY or --api-key-file to open it to others")
        } else {
            logger.info("/pinecone requires an API key", metadata: ["keys": "\(configuration.pineconeAPIKeys.count)"])
        }
        let schedule = try syncSchedule(store: store, models: served, logger: logger)
        let app = buildApplication(
            configuration: configuration, store: store, models: served, logger: logger, syncSchedule: schedule)
        try await app.runService()
    }

    /// The in-server sync of `--sync-every`, over the served store and models (those `--sync-args --models` names).
    func syncSchedule(store: any CatalogueStore, models: [any EmbeddingModel], logger: Logger) throws -> SyncSchedule? {
        guard let syncEvery else {
            if syncArgs != nil { throw ValidationError("--sync-args goes with --sync-every") }
            return nil
        }
        guard let interval = Self.parseInterval(syncEvery) else {
            throw ValidationError("--sync-every: expected a duration such as 24h, 90m or 3600s, got '\(syncEvery)'")
        }
        let options: SyncOptions
        do {
            options = try SyncOptions.parse(Self.splitArguments(syncArgs ?? ""))
        } catch {
            throw ValidationError("--sync-args: \(SyncOptions.message(for: error))")
        }
        let wanted = Set(options.models.map(\.rawValue))
        let chosen = models.filter { wanted.contains($0.space.name) }
        guard !chosen.isEmpty else { throw ValidationError("--sync-every needs at least one of the sync's models loaded") }
        let sync = CatalogueSync(configuration: try options.configuration(), store: store, embedders: chosen, logger: logger)
        return SyncSchedule(sync: IndexFileWritingSync(sync: sync, store: store, logger: logger), interval: interval)
    }

    /// `90s`, `30m`, `24h`, `7d` (or plain seconds) as a duration of at least one second; nil otherwise.
    static func parseInterval(_ text: String) -> Duration? {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var number = text
        var unit: Int64 = 1
        if let last = text.last, let u = units[last] {
            unit = u
            number = String(text.dropLast())
        }
        guard let n = Int64(number), n > 0, n <= 366 * 86_400 / unit else { return nil }
        return .seconds(n * unit)
    }

    /// Splits a flag string on spaces, keeping quoted parts ('…' or "…") together.
    static func splitArguments(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        var quote: Character?
        var pending = false
        for c in text {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
            } else if c == "\"" || c == "'" {
                quote = c
                pending = true
            } else if c.isWhitespace {
                if pending || !current.isEmpty { out.append(current) }
                current = ""
                pending = false
            } else {
                current.append(c)
            }
        }
        if pending || !current.isEmpty { out.append(current) }
        return out
    }
}

/// The in-server sync, followed by a rewrite of a SQLite store's index file, so a restart after a sync maps the file
/// instead of decoding every row.
struct IndexFileWritingSync: CatalogueSyncing {
    let sync: CatalogueSync
    let store: any CatalogueStore
    let logger: Logger

    func syncOnce() async throws -> SyncSummary {
        let summary = try await sync.syncOnce()
        if let sqlite = store as? SQLiteVectorStore {
            do {
                try await sqlite.writeIndexFile()
            } catch {
                logger.warning("index file not written after the sync", metadata: ["error": "\(error)"])
            }
        }
        return summary
    }
}
