// Seeded generation shared by the product (int8 calibration images, `Models/CalibrationPosters.swift`), the test
// targets and the benchmarks (which see it through TestSupport).

/// SplitMix64: a small seeded pseudo-random generator, so generated test data (images, vectors, texts, weights) is
/// the same on every run and a failure reproduces.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1), from the top 24 bits.
    public mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
}
