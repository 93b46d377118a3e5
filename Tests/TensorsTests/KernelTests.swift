import Foundation
import Synchronization
import Testing
@testable import Tensors

// Each op against PyTorch goldens from tools/reference/make_kernel_fixtures.py (Tests/Fixtures/kernels).
// Tolerance: max |ours − torch| ≤ 1e-5 × max(1, max |torch|) unless stated; float32 kernels with different
// summation orders differ by a few ulps of the accumulated magnitude.

private let pool = WorkspacePool()

private func tensor(_ array: FixtureArray) throws -> Tensor { try Tensor(shape: array.shape, values: array.values) }

@Suite("Convolution") struct ConvolutionTests {
    @Test(arguments: ["stem7x7s2", "conv3x3", "conv3x3s2", "conv1x1", "conv1x1s2", "fc7x7"])
    func conv(_ name: String) throws {
        let f = try KernelFixture("conv")
        let params = try f["\(name)__params"].ints
        let weight = try f["\(name)__weight"]
        let conv = try Conv2d(weight: weight.values, weightShape: weight.shape, bias: f.arrays["\(name)__bias"]?.values,
                              stride: params[0], padding: params[1], activation: params[2] == 1 ? .relu : .identity)
        let expected = try f["\(name)__y"]
        try pool.withWorkspace { ws in
            let y = try conv(tensor(f["\(name)__x"]), workspace: ws)
            #expect(y.shape == expected.shape)
            #expect(maxRelativeError(try y.toArray(), expected.values) <= 1e-5)
        }
    }

    @Test func batchNormFoldedIntoConv() throws {
        let f = try KernelFixture("conv")
        let weight = try f["bn__weight"]
        let bn = BatchNormParameters(weight: try f["bn__gamma"].values, bias: try f["bn__beta"].values,
                                     runningMean: try f["bn__mean"].values, runningVar: try f["bn__var"].values,
                                     eps: try f["bn__eps"].values[0])
        let conv = try Conv2d(weight: weight.values, weightShape: weight.shape, bias: nil, padding: 1,
                              batchNorm: bn, activation: .relu)
        try pool.withWorkspace { ws in
            let y = try conv(tensor(f["bn__x"]), workspace: ws)
            #expect(maxRelativeError(try y.toArray(), try f["bn__y"].values) <= 1e-5)
        }
    }

    /// Blocked output of one conv feeds the next; the shortcut is summed by the fused post-op.
    @Test func residualChainKeepsBlockedLayout() throws {
        let f = try KernelFixture("conv")
        let w1 = try f["residual__w1"], w2 = try f["residual__w2"]
        let conv1 = try Conv2d(weight: w1.values, weightShape: w1.shape, bias: try f["residual__b1"].values,
                               padding: 1, activation: .relu)
        let conv2 = try Conv2d(weight: w2.values, weightShape: w2.shape, bias: try f["residual__b2"].values,
                               activation: .relu)
        try pool.withWorkspace { ws in
            let x = try tensor(f["residual__x"])
            let h = try conv1(x, workspace: ws)
            let y = try conv2(h, residual: x, workspace: ws)
            #expect(maxRelativeError(try y.toArray(), try f["residual__y"].values) <= 1e-5)

            // The same sum written over a residual already in the output's layout: same values, residual's memory.
            let shortcut = try conv1(x, workspace: ws)
            let before = try shortcut.toArray()
            let copied = try conv2(h, residual: shortcut, workspace: ws)
            let inPlace = try conv2(h, residual: shortcut, overwritingResidual: true, workspace: ws)
            #expect(sharesMemory(inPlace, shortcut))
            #expect(!sharesMemory(copied, shortcut))
            #expect(try inPlace.toArray() == copied.toArray())
            #expect(try shortcut.toArray() != before)
        }
    }

    /// Winograd against a float64 convolution computed here: a 32→32 3×3 layer on a batch of two 20×20 maps. Where
    /// the CPU has oneDNN's Winograd (AVX-512) the layer must take it; elsewhere it falls back to direct. Either way
    /// each output is within 1e-5 of the largest, and a batch equals its images one at a time bit for bit.
    @Test(arguments: [ConvolutionAlgorithm.winograd, .direct])
    func winogradMatchesFloat64Convolution(_ algorithm: ConvolutionAlgorithm) throws {
        let (batch, channels, size) = (2, 32, 20)
        var values = SeededValues(seed: 42)
        func next() -> Float { values.next() }
        let weight = (0..<(channels * channels * 9)).map { _ in next() * 0.1 }
        let bias = (0..<channels).map { _ in next() }
        let input = (0..<(batch * channels * size * size)).map { _ in next() }
        let conv = try Conv2d(weight: weight, weightShape: [channels, channels, 3, 3], bias: bias, padding: 1,
                              activation: .relu, expectedInput: (size, size), algorithm: algorithm)
        #expect(conv.usesWinograd == (algorithm == .winograd && Engine.effectiveISA.hasPrefix("avx512")),
                "ISA \(Engine.effectiveISA)")

        var expected = [Float](repeating: 0, count: input.count)
        for n in 0..<batch {
            for o in 0..<channels {
                for y in 0..<size {
                    for x in 0..<size {
                        var sum = Double(bias[o])
                        for i in 0..<channels {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    let (iy, ix) = (y + ky - 1, x + kx - 1)
                                    guard iy >= 0, iy < size, ix >= 0, ix < size else { continue }
                                    sum += Double(weight[((o * channels + i) * 3 + ky) * 3 + kx])
                                        * Double(input[((n * channels + i) * size + iy) * size + ix])
                                }
                            }
                        }
                        expected[((n * channels + o) * size + y) * size + x] = Float(max(sum, 0))
                    }
                }
            }
        }
        try pool.withWorkspace { ws in
            let both = try conv(Tensor(shape: [batch, channels, size, size], values: input), workspace: ws).toArray()
            #expect(maxRelativeError(both, expected) <= 1e-5)
            let half = input.count / 2
            let first = try conv(Tensor(shape: [1, channels, size, size], values: Array(input[..<half])),
                                 workspace: ws).toArray()
            let second = try conv(Tensor(shape: [1, channels, size, size], values: Array(input[half...])),
                                  workspace: ws).toArray()
            let same = both == first + second  // compared outside #expect, which would print every value
            #expect(same, "a batch of two differs from its images one at a time")
        }
    }

    /// oneDNN lays Winograd weights out per map size and cannot reorder one such layout into another: a layer
    /// loaded for 20×20 maps must still compute other sizes, from its kept plain copy or from `weightSource`.
    @Test(arguments: [false, true])
    func winogradAtOtherSizes(withWeightSource: Bool) throws {
        let channels = 32
        var values = SeededValues(seed: 7)
        func next() -> Float { values.next() }
        let weight = (0..<(channels * channels * 9)).map { _ in next() * 0.1 }
        let bias = (0..<channels).map { _ in next() }
        let bn = BatchNormParameters(weight: (0..<channels).map { _ in 1 + next() / 2 }, bias: bias,
                                     runningMean: (0..<channels).map { _ in next() },
                                     runningVar: (0..<channels).map { _ in 1 + next() / 2 })
        let reads = Mutex(0)
        let reread: @Sendable () throws -> [Float] = {
            reads.withLock { $0 += 1 }
            return weight
        }
        let winograd = try Conv2d(weight: weight, weightShape: [channels, channels, 3, 3], bias: nil, padding: 1,
                                  batchNorm: bn, activation: .relu, expectedInput: (20, 20), algorithm: .winograd,
                                  weightSource: withWeightSource ? reread : nil)
        let direct = try Conv2d(weight: weight, weightShape: [channels, channels, 3, 3], bias: nil, padding: 1,
                                batchNorm: bn, activation: .relu, expectedInput: (20, 20))
        for size in [20, 7, 56, 13, 20] {
            let input = (0..<(2 * channels * size * size)).map { _ in next() }
            try pool.withWorkspace { ws in
                let x = try Tensor(shape: [2, channels, size, size], values: input)
                let ours = try winograd(x, workspace: ws).toArray()
                let expected = try direct(x, workspace: ws).toArray()
                #expect(maxRelativeError(ours, expected) <= 1e-5, "\(size)×\(size)")
            }
        }
        if withWeightSource, winograd.usesWinograd { #expect(reads.withLock { $0 } >= 1) }
    }

    /// Winograd is only for 3×3 stride-1 layers; the others stay direct whatever was asked.
    @Test func winogradOnlyWhereItApplies() throws {
        func conv(_ shape: [Int], stride: Int) throws -> Conv2d {
            try Conv2d(weight: [Float](repeating: 0.01, count: shape.reduce(1, *)), weightShape: shape, bias: nil,
                       stride: stride, padding: shape[2] / 2, expectedInput: (28, 28), algorithm: .winograd)
        }
        #expect(try !conv([32, 32, 3, 3], stride: 2).usesWinograd)
        #expect(try !conv([32, 32, 1, 1], stride: 1).usesWinograd)
        #expect(try !conv([32, 32, 7, 7], stride: 1).usesWinograd)
    }

    @Test func rejectsBadShapes() throws {
        let conv = try Conv2d(weight: [Float](repeating: 0.5, count: 2 * 3 * 3 * 3), weightShape: [2, 3, 3, 3], bias: nil)
        try pool.withWorkspace { ws in
            #expect(throws: EngineError.self) { try conv(try Tensor(zeros: [1, 4, 8, 8]), workspace: ws) }
            #expect(throws: EngineError.self) { try conv(try Tensor(zeros: [1, 3, 2, 2]), workspace: ws) }
        }
        #expect(throws: EngineError.self) { try Conv2d(weight: [1, 2, 3], weightShape: [1, 1, 2, 2], bias: nil) }
        #expect(throws: EngineError.self) {
            try Conv2d(weight: [1, 2, 3, 4], weightShape: [1, 1, 2, 2], bias: [1, 2])
        }
    }
}

@Suite("Pooling") struct PoolingTests {
    @Test(arguments: ["max3s2p1", "max2s2"])
    func maxPool(_ name: String) throws {
        let f = try KernelFixture("pool")
        let p = try f["\(name)__params"].ints
        let op = try MaxPool2d(kernelSize: p[0], stride: p[1], padding: p[2])
        try pool.withWorkspace { ws in
            let y = try op(tensor(f["\(name)__x"]), workspace: ws)
            #expect(y.shape == (try f["\(name)__y"].shape))
            #expect(try y.toArray() == f["\(name)__y"].values)   // max is exact
        }
    }

    /// Max pool on a conv's blocked output (the ResNet stem path).
    @Test func maxPoolOnBlockedInput() throws {
        let f = try KernelFixture("conv")
        let weight = try f["conv3x3__weight"]
        let conv = try Conv2d(weight: weight.values, weightShape: weight.shape, bias: try f["conv3x3__bias"].values,
                              padding: 1)
        let op = try MaxPool2d(kernelSize: 3, stride: 2, padding: 1)
        try pool.withWorkspace { ws in
            let c = try conv(tensor(f["conv3x3__x"]), workspace: ws)
            let viaBlocked = try op(c, workspace: ws).toArray()
            let viaPlain = try op(ws.plain(c), workspace: ws).toArray()
            #expect(viaBlocked == viaPlain)
        }
    }

    @Test(arguments: ["avg10x13to7", "avg5to7", "avg7to1", "avg7to7", "avg11x6to3x4"])
    func adaptiveAverage(_ name: String) throws {
        let f = try KernelFixture("pool")
        let size = try f["\(name)__size"].ints
        try pool.withWorkspace { ws in
            let y = try adaptiveAvgPool2d(tensor(f["\(name)__x"]), outputSize: (size[0], size[1]), workspace: ws)
            #expect(y.shape == (try f["\(name)__y"].shape))
            #expect(maxRelativeError(try y.toArray(), try f["\(name)__y"].values) <= 1e-6)
        }
    }
}

@Suite("Linear") struct LinearTests {
    @Test(arguments: [("y", Activation.identity), ("relu", .relu), ("gelu", .gelu), ("quick_gelu", .quickGelu)])
    func linear(_ output: String, _ activation: Activation) throws {
        let f = try KernelFixture("linear")
        let op = try Linear(weight: try f["linear__weight"].values, outFeatures: 12, inFeatures: 20,
                            bias: try f["linear__bias"].values, activation: activation)
        try pool.withWorkspace { ws in
            let y = try op(tensor(f["linear__x"]), workspace: ws)
            #expect(y.shape == [5, 12])
            #expect(maxRelativeError(try y.toArray(), try f["linear__\(output)"].values) <= 1e-5)
        }
    }

    @Test func linearOverLeadingAxes() throws {
        let f = try KernelFixture("linear")
        let op = try Linear(weight: try f["linear__weight"].values, outFeatures: 12, inFeatures: 20, bias: nil)
        try pool.withWorkspace { ws in
            let y = try op(tensor(f["linear3d__x"]), workspace: ws)
            #expect(y.shape == [2, 3, 12])
            #expect(maxRelativeError(try y.toArray(), try f["linear3d__y"].values) <= 1e-5)
        }
    }

    /// VGG's fc1 is a 7×7 conv on a 7×7 map: the same weights as a Linear on the flattened map agree.
    @Test func convOnFullMapEqualsLinearOnFlattened() throws {
        let f = try KernelFixture("conv")
        let weight = try f["fc7x7__weight"]
        let op = try Linear(weight: weight.values, outFeatures: 20, inFeatures: 8 * 7 * 7,
                            bias: try f["fc7x7__bias"].values, activation: .relu)
        try pool.withWorkspace { ws in
            let y = try op(tensor(f["fc7x7__x"]), workspace: ws)
            #expect(y.shape == [2, 20])
            #expect(maxRelativeError(try y.toArray(), try f["fc7x7__y"].values) <= 1e-5)
        }
    }
}

@Suite("Element-wise") struct ElementwiseTests {
    @Test func addAndRelu() throws {
        let f = try KernelFixture("elementwise")
        let a = try tensor(f["add__a"]), b = try tensor(f["add__b"]), x = try tensor(f["relu__x"])
        let sum = try pool.withWorkspace { ws in try add(a, b, workspace: ws).toArray() }
        let rectified = try pool.withWorkspace { ws in try relu(x, workspace: ws).toArray() }
        #expect(sum == (try f["add__y"].values))
        #expect(rectified == (try f["relu__y"].values))
    }

    @Test func geluVariants() throws {
        let f = try KernelFixture("elementwise")
        let x = try tensor(f["gelu__x"]), xq = try tensor(f["quick_gelu__x"])
        let exact = try pool.withWorkspace { ws in try gelu(x, workspace: ws).toArray() }
        let quick = try pool.withWorkspace { ws in try quickGelu(xq, workspace: ws).toArray() }
        #expect(maxRelativeError(exact, try f["gelu__y"].values) <= 1e-6)
        #expect(maxRelativeError(quick, try f["quick_gelu__y"].values) <= 1e-6)
    }

    @Test func layerNormAndSoftmax() throws {
        let f = try KernelFixture("elementwise")
        try pool.withWorkspace { ws in
            let ln = try layerNorm(tensor(f["layer_norm__x"]), weight: try f["layer_norm__weight"].values,
                                   bias: try f["layer_norm__bias"].values, eps: 1e-5, workspace: ws)
            #expect(maxRelativeError(try ln.toArray(), try f["layer_norm__y"].values) <= 1e-6)
            let sm = try softmax(tensor(f["softmax__x"]), workspace: ws)
            #expect(maxRelativeError(try sm.toArray(), try f["softmax__y"].values) <= 1e-6)
        }
    }

    @Test func shapeErrors() throws {
        try pool.withWorkspace { ws in
            #expect(throws: EngineError.self) { try add(Tensor(zeros: [2, 3]), Tensor(zeros: [3, 2]), workspace: ws) }
            #expect(throws: EngineError.self) {
                try layerNorm(Tensor(zeros: [2, 3]), weight: [1, 1], bias: [0, 0], eps: 1e-5, workspace: ws)
            }
        }
        #expect(throws: EngineError.self) { try Tensor(shape: [2, 2], values: [1, 2, 3]) }
        #expect(throws: EngineError.self) { try Tensor(zeros: [Int.max, 4]) }
    }
}

@Suite("Attention") struct AttentionTests {
    private func model(_ f: KernelFixture) throws -> MultiHeadAttention {
        func part(_ n: String) throws -> (weight: [Float], bias: [Float]) {
            (try f["attention__\(n)_weight"].values, try f["attention__\(n)_bias"].values)
        }
        return try MultiHeadAttention(embedDim: 32, heads: try f["attention__heads"].ints[0], query: part("q"),
                                      key: part("k"), value: part("v"), output: part("o"))
    }

    @Test(arguments: [false, true])
    func attention(causal: Bool) throws {
        let f = try KernelFixture("attention")
        let attention = try model(f)
        try pool.withWorkspace { ws in
            let y = try attention(tensor(f["attention__x"]), causal: causal, workspace: ws)
            let expected = try f[causal ? "attention__y_causal" : "attention__y"]
            #expect(y.shape == expected.shape)
            #expect(maxRelativeError(try y.toArray(), expected.values) <= 1e-5)
        }
    }

    /// A batch gives the same rows as its images one at a time (batching must not mix images).
    @Test func batchEqualsOneByOne() throws {
        let f = try KernelFixture("attention")
        let attention = try model(f)
        let x = try f["attention__x"]
        let half = x.values.count / 2
        try pool.withWorkspace { ws in
            let both = try attention(tensor(x), causal: true, workspace: ws).toArray()
            let first = try attention(Tensor(shape: [1, 7, 32], values: Array(x.values[..<half])), causal: true,
                                      workspace: ws).toArray()
            let second = try attention(Tensor(shape: [1, 7, 32], values: Array(x.values[half...])), causal: true,
                                       workspace: ws).toArray()
            #expect(maxRelativeError(both, first + second) <= 1e-6)
        }
    }
}

@Suite("Workspace") struct WorkspaceTests {
    /// Second run of the same shapes needs no new arena memory, and concurrent callers get correct results.
    @Test func reuseAndConcurrency() async throws {
        let f = try KernelFixture("conv")
        let weight = try f["conv3x3__weight"]
        let conv = try Conv2d(weight: weight.values, weightShape: weight.shape, bias: try f["conv3x3__bias"].values,
                              padding: 1)
        let x = try tensor(f["conv3x3__x"]), expected = try f["conv3x3__y"].values
        let ws = try Workspace()
        _ = try conv(x, workspace: ws)
        ws.reset()
        let capacity = ws.capacity
        _ = try conv(x, workspace: ws)
        #expect(ws.capacity == capacity)

        let shared = WorkspacePool()
        try await withThrowingTaskGroup(of: Float.self) { group in
            for _ in 0..<6 {
                group.addTask { try shared.withWorkspace { try maxRelativeError(conv(x, workspace: $0).toArray(), expected) } }
            }
            for try await error in group { #expect(error <= 1e-5) }
        }
    }
}

@Suite("Workspace pool and relay") struct WorkspacePoolTests {
    /// A burst of concurrent callers leaves at most `maxIdle` workspaces behind; the rest give their memory back.
    @Test func idleWorkspacesAreCapped() async throws {
        let pool = WorkspacePool(maxIdle: 2)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try pool.withWorkspaces { pair in
                        _ = try pair.0.makeTensor(shape: [1 << 18]) { $0.initialize(repeating: 1) }
                        _ = try pair.1.makeTensor(shape: [1 << 18]) { $0.initialize(repeating: 2) }
                        Thread.sleep(forTimeInterval: 0.01)  // keep the borrowers overlapping
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(pool.idleCapacity.count <= 2)
        #expect(pool.idleCapacity.bytes > 0)
        pool.releaseIdle()
        #expect(pool.idleCapacity.count == 0)
    }

    /// A relay keeps two steps' outputs alive: a chain of 4 MB steps needs ~2 × 4 MB of arena, not 10 × 4 MB, and
    /// each step still sees its input intact.
    @Test func relayHoldsTwoSteps() throws {
        let pool = WorkspacePool()
        let count = 1 << 20  // 4 MB of floats
        try pool.withWorkspaces { pair in
            var relay = WorkspaceRelay(pair)
            var x = try Tensor(shape: [count], values: [Float](repeating: 0, count: count))
            x = try relay.run(x) { ws in try ws.makeTensor(shape: [count]) { $0.initialize(repeating: 1) } }
            for step in 2...10 {
                let input = x
                x = try relay.run(input) { ws in
                    let values = try input.toArray()
                    return try ws.makeTensor(shape: [count]) { out in
                        for i in 0..<count { out[i] = values[i] + 1 }
                    }
                }
                #expect(try x.toArray()[count - 1] == Float(step))
            }
            #expect(pair.0.capacity + pair.1.capacity <= 4 * count * 4)
        }
    }
}

/// Reproducible values in [-1, 1] (a linear congruential generator), for tests that build their own layers.
private struct SeededValues {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> Float {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int(state >> 40) % 2001 - 1000) / 1000
    }
}

/// Whether two tensors are views of the same memory.
private func sharesMemory(_ a: Tensor, _ b: Tensor) -> Bool { a.storage.base == b.storage.base }
