// A plain TCP client for what AsyncHTTPClient will not do: send half a request, stall, trickle, set any Host, hold
// connections open, or vanish mid-request. Blocking calls: use it through `Fixtures.offThePool`.
import Foundation
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

final class RawConnection: @unchecked Sendable {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let lock = NSLock()
    private var closed = false

    /// Connects to 127.0.0.1:`port`. A read that waits longer than `readTimeout` seconds throws: it bounds how long a
    /// test can hang on a server that never answers, and is never what a passing test relies on.
    init(port: Int, readTimeout: Int = 20) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        var timeout = timeval(tv_sec: readTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            Glibc.close(fd)
            throw TestFailure("connect: errno \(errno)")
        }
    }

    deinit { close() }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw TestFailure("send: errno \(errno)") }
            offset += sent
        }
    }

    /// Everything until the server closes the connection.
    func readToEnd() throws -> [UInt8] {
        while try fill() {}
        defer { buffer = [] }
        return buffer
    }

    /// One response: status, headers (lowercased names) and a `Content-Length` body.
    func readResponse() throws -> (status: Int, headers: [String: String], body: [UInt8]) {
        let separator = Array("\r\n\r\n".utf8)
        var end: Int?
        while true {
            if let found = buffer.firstRange(of: separator) {
                end = found.upperBound
                break
            }
            guard try fill() else { throw TestFailure("connection closed before a response head") }
        }
        let head = String(decoding: buffer[..<end!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw TestFailure("bad status line: \(head)") }
        var headers: [String: String] = [:]
        for line in lines where !line.isEmpty {
            let parts = line.split(separator: ":", maxSplits: 1)
            headers[parts[0].lowercased()] = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        while buffer.count < end! + length {
            guard try fill() else { throw TestFailure("connection closed inside a response body") }
        }
        let body = Array(buffer[end!..<(end! + length)])
        buffer.removeFirst(end! + length)
        return (status, headers, body)
    }

    /// Reads more bytes; false at the end of the stream.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            buffer += chunk[..<count]
            return true
        }
        if count == 0 || errno == ECONNRESET { return false }
        throw TestFailure(errno == EAGAIN ? "read timed out: the server neither answered nor closed" : "recv: errno \(errno)")
    }

    func close() {
        let wasOpen = lock.withLock {
            defer { closed = true }
            return !closed
        }
        if wasOpen { Glibc.close(fd) }
    }
}

/// A GET request as a browser would send it, with `Host` as given.
func rawGET(_ path: String, host: String = "127.0.0.1", close: Bool = false) -> String {
    "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n"
}

/// Waits for `condition`, checking between short sleeps; false if it still does not hold after `attempts`. The bound
/// only keeps a failing test from hanging: a passing test goes on as soon as the condition holds.
func eventually(attempts: Int = 2000, _ condition: () -> Bool) async -> Bool {
    for _ in 0..<attempts {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

extension TestServer {
    /// One request sent exactly as written (no URL normalisation on the way) on a new connection.
    func raw(_ method: String, _ target: String, host: String = "127.0.0.1", body: [UInt8] = []) async throws -> Reply {
        let port = self.port
        return try await Fixtures.offThePool {
            let connection = try RawConnection(port: port)
            var head = "\(method) \(target) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
            if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
            try connection.send(Array((head + "\r\n").utf8) + body)
            let reply = try connection.readResponse()
            var headers = HTTPHeaders()
            for (name, value) in reply.headers { headers.add(name: name, value: value) }
            return Reply(status: reply.status, headers: headers, body: reply.body)
        }
    }
}
