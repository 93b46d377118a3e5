// The gate that keeps poster decoding off the cores while a model runs.
import Foundation
@testable import Ingest
import Synchronization
import Testing

@Suite struct CoreGateTests {
    /// Counts who is inside the gate and remembers every violation of its promises.
    final class Occupancy: Sendable {
        struct State { var shared = 0, exclusive = 0, maxShared = 0, overlaps = 0 }
        let state = Mutex(State())

        func enter(exclusive: Bool) {
            state.withLock { s in
                if exclusive { s.exclusive += 1 } else { s.shared += 1 }
                s.maxShared = max(s.maxShared, s.shared)
                if s.exclusive > 1 || (s.exclusive == 1 && s.shared > 0) { s.overlaps += 1 }
            }
        }

        func leave(exclusive: Bool) {
            state.withLock { s in if exclusive { s.exclusive -= 1 } else { s.shared -= 1 } }
        }
    }

    @Test func exclusiveRunsAloneAndSharedStaysWithinWidth() async throws {
        let gate = CoreGate(width: 2)
        let occupancy = Occupancy()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<60 {
                let exclusive = index % 5 == 0
                group.addTask {
                    if exclusive {
                        try await gate.exclusive {
                            occupancy.enter(exclusive: true)
                            try await Task.sleep(for: .milliseconds(2))
                            occupancy.leave(exclusive: true)
                        }
                    } else {
                        await gate.shared {
                            occupancy.enter(exclusive: false)
                            Thread.sleep(forTimeInterval: 0.001)
                            occupancy.leave(exclusive: false)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let final = occupancy.state.withLock { $0 }
        #expect(final.overlaps == 0)
        #expect(final.maxShared <= 2)
        #expect(final.maxShared >= 1)
        #expect(final.shared == 0 && final.exclusive == 0)
    }

    /// A body that throws still gives its place back: a later exclusive request gets the gate.
    @Test func throwingBodiesRelease() async throws {
        struct Boom: Error {}
        let gate = CoreGate(width: 1)
        for _ in 0..<3 {
            await #expect(throws: Boom.self) { try await gate.shared { throw Boom() } }
            await #expect(throws: Boom.self) { try await gate.exclusive { throw Boom() } }
        }
        let value = await gate.exclusive { 42 }
        #expect(value == 42)
    }
}
