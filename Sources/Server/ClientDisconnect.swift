import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The request context of our router: Hummingbird's basic one plus the request's connection, so a middleware can see
/// the client go away (`BasicRequestContext` drops the channel it is built from).
public struct ServerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Thrown into a request whose connection closed before it was answered (logged and counted as 499, nginx's
/// "client closed request"; nobody receives the answer).
struct ClientClosedRequest: Error {}

/// Cancels a request's work when its connection closes before the answer is ready.
///
/// Hummingbird runs a handler to its end even when the client has gone: nothing cancels its task when the channel
/// closes. So the handler runs as a child task beside a second one that waits for the channel to close (which
/// `SlowClientHandler` makes happen as soon as the client's side ends); whichever finishes first cancels the other.
/// Cancelled, a search waiting for an embedding slot leaves the queue at once (`EmbeddingPool` honours cancellation)
/// rather than occupying it until its turn comes to compute an answer nobody reads.
///
/// Only the routes given by path prefix are watched: the watch costs a task group and two child tasks per request,
/// which halved the throughput of the cached similar-movies answer and of a bare route (`make bench-server`), while
/// only work that waits (a search queued for an embedding slot) has anything to gain from being cancelled.
struct CancelOnDisconnectMiddleware: RouterMiddleware {
    typealias Context = ServerRequestContext
    let pathPrefixes: [String]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let path = request.uri.path
        guard pathPrefixes.contains(where: { path.hasPrefix($0) }) else { return try await next(request, context) }
        let channel = context.channel
        guard channel.isActive else { throw ClientClosedRequest() }
        return try await withoutActuallyEscaping(next) { next in
            // The group ends before `next` would escape this call: both children are awaited below.
            let handler = UncheckedSendable(next)
            return try await withThrowingTaskGroup(of: Response?.self) { group in
                group.addTask { try await handler.value(request, context) }
                group.addTask {
                    await ConnectionClosure.wait(for: channel)
                    return nil
                }
                defer { group.cancelAll() }
                let first = try await group.next()!
                if let response = first { return response }
                if Task.isCancelled { throw CancellationError() }
                // The connection closed first: stop the handler and wait for it to wind down.
                group.cancelAll()
                _ = try? await group.next()
                throw ClientClosedRequest()
            }
        }
    }
}

/// A closure passed across a task boundary that cannot outlive the scope it was made for.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

enum ConnectionClosure {
    /// Returns when `channel` closes, or when the waiting task is cancelled.
    static func wait(for channel: any Channel) async {
        let wakeUp = OneTimeWakeUp()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                wakeUp.arm(continuation)
                channel.closeFuture.whenComplete { _ in wakeUp.fire() }
            }
        } onCancel: {
            wakeUp.fire()
        }
    }
}

/// Resumes one continuation once, whether `fire` comes before or after `arm`.
private final class OneTimeWakeUp: Sendable {
    private let state = Mutex<(fired: Bool, continuation: CheckedContinuation<Void, Never>?)>((false, nil))

    func arm(_ continuation: CheckedContinuation<Void, Never>) {
        let fired = state.withLock { s in
            if !s.fired { s.continuation = continuation }
            return s.fired
        }
        if fired { continuation.resume() }
    }

    func fire() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
            guard !s.fired else { return nil }
            s.fired = true
            defer { s.continuation = nil }
            return s.continuation
        }
        waiter?.resume()
    }
}
