import PosterSimCore
import Testing
@testable import Tensors

// `QuantizedConv2d` against the float32 `Conv2d` of the same weights, on seeded data shaped like a ReLU network's
// activations (non-negative). What int8 can be off by: the input's rounding (half a step of 1/inputScale per value),
// the weights' (half a step of max|w[o]|/127), the output's (half a step of 1/outputScale), all far under 1% of the
// output's range here; a bias added in the wrong scale, or scales per channel mixed up, would be off by far more.

private let pool = WorkspacePool()

private func seeded(_ count: Int, _ seed: UInt64, _ range: ClosedRange<Float>) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in range.lowerBound + (range.upperBound - range.lowerBound) * (rng.nextFloat() + 1) / 2 }
}

@Suite("Quantized convolution") struct QuantizedConvTests {
    let shape = [24, 32, 3, 3]
    var weight: [Float] { seeded(shape.reduce(1, *), 1, -0.1...0.1).enumerated().map { $1 * Float(1 + $0 / 288) } }
    var bias: [Float] { seeded(24, 2, -0.5...0.5) }
    let inputShape = [3, 32, 12, 12]
    var input: [Float] { seeded(inputShape.reduce(1, *), 3, 0...4) }

    func reference() throws -> [Float] {
        let conv = try Conv2d(weight: weight, weightShape: shape, bias: bias, stride: 1, padding: 1, activation: .relu)
        return try pool.withWorkspace { ws in try conv(Tensor(shape: inputShape, values: input), workspace: ws).toArray() }
    }

    func quantized(outputScale: Float) throws -> QuantizedConv2d {
        let weight = self.weight
        return try QuantizedConv2d(weight: weight, weightShape: shape, bias: bias, inputScale: 255 / 4,
                                   outputScale: outputScale, expectedInput: (12, 12), weightSource: { weight })
    }

    @Test func matchesFloat32WithinQuantisation() throws {
        let expected = try reference()
        let top = expected.max()!
        #expect(top > 1)
        let conv = try quantized(outputScale: 255 / top)
        let (codes, values) = try pool.withWorkspace { ws in
            let y = try conv(Tensor(shape: inputShape, values: input), workspace: ws)
            #expect(y.shape == [3, 24, 12, 12])
            return (try y.toArray(), try ws.dequantized(y, scale: conv.outputScale).toArray())
        }
        #expect(codes.allSatisfy { $0 >= 0 && $0 <= 255 && $0 == $0.rounded() })
        let worst = zip(values, expected).map { abs($0 - $1) }.max()!
        #expect(worst <= 0.01 * top, "max |int8 − fp32| = \(worst), output max \(top)")
        #expect(worst > 0, "no rounding at all: is it running int8?")
    }

    @Test func saturatesAndReadsItsOwnOutput() throws {
        let top = try reference().max()!
        let conv = try quantized(outputScale: 2 * 255 / top)  // the upper half of the outputs cannot be held
        let alone: [Float] = try pool.withWorkspace { ws in
            let first = try Tensor(shape: [1] + inputShape.dropFirst(), values: Array(input.prefix(32 * 144)))
            return try conv(first, workspace: ws).toArray()
        }
        try pool.withWorkspace { ws in
            let y = try conv(Tensor(shape: inputShape, values: input), workspace: ws)
            let codes = try y.toArray()
            #expect(codes.max() == 255)
            // Each image's codes are the same alone as in the batch (exact integer sums, fixed scales).
            #expect(Array(codes.prefix(alone.count)) == alone)
            // A u8 input (another layer's output) is read as it is: a second layer on the first's codes runs.
            let nextWeight = seeded(24 * 24 * 9, 4, -0.1...0.1)
            let next = try QuantizedConv2d(weight: nextWeight, weightShape: [24, 24, 3, 3],
                                           bias: [Float](repeating: 0, count: 24), inputScale: conv.outputScale,
                                           outputScale: 1, expectedInput: (12, 12), weightSource: { nextWeight })
            #expect(try next(y, workspace: ws).shape == [3, 24, 12, 12])
        }
    }

    @Test func refusesBadScales() {
        for scales in [(Float(0), Float(1)), (1, -1), (.nan, 1), (1, .infinity)] {
            #expect(throws: EngineError.self) {
                try QuantizedConv2d(weight: weight, weightShape: shape, bias: bias, inputScale: scales.0,
                                    outputScale: scales.1, expectedInput: (12, 12), weightSource: { [] })
            }
        }
        #expect(throws: EngineError.self) {
            try Conv2d(weight: weight, weightShape: shape, bias: bias, precision: .int8)
        }
    }
}

@Suite("Quantized dense layer") struct QuantizedDenseTests {
    /// An int8 `DenseLayer` (u8 input in a given scale, s8 weights per output) against the float32 one.
    @Test func matchesFloat32WithinQuantisation() throws {
        let (rows, inFeatures, outFeatures) = (5, 300, 40)
        let weights = seeded(outFeatures * inFeatures, 7, -0.05...0.05).enumerated().map { $1 * Float(1 + $0 / inFeatures) }
        let bias = seeded(outFeatures, 8, -1...1)
        let input = seeded(rows * inFeatures, 9, 0...3)
        func layer(_ precision: Precision) throws -> DenseLayer {
            try weights.withUnsafeBufferPointer { values in
                try DenseLayer(weights: values, outFeatures: outFeatures, inFeatures: inFeatures, bias: bias,
                               activation: .relu, storage: .packed(expectedRows: 8), precision: precision,
                               inputScale: precision == .int8 ? 255 / 3 : nil)
            }
        }
        let (expected, values) = try pool.withWorkspace { ws in
            let x = try Tensor(shape: [rows, inFeatures], values: input)
            return (try layer(.fp32)(x, workspace: ws).toArray(), try layer(.int8)(x, workspace: ws).toArray())
        }
        let top = expected.max()!
        let worst = zip(values, expected).map { abs($0 - $1) }.max()!
        #expect(top > 1 && worst > 0 && worst <= 0.01 * top, "max |int8 − fp32| = \(worst), output max \(top)")
        #expect(throws: EngineError.self) {
            try weights.withUnsafeBufferPointer { values in
                try DenseLayer(weights: values, outFeatures: outFeatures, inFeatures: inFeatures, bias: bias,
                               activation: .relu, storage: .packed(expectedRows: 8), precision: .int8)
            }
        }
    }
}
