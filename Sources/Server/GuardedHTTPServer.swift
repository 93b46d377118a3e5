import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Synchronization

/// The connections open now, against a cap shared by every connection of one server.
final class ConnectionLimit: Sendable {
    let maximum: Int
    private let open = Atomic<Int>(0)

    init(maximum: Int) { self.maximum = max(1, maximum) }

    var count: Int { open.load(ordering: .relaxed) }

    /// Takes a place if one is free.
    func tryOpen() -> Bool {
        var current = open.load(ordering: .relaxed)
        while current < maximum {
            let (exchanged, original) = open.compareExchange(
                expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func closed() { open.subtract(1, ordering: .acquiringAndReleasing) }
}

/// Hummingbird's HTTP/1 channel with our guards in front of it: the connection cap, the head and body deadlines, the
/// close of connections whose client has gone (`SlowClientHandler`), and the security headers on every answer.
/// Hummingbird's own cap (`availableConnectionsDelegate`) stops accepting instead, which leaves clients beyond it
/// waiting in the kernel's backlog with no answer; here they get a 503 at once.
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http1: HTTP1Channel
    let limit: ConnectionLimit
    let headTimeout: Duration
    let bodyTimeout: Duration
    let headers: HTTPFields

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let admitted = limit.tryOpen()
        if admitted {
            let limit = self.limit
            channel.closeFuture.whenComplete { _ in limit.closed() }
        }
        let reject = admitted
            ? nil
            : RawResponse(
                status: .serviceUnavailable, message: "too many connections; retry shortly",
                headers: headers + [HTTPField(name: .retryAfter, value: "1")])
        do {
            try channel.pipeline.syncOperations.addHandler(
                SlowClientHandler(headTimeout: headTimeout, bodyTimeout: bodyTimeout, headers: headers, rejectWith: reject),
                position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return http1.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with the guards of `GuardedHTTP1Channel` and the idle timeout, as `configuration` sets them.
    static func guardedHTTP1(_ configuration: ServerConfiguration) -> HTTPServerBuilder {
        let limit = ConnectionLimit(maximum: configuration.maxConnections)
        let headers = SecurityHeaders.fields(imageBaseURL: configuration.imageBaseURL)
        let http1Configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestPhaseReporter(), SecurityHeadersHandler(fields: headers)],
            idleTimeout: configuration.idleTimeout.map { TimeAmount($0) })
        return HTTPServerBuilder { responder in
            GuardedHTTP1Channel(
                http1: HTTP1Channel(responder: responder, configuration: http1Configuration), limit: limit,
                headTimeout: configuration.headTimeout, bodyTimeout: configuration.bodyTimeout, headers: headers)
        }
    }
}
