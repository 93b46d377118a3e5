import Dispatch
import Hummingbird

/// A task executor on Dispatch worker threads. Swift's cooperative pool has one thread per core and expects no job
/// to block; an exact vector scan or a file read that runs there holds a thread for its whole length, and a burst of
/// them leaves nothing to answer even `/healthz`. Tasks that prefer this executor run on Dispatch's threads instead,
/// which are allowed to block (Dispatch adds threads while others are blocked).
final class BlockingExecutor: TaskExecutor {
    private let queue = DispatchQueue(label: "postersim.blocking", qos: .userInitiated, attributes: .concurrent)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}

/// Runs the handlers of the routes that may block a thread (by path prefix) on the `BlockingExecutor`: the exact
/// scans of search requests, and the poster files read from the cache. (Similar-movies moves there only on a cache
/// miss, in its handler: a hop per cached answer cost it half its throughput in `make bench-server`.) Everything else (health,
/// metrics, cached-page files, which Hummingbird reads without blocking) stays on the cooperative pool.
struct BlockingWorkMiddleware<Context: RequestContext>: RouterMiddleware {
    let executor: BlockingExecutor
    let pathPrefixes: [String]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let path = request.uri.path
        guard pathPrefixes.contains(where: { path.hasPrefix($0) }) else { return try await next(request, context) }
        return try await withTaskExecutorPreference(executor) { try await next(request, context) }
    }
}
