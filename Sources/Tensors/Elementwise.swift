import CDNNL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

// Element-wise and normalisation ops. Add and ReLU are our own SIMD loops (memory-bound, nothing to gain from a
// primitive); GELU and quick GELU use oneDNN's eltwise primitive (vectorised erf/exp we would otherwise have to
// write) — in the models they are fused into the preceding matmul instead. Layer norm and softmax are our own
// row loops, in the order PyTorch evaluates them.

private typealias Vector = SIMD16<Float>

/// a + b, element by element. Both must have the same shape and the same layout (blocked layouts included:
/// their zero padding stays zero). Result in that layout.
public func add(_ a: Tensor, _ b: Tensor, workspace: Workspace) throws(EngineError) -> Tensor {
    guard a.shape == b.shape else { throw .shapeMismatch("add \(a.shape) + \(b.shape)") }
    // The loop below adds float32s; bf16 operands are made float32 first.
    let a = a.isFloat32 ? a : try workspace.plain(a)
    let left = try a.memoryLayout()
    let rightTensor = try workspace.converted(b, to: left)
    let result = try workspace.makeTensor(shape: a.shape, layout: a.blockedLayout)
    let count = left.byteCount / 4
    let x = a.storage.floats, y = rightTensor.storage.floats, z = result.storage.floats
    forEachChunk(count) { start, end in
        var i = start
        while i + 16 <= end {
            let sum = UnsafeRawPointer(x + i).loadUnaligned(as: Vector.self)
                + UnsafeRawPointer(y + i).loadUnaligned(as: Vector.self)
            UnsafeMutableRawPointer(z + i).storeBytes(of: sum, as: Vector.self)
            i += 16
        }
        while i < end { z[i] = x[i] + y[i]; i += 1 }
    }
    return result
}

/// max(x, 0) element by element, in the input's layout. NaN stays NaN as in PyTorch.
public func relu(_ a: Tensor, workspace: Workspace) throws(EngineError) -> Tensor {
    let a = a.isFloat32 ? a : try workspace.plain(a)
    let layout = try a.memoryLayout()
    let result = try workspace.makeTensor(shape: a.shape, layout: a.blockedLayout)
    let count = layout.byteCount / 4
    let x = a.storage.floats, z = result.storage.floats
    forEachChunk(count) { start, end in
        var i = start
        let zero = Vector(repeating: 0)
        while i + 16 <= end {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: Vector.self)
            // v < 0 is false for NaN, so NaN passes through.
            UnsafeMutableRawPointer(z + i).storeBytes(of: v.replacing(with: zero, where: v .< zero), as: Vector.self)
            i += 16
        }
        while i < end { z[i] = x[i] < 0 ? 0 : x[i]; i += 1 }
    }
    return result
}

/// Exact GELU, x·½(1 + erf(x/√2)) (PyTorch `gelu(approximate="none")`).
public func gelu(_ a: Tensor, workspace: Workspace) throws(EngineError) -> Tensor {
    try eltwise(a, .gelu, workspace: workspace)
}

/// quick GELU, x·sigmoid(1.702·x) (transformers `QuickGELUActivation`).
public func quickGelu(_ a: Tensor, workspace: Workspace) throws(EngineError) -> Tensor {
    try eltwise(a, .quickGelu, workspace: workspace)
}

private final class EltwiseCache: Sendable {
    static let shared = EltwiseCache()
    struct Key: Hashable { var kind: Int32, alpha: Float, count: Int }
    let plans = Mutex<[Key: Primitive]>([:])
}

private func eltwise(_ a: Tensor, _ activation: Activation, workspace: Workspace) throws(EngineError) -> Tensor {
    guard let (kind, alpha) = activation.eltwise else { return a }
    let source = try workspace.plain(a)
    let layout = try MemoryDescriptor(plain: [max(source.count, 1)])
    let key = EltwiseCache.Key(kind: Int32(bitPattern: kind.rawValue), alpha: alpha, count: source.count)
    let primitive: Primitive
    if let found = EltwiseCache.shared.plans.withLock({ $0[key] }) {
        primitive = found
    } else {
        var desc = dnnl_eltwise_desc_t(), md = layout.raw
        try check(dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, kind, &md, alpha, 0),
                  "dnnl_eltwise_forward_desc_init")
        let attributes = try PrimitiveAttributes()
        var pd: dnnl_primitive_desc_t?
        try check(dnnl_primitive_desc_create(&pd, &desc, attributes.raw, try Engine.shared().raw, nil),
                  "dnnl_primitive_desc_create(eltwise)")
        primitive = try Primitive(descriptor: pd)
        EltwiseCache.shared.plans.withLock { $0[key] = primitive }
    }
    let result = try workspace.makeTensor(shape: a.shape)
    try primitive.execute(stream: workspace.stream, arguments: [
        (DNNL_ARG_SRC, layout, source.storage.base), (DNNL_ARG_DST, layout, result.storage.base),
    ], scratchpad: try workspace.scratchpad(for: primitive))
    return result
}

/// Layer normalisation over the last axis (PyTorch `nn.LayerNorm(d, eps)`): (x − mean)/√(var + eps)·γ + β with
/// the biased variance. `weight`/`bias` have `d` values.
public func layerNorm(_ a: Tensor, weight: [Float], bias: [Float], eps: Float,
                      workspace: Workspace) throws(EngineError) -> Tensor {
    let source = try workspace.plain(a)
    guard let d = source.shape.last, d > 0, weight.count == d, bias.count == d else {
        throw .shapeMismatch("layer norm over \(a.shape) with \(weight.count) weights, \(bias.count) biases")
    }
    let rows = source.count / d
    let result = try workspace.makeTensor(shape: source.shape)
    let x = source.storage.floats, z = result.storage.floats
    weight.withUnsafeBufferPointer { gamma in
        bias.withUnsafeBufferPointer { beta in
            nonisolated(unsafe) let gamma = gamma, beta = beta
            parallelFor(rows, grain: max(1, 16384 / d)) { row in
                let input = x + row * d, output = z + row * d
                // Two passes in Double: mean, then the centred sum of squares (no cancellation).
                var sum = 0.0
                for i in 0..<d { sum += Double(input[i]) }
                let mean = sum / Double(d)
                var squares = 0.0
                for i in 0..<d { let c = Double(input[i]) - mean; squares += c * c }
                let inverse = 1 / (squares / Double(d) + Double(eps)).squareRoot()
                let m = Float(mean), s = Float(inverse)
                for i in 0..<d { output[i] = (input[i] - m) * s * gamma[i] + beta[i] }
            }
        }
    }
    return result
}

/// Softmax over the last axis (PyTorch `softmax(dim=-1)`): exp(x − max) / Σ exp(x − max).
public func softmax(_ a: Tensor, workspace: Workspace) throws(EngineError) -> Tensor {
    let source = try workspace.plain(a)
    guard let d = source.shape.last, d > 0 else { throw .shapeMismatch("softmax over \(a.shape)") }
    let rows = source.count / d
    let result = try workspace.makeTensor(shape: source.shape)
    let x = source.storage.floats, z = result.storage.floats
    parallelFor(rows, grain: max(1, 16384 / d)) { row in
        softmaxRow(x + row * d, z + row * d, count: d)
    }
    return result
}

/// Softmax of `count` values from `input` into `output` (may alias).
@inline(__always)
func softmaxRow(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
    var maximum = -Float.infinity
    for i in 0..<count where input[i] > maximum { maximum = input[i] }
    var sum: Float = 0
    for i in 0..<count {
        let e = expf(input[i] - maximum)
        output[i] = e
        sum += e
    }
    for i in 0..<count { output[i] /= sum }
}

/// Splits 0..<count into one contiguous range per core when the work is large enough to pay for it.
func forEachChunk(_ count: Int, _ body: (Int, Int) -> Void) {
    let tasks = count >= 1 << 16 ? ProcessInfoCores.count : 1
    parallelFor(tasks, grain: 1) { task in
        // Chunk boundaries on multiples of 16 keep the SIMD loop aligned to the tail.
        let start = (count * task / tasks) & ~15, end = task == tasks - 1 ? count : (count * (task + 1) / tasks) & ~15
        body(start, end)
    }
}
