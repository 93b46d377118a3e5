import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Where a request stands, told by `RequestPhaseReporter` (behind the HTTP codec, where requests and responses are
/// visible as parts) to `SlowClientHandler` (in front of it, where the raw bytes and the socket's end are visible).
/// Sent as outbound user events, which flow from the reporter towards the front of the pipeline.
enum RequestPhaseEvent: Sendable {
    case headReceived
    case bodyReceived
    case responseStarted
    case responseFinished
}

/// Sits behind the HTTP codec and reports each request's phases to `SlowClientHandler`.
final class RequestPhaseReporter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: context.triggerUserOutboundEvent(RequestPhaseEvent.headReceived, promise: nil)
        case .body: break
        case .end: context.triggerUserOutboundEvent(RequestPhaseEvent.bodyReceived, promise: nil)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head: context.triggerUserOutboundEvent(RequestPhaseEvent.responseStarted, promise: nil)
        case .body: break
        case .end: context.triggerUserOutboundEvent(RequestPhaseEvent.responseFinished, promise: nil)
        }
        context.write(data, promise: promise)
    }
}

/// The first handler of every connection: cuts off clients that are too slow or gone.
///
/// - Head deadline: once the first byte of a request arrives, its whole head (request line and headers) must follow
///   within `headTimeout`; a client that never finishes its headers (slowloris) gets 408 and is disconnected. The wait
///   for that first byte is the idle timeout's business (Hummingbird's `HTTPConnectionStateHandler`).
/// - Body deadline: once the head is in, the whole body must follow within `bodyTimeout`, so a body that trickles in
///   (each byte resetting an idle timer) cannot hold the connection and its handler indefinitely: 408 and disconnect
///   (just the disconnect if the answer has already begun).
/// - Gone clients: the end of the client's input (it closed the socket) closes the connection at once, so the
///   request's work is cancelled (`CancelOnDisconnectMiddleware` watches the close) instead of running for nobody.
///   A client that only half-closes and still waits for the answer is treated the same way, as nginx and Go do.
/// - Over the connection cap (`rejectWith` set): the answer is written as soon as the connection is up, then closed.
///
/// Its 408 and 503 answers are written as raw bytes because they are sent from in front of the HTTP encoder.
final class SlowClientHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let headTimeout: TimeAmount
    private let bodyTimeout: TimeAmount
    private let rejectWith: RawResponse?
    /// Added to the 408 answers (the security headers every answer carries).
    private let headers: HTTPFields

    private enum Phase {
        /// Between requests: waiting for the first byte of the next one.
        case idle
        case readingHead
        /// The head is in; the body (possibly empty) is still arriving.
        case readingBody
        /// The request is fully read; its handler is working.
        case handling
    }

    private var phase = Phase.idle
    private var responseStarted = false
    private var responseFinished = false
    /// When the current phase must be over, and what the 408 then says. Kept as a timestamp that a per-connection
    /// check reads, instead of a timer scheduled and cancelled for every request: two timers per request cost the
    /// keep-alive routes about a quarter of their throughput in `make bench-server`.
    private var deadline: NIODeadline?
    private var deadlineMessage = ""
    /// The check, armed while a deadline is set; it fires every `checkInterval`, so a deadline is enforced at most
    /// that much late (an eighth of the shorter timeout, between 5 ms and 1 s).
    private var checker: Scheduled<Void>?
    private let checkInterval: TimeAmount
    private var closing = false

    init(headTimeout: Duration, bodyTimeout: Duration, headers: HTTPFields, rejectWith: RawResponse? = nil) {
        self.headTimeout = TimeAmount(headTimeout)
        self.bodyTimeout = TimeAmount(bodyTimeout)
        let shorter = min(self.headTimeout.nanoseconds, self.bodyTimeout.nanoseconds)
        checkInterval = .nanoseconds(max(5_000_000, min(1_000_000_000, shorter / 8)))
        self.headers = headers
        self.rejectWith = rejectWith
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { rejectIfOverCap(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        rejectIfOverCap(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopChecking()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopChecking()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        if case .idle = phase {
            phase = .readingHead
            schedule(headTimeout, context: context, message: "the request headers did not arrive in time")
        }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            // The client closed its side: nobody will read an answer, so stop working on it.
            close(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? RequestPhaseEvent else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed()
        switch event {
        case .headReceived:
            phase = .readingBody
            responseStarted = false
            responseFinished = false
            cancelDeadline()
            schedule(bodyTimeout, context: context, message: "the request body did not arrive in time")
        case .bodyReceived:
            cancelDeadline()
            phase = responseFinished ? .idle : .handling
        case .responseStarted:
            responseStarted = true
        case .responseFinished:
            responseFinished = true
            // An answer given before the body was read (413, say) leaves the body deadline running while the rest
            // of the body is drained.
            if case .handling = phase { phase = .idle }
        }
    }

    // MARK: -

    private func rejectIfOverCap(context: ChannelHandlerContext) {
        guard let rejectWith, !closing else { return }
        closing = true
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(rejectWith.bytes(allocator: context.channel.allocator))))
            .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private func schedule(_ delay: TimeAmount, context: ChannelHandlerContext, message: String) {
        deadline = .now() + delay
        deadlineMessage = message
        armChecker(context: context)
    }

    private func armChecker(context: ChannelHandlerContext) {
        guard checker == nil, !closing else { return }
        checker = context.eventLoop.assumeIsolated().scheduleTask(in: checkInterval) { [self] in
            checker = nil
            guard let due = deadline else { return }  // no phase is timed: the next one arms the check again
            if NIODeadline.now() >= due {
                deadline = nil
                timedOut(context: context, message: deadlineMessage)
            } else {
                armChecker(context: context)
            }
        }
    }

    private func cancelDeadline() {
        deadline = nil
    }

    private func stopChecking() {
        deadline = nil
        checker?.cancel()
        checker = nil
    }

    private func timedOut(context: ChannelHandlerContext, message: String) {
        guard !closing else { return }
        guard !responseStarted else {
            close(context: context)
            return
        }
        closing = true
        let answer = RawResponse(status: .requestTimeout, message: message, headers: headers)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(answer.bytes(allocator: context.channel.allocator))))
            .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private func close(context: ChannelHandlerContext) {
        closing = true
        stopChecking()
        context.close(promise: nil)
    }
}

/// A complete HTTP/1.1 answer with a JSON error body and `Connection: close`, for the answers given below the HTTP
/// codec (timeouts, the connection cap), with the same security headers as every other answer.
struct RawResponse: Sendable {
    let status: HTTPResponse.Status
    let message: String
    var headers: HTTPFields = [:]

    func bytes(allocator: ByteBufferAllocator) -> ByteBuffer {
        let body = (try? JSONBody.encode(["error": message])) ?? ByteBuffer(string: #"{"error":"error"}"#)
        var fields = headers
        fields[.contentType] = JSONBody.contentType
        fields[.contentLength] = String(body.readableBytes)
        fields[.connection] = "close"
        var head = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n"
        for field in fields { head += "\(field.name.rawName): \(field.value)\r\n" }
        head += "\r\n"
        var buffer = allocator.buffer(capacity: head.utf8.count + body.readableBytes)
        buffer.writeString(head)
        buffer.writeImmutableBuffer(body)
        return buffer
    }
}
