import Foundation
import Hummingbird
import Logging
import Embedding
import PosterSimCore
import Store

/// The folder of the web page shipped in the package (`Sources/Server/Public`).
public var bundledPublicDirectory: String? {
    Bundle.module.url(forResource: "Public", withExtension: nil)?.path
}

/// Builds the PosterSim HTTP server: the API routes over `store` and `models`, the web page's static files, CORS,
/// size limits, JSON errors, request logs and Prometheus metrics, behind the connection guards (idle, head and body
/// timeouts, the connection cap, security headers, the `Host` allow-list). The `serve` command runs it with
/// `runService()` (graceful shutdown on SIGINT/SIGTERM); the tests run it on port 0.
///
/// `store` is any `VectorStore` (the SQLite file, or a server store); `models` are the models loaded once and shared
/// by every request (any subset: routes that need a missing model answer 503). `embeddingPool` replaces the one made
/// from the configuration (tests hold its slots to fill the queue). `syncSchedule` runs a catalogue sync inside the
/// server (`serve --sync-every`), one at a time, with its metrics on `/metrics`.
public func buildApplication(
    configuration: ServerConfiguration,
    store: any VectorStore,
    models: [any EmbeddingModel],
    logger: Logger = Logger(label: "postersim.server"),
    embeddingPool: EmbeddingPool? = nil,
    syncSchedule: SyncSchedule? = nil,
    onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let metrics = ServerMetrics()
    let api = API(configuration: configuration, store: store, models: models, metrics: metrics, pool: embeddingPool)
    let router = Router(context: ServerRequestContext.self)
    if !configuration.corsOrigins.isEmpty {
        router.middlewares.add(CORSOriginsMiddleware(origins: configuration.corsOrigins))
    }
    router.middlewares.add(ObservabilityMiddleware(metrics: metrics))
    router.middlewares.add(JSONErrorMiddleware(maxBodyBytes: configuration.maxBodyBytes))
    router.middlewares.add(HostAllowListMiddleware(allowList: HostAllowList(configuration.allowedHosts)))
    router.middlewares.add(QueryLimitMiddleware(maxQueryBytes: configuration.maxQueryBytes))
    router.middlewares.add(HiddenPathMiddleware())
    if let publicDirectory = configuration.publicDirectory ?? bundledPublicDirectory {
        router.middlewares.add(
            FileMiddleware(publicDirectory, searchForIndexHtml: true, logger: logger))
    }
    router.middlewares.add(
        BlockingWorkMiddleware(
            executor: api.blockingExecutor, pathPrefixes: ["/api/search/", "/posters/", "/pinecone/index/"]))
    router.middlewares.add(CancelOnDisconnectMiddleware(pathPrefixes: ["/api/search/"]))
    api.addRoutes(to: router)
    api.addPineconeRoutes(to: router)
    let host = configuration.host
    return Application(
        router: router,
        server: .guardedHTTP1(configuration),
        configuration: .init(address: .hostname(host, port: configuration.port), serverName: configuration.serverName),
        services: syncSchedule.map { [CatalogueSyncService(schedule: $0, metrics: metrics, logger: logger)] } ?? [],
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            logger.notice("PosterSim is listening", metadata: ["url": "http://\(host):\(port)/"])
            await onServerRunning(port)
        },
        logger: logger)
}
