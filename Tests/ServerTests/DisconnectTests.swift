// Work whose client has gone is cancelled. Synchronised on the pool's own counters, never on elapsed time.
import Dispatch
import Foundation
import Server
import Testing

extension AllServerTests {
    @Suite struct DisconnectTests {
        /// A search waiting for a slot leaves the queue as soon as its task is cancelled.
        @Test func cancelledWaiterLeavesTheQueueAtOnce() async throws {
            let pool = EmbeddingPool(maxConcurrent: 1, maxQueued: 1)
            let gate = DispatchSemaphore(value: 0)
            let running = Task { try await pool.run { gate.wait() } }
            #expect(await eventually { pool.load.running == 1 })
            let waiting = Task { try await pool.run { 2 } }
            #expect(await eventually { pool.load.queued == 1 })
            waiting.cancel()
            // The cancellation handler ran inside `cancel()`: nothing to wait for.
            #expect(pool.load.queued == 0)
            // Its place is free for the next caller.
            let next = Task { try await pool.run { 3 } }
            #expect(await eventually { pool.load.queued == 1 })
            gate.signal()
            await #expect(throws: CancellationError.self) { try await waiting.value }
            try await running.value
            #expect(try await next.value == 3)
            #expect(pool.load == (0, 0))
        }

        /// Uploads queued behind a busy pool whose clients disconnect leave the queue while the running job still runs,
        /// and a new upload is admitted in their place (instead of 503) and answered.
        @Test func abandonedUploadsLeaveTheQueue() async throws {
            let store = try await Fixtures.populatedStore(count: 3)
            let pool = EmbeddingPool(maxConcurrent: 1, maxQueued: 2)
            let gate = DispatchSemaphore(value: 0)
            let image = try Fixtures.image(Fixtures.imageFiles[0])
            let upload = Array("POST /api/search/image?model=CLIP HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(image.count)\r\n\r\n".utf8) + image
            try await withServer(store: store, embeddingPool: pool) { server in
                let busy = Task { try await pool.run { gate.wait() } }
                #expect(await eventually { pool.load.running == 1 })
                let clients = try await Fixtures.offThePool {
                    try (0..<2).map { _ in
                        let connection = try RawConnection(port: server.port)
                        try connection.send(upload)
                        return connection
                    }
                }
                #expect(await eventually { pool.load.queued == 2 })
                for client in clients { client.close() }
                let emptied = await eventually { pool.load.queued == 0 }
                #expect(emptied, "abandoned uploads still queued: \(pool.load)")
                #expect(pool.load.running == 1)
                async let reply = server.request("/api/search/image?model=CLIP", method: .POST, body: image)
                #expect(await eventually { pool.load.queued == 1 })
                gate.signal()
                try await busy.value
                let answer = try await reply
                #expect(answer.status == 200, "\(answer.text)")
                let metrics = try await server.get("/metrics").text
                #expect(metrics.contains(#"route="/api/search/image",method="POST",status="499"} 2"#), "\(metrics)")
            }
        }
    }
}
