import CDNNL
import PosterSimCore
import Synchronization

// Ops the VGG16 head needs beyond `Linear`:
// - `DenseLayer`: a fully-connected layer whose weights are either used in place (e.g. straight from a
//   memory-mapped safetensors file, no copy at all) or packed once at load into oneDNN's matmul layout, with the
//   same packed copy reused for every batch size. `Linear` takes a `[Float]` and may repack per row count, which
//   for VGG's 411 MB fc1 would mean several transient copies at load and one extra copy per new batch size.
// - `patches`: the rows of a k×k "valid" convolution (im2col), so a k×k conv over a map larger than k×k runs as
//   the same matmul (timm's ConvMlp on inputs larger than 224).
// - `poolRows`: averages or maxes groups of consecutive rows (timm's head global pool over those positions).

/// How a `DenseLayer` holds its weights.
public enum DenseWeightStorage: Sendable {
    /// Use the caller's memory in place (PyTorch `[out, in]` row-major). The memory must stay valid and unchanged
    /// while `owner` is alive; the layer keeps `owner` alive.
    case borrowed(owner: any Sendable)
    /// Copy the weights once into oneDNN's packed matmul layout, chosen for `expectedRows` rows.
    case packed(expectedRows: Int)
}

/// y = activation(x·Wᵀ + b) over rows of `x` (PyTorch `nn.Linear`, weight `[out, in]`), as a oneDNN matmul.
///
/// Guarantees: weights are immutable after init and exist exactly once in memory (in place or packed); one
/// primitive per row count, created on first use and cached; safe for concurrent callers, each with its own
/// `Workspace`.
public final class DenseLayer: @unchecked Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    public let activation: Activation
    /// True when the weights were packed into oneDNN's layout at load; false when used in place.
    public let isPacked: Bool
    /// The data type of the weights and of the matmul's input (its output and bias are float32); at `.int8`, s8
    /// weights and a u8 input.
    public let precision: Precision
    /// At `.int8`: u8 input = round(x · inputScale), and per output the output scale 1 / (inputScale · t[n]), where
    /// t[n] = 127 / max|w[n]| quantised the weights (oneDNN 2.x output scales, bias added in the sums' scale).
    private let quantization: (inputScale: Float, outputScales: [Float])?

    private let weightBase: UnsafeMutableRawPointer
    private let weightLayout: MemoryDescriptor
    /// Keeps the borrowed memory (or our packed copy) alive.
    private let borrowedOwner: (any Sendable)?
    private let packedStorage: TensorStorage?
    private let bias: Tensor
    private let plans = Mutex<[Int: Primitive]>([:])

    /// - Parameters:
    ///   - weights: `outFeatures × inFeatures` values, row-major. With `.borrowed` the pointer is kept;
    ///     otherwise it is only read during init.
    ///   - bias: `outFeatures` values.
    ///   - precision: `.bf16` packs the weights as bfloat16 (half the bytes; `.borrowed` float32 memory cannot be
    ///     used in place then, so it is packed too) and converts each input to bfloat16; sums stay float32. `.int8`
    ///     packs them as s8 quantised per output (a quarter of the bytes) and quantises each float32 input to u8
    ///     with `inputScale` (required then); s32 sums, float32 output.
    public init(weights: UnsafeBufferPointer<Float>, outFeatures: Int, inFeatures: Int, bias: [Float],
                activation: Activation, storage: DenseWeightStorage, precision: Precision = .fp32,
                inputScale: Float? = nil) throws(EngineError) {
        guard outFeatures >= 1, inFeatures >= 1 else { throw .invalidArgument("dense layer \(inFeatures)→\(outFeatures)") }
        if precision == .int8 {
            guard let inputScale, inputScale.isFinite, inputScale > 0 else {
                throw .invalidArgument("an int8 dense layer needs a finite positive input scale, got \(String(describing: inputScale))")
            }
        }
        guard try checkedProduct([outFeatures, inFeatures]) == weights.count, let source = weights.baseAddress else {
            throw .shapeMismatch("\(weights.count) dense weights for \(outFeatures)×\(inFeatures)")
        }
        guard bias.count == outFeatures else {
            throw .shapeMismatch("dense bias has \(bias.count) values, expected \(outFeatures)")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.activation = activation
        self.precision = precision
        // Logical matmul weights are K×N; PyTorch's [N, K] row-major memory is that matrix in `ba` order.
        var plainRaw = dnnl_memory_desc_t()
        try check(dnnl_memory_desc_init_by_tag(&plainRaw, 2, [Int64(inFeatures), Int64(outFeatures)],
                                               precision == .int8 ? dnnl_s8 : dnnl_f32, dnnl_ba),
                  "dnnl_memory_desc_init_by_tag(dense weights)")
        let plain = MemoryDescriptor(raw: plainRaw)
        var sourceBase = UnsafeMutableRawPointer(mutating: source)
        var quantisedWeights: TensorStorage?
        if precision == .int8, let inputScale {
            let (bytes, weightScales) = try DenseLayer.quantise(weights, outFeatures: outFeatures, inFeatures: inFeatures)
            quantisedWeights = bytes
            sourceBase = bytes.base
            quantization = (inputScale, weightScales.map { 1 / (inputScale * $0) })
            self.bias = try Tensor(shape: [1, outFeatures],
                                   values: (0..<outFeatures).map { bias[$0] * inputScale * weightScales[$0] })
        } else {
            quantization = nil
            self.bias = try Tensor(shape: [1, outFeatures], values: bias)
        }
        var storage = storage
        if precision != .fp32, case .borrowed = storage { storage = .packed(expectedRows: 8) }
        switch storage {
        case .borrowed(let owner):
            isPacked = false
            weightBase = sourceBase
            weightLayout = plain
            borrowedOwner = owner
            packedStorage = nil
        case .packed(let expectedRows):
            let layout = try DenseLayer.preferredWeightLayout(rows: max(expectedRows, 1), inFeatures: inFeatures,
                                                              outFeatures: outFeatures, precision: precision,
                                                              outputScales: quantization?.outputScales)
            let packed = try TensorStorage(ownedBytes: layout.byteCount)
            let engine = try Engine.shared()
            try engine.reorder(from: plain, sourceBase, to: layout, packed.base, stream: try Stream(engine: engine))
            isPacked = true
            weightBase = packed.base
            weightLayout = layout
            borrowedOwner = nil
            packedStorage = packed
        }
        withExtendedLifetime(quantisedWeights) {}  // the s8 rows were read by the packing reorder above
    }

    /// `weights` (`[out, in]` row-major) as s8 rows, each scaled by t[n] = 127 / max|w[n]|, and the t[n].
    private static func quantise(_ weights: UnsafeBufferPointer<Float>, outFeatures: Int,
                                 inFeatures: Int) throws(EngineError) -> (TensorStorage, [Float]) {
        let storage = try TensorStorage(ownedBytes: outFeatures * inFeatures)
        let bytes = storage.base.assumingMemoryBound(to: Int8.self)
        var scales = [Float](repeating: 1, count: outFeatures)
        for n in 0..<outFeatures {
            let row = UnsafeBufferPointer(rebasing: weights[(n * inFeatures)..<((n + 1) * inFeatures)])
            let largest = row.reduce(Float(0)) { max($0, abs($1)) }
            let t: Float = largest > 0 ? 127 / largest : 1
            scales[n] = t
            for k in 0..<inFeatures { bytes[n * inFeatures + k] = Int8(max(-127, min(127, (row[k] * t).rounded()))) }
        }
        return (storage, scales)
    }

    /// The weight layout oneDNN's matmul asks for (`any`) at `rows` rows.
    private static func preferredWeightLayout(rows: Int, inFeatures: Int, outFeatures: Int, precision: Precision,
                                              outputScales: [Float]?) throws(EngineError) -> MemoryDescriptor {
        var wei = dnnl_memory_desc_t()
        try check(dnnl_memory_desc_init_by_tag(&wei, 2, [Int64(inFeatures), Int64(outFeatures)],
                                               precision == .int8 ? dnnl_s8 : precision.dataType,
                                               dnnl_format_tag_any), "dnnl_memory_desc_init_by_tag(weights)")
        let pd = try matmulDescriptor(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, weights: wei,
                                      activation: .identity, precision: precision, outputScales: outputScales)
        defer { dnnl_primitive_desc_destroy(pd) }
        return MemoryDescriptor(raw: dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0).pointee)
    }

    /// A fused matmul (+ bias + activation) descriptor for `rows` rows with `weights` as the weight layout (a fixed
    /// layout or `any`), the input in `precision`'s type and the output float32, or bfloat16 with `bf16Output`.
    /// Shared with `Linear`.
    /// At `.int8` the input is u8 and `outputScales` (one per output) scale the s32 sums.
    static func matmulDescriptor(rows: Int, inFeatures: Int, outFeatures: Int, weights: dnnl_memory_desc_t,
                                 activation: Activation, precision: Precision = .fp32,
                                 bf16Output: Bool = false, outputScales: [Float]? = nil) throws(EngineError)
        -> dnnl_primitive_desc_t
    {
        var src = dnnl_memory_desc_t(), dst = dnnl_memory_desc_t(), bia = dnnl_memory_desc_t(), wei = weights
        let m = Int64(rows), k = Int64(inFeatures), n = Int64(outFeatures)
        try check(dnnl_memory_desc_init_by_tag(&src, 2, [m, k], precision.dataType, dnnl_ab),
                  "dnnl_memory_desc_init_by_tag(src)")
        try check(dnnl_memory_desc_init_by_tag(&bia, 2, [1, n], dnnl_f32, dnnl_ab), "dnnl_memory_desc_init_by_tag(bias)")
        try check(dnnl_memory_desc_init_by_tag(&dst, 2, [m, n], bf16Output ? dnnl_bf16 : dnnl_f32, dnnl_ab),
                  "dnnl_memory_desc_init_by_tag(dst)")
        var desc = dnnl_matmul_desc_t()
        try check(dnnl_matmul_desc_init(&desc, &src, &wei, &bia, &dst), "dnnl_matmul_desc_init")
        let attributes = try PrimitiveAttributes()
        if let outputScales { try attributes.setOutputScales(outputScales) }
        try attributes.setPostOps(sum: false, activation: activation)
        var pd: dnnl_primitive_desc_t?
        try check(dnnl_primitive_desc_create(&pd, &desc, attributes.raw, try Engine.shared().raw, nil),
                  "dnnl_primitive_desc_create(matmul)")
        guard let pd else { throw .dnnl(call: "dnnl_primitive_desc_create(matmul)", status: "no descriptor") }
        return pd
    }

    /// The primitive for `rows` rows, always bound to the one weight layout this layer holds.
    private func primitive(rows: Int) throws(EngineError) -> Primitive {
        if let found = plans.withLock({ $0[rows] }) { return found }
        let pd = try DenseLayer.matmulDescriptor(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                                 weights: weightLayout.raw, activation: activation, precision: precision,
                                                 outputScales: quantization?.outputScales)
        let primitive = try Primitive(descriptor: pd)
        return plans.withLock { cache in
            if let existing = cache[rows] { return existing }
            cache[rows] = primitive
            return primitive
        }
    }

    /// Applies the layer to a plain `[rows, inFeatures]` tensor (blocked inputs are made plain first; a 4-D
    /// NCHW input is read as `[N, C·H·W]`, PyTorch's `flatten(1)` order). Result: plain `[rows, outFeatures]`.
    public func callAsFunction(_ input: Tensor, workspace: Workspace) throws(EngineError) -> Tensor {
        guard let first = input.shape.first, first >= 1, input.count == first * inFeatures else {
            throw .shapeMismatch("dense layer expects [rows, \(inFeatures)], got \(input.shape)")
        }
        let rows = first
        let (source, sourceLayout) = try workspace.matrix(input, rows: rows, columns: inFeatures, precision: precision,
                                                          scale: quantization?.inputScale)
        let primitive = try primitive(rows: rows)
        let result = try workspace.makeTensor(shape: [rows, outFeatures])
        try primitive.execute(stream: workspace.stream, arguments: [
            (DNNL_ARG_SRC, sourceLayout, source.storage.base),
            (DNNL_ARG_WEIGHTS, weightLayout, weightBase),
            (DNNL_ARG_BIAS, try bias.memoryLayout(), bias.storage.base),
            (DNNL_ARG_DST, try MemoryDescriptor(plain: [rows, outFeatures]), result.storage.base),
        ], scratchpad: try workspace.scratchpad(for: primitive))
        return result
    }
}

/// The input rows of a k×k convolution with stride 1 and no padding over an NCHW map (im2col): row
/// `(n·outH + y)·outW + x` holds the window at (y, x) flattened as `c·k·k + ky·k + kx`, the order of a PyTorch
/// conv weight `[out, c, ky, kx]`. Result: plain `[N·outH·outW, C·k·k]` with outH = H − k + 1, outW = W − k + 1.
/// When the map is exactly k×k this is the flattened map itself (no copy).
public func patches(_ input: Tensor, kernel k: Int, workspace: Workspace) throws(EngineError) -> Tensor {
    guard input.shape.count == 4 else { throw .shapeMismatch("patches expect NCHW, got \(input.shape)") }
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    guard k >= 1, h >= k, w >= k else { throw .shapeMismatch("map \(h)x\(w) is smaller than the \(k)x\(k) kernel") }
    let plainInput = try workspace.plain(input)
    let (outH, outW) = (h - k + 1, w - k + 1)
    let columns = try checkedProduct([c, k, k])
    if outH == 1, outW == 1 { return try plainInput.reshaped([n, columns]) }
    let rows = try checkedProduct([n, outH, outW])
    let result = try workspace.makeTensor(shape: [rows, columns])
    let source = plainInput.storage.floats, destination = result.storage.floats
    parallelFor(rows, grain: 16) { row in
        let image = row / (outH * outW), y = (row / outW) % outH, x = row % outW
        var out = destination + row * columns
        for channel in 0..<c {
            let plane = source + (image * c + channel) * h * w
            for ky in 0..<k {
                out.update(from: plane + (y + ky) * w + x, count: k)
                out += k
            }
        }
    }
    return result
}

/// How `poolRows` reduces a group of rows.
public enum RowPooling: Sendable {
    case average
    case maximum
}

/// Reduces each group of `group` consecutive rows of a plain `[N·group, D]` tensor to one row: mean or max per
/// column. Result: plain `[N, D]`. With `group == 1` the input is returned as is.
public func poolRows(_ input: Tensor, group: Int, _ pooling: RowPooling,
                     workspace: Workspace) throws(EngineError) -> Tensor {
    let source = try workspace.plain(input)
    guard source.shape.count == 2, group >= 1, source.shape[0] % group == 0 else {
        throw .shapeMismatch("cannot pool \(source.shape) in groups of \(group) rows")
    }
    if group == 1 { return source }
    let (n, d) = (source.shape[0] / group, source.shape[1])
    let result = try workspace.makeTensor(shape: [n, d])
    let x = source.storage.floats, z = result.storage.floats
    parallelFor(n, grain: 1) { image in
        let first = x + image * group * d, out = z + image * d
        for j in 0..<d {
            switch pooling {
            case .average:
                var sum: Float = 0
                for r in 0..<group { sum += first[r * d + j] }
                out[j] = sum / Float(group)
            case .maximum:
                var best = first[j]
                // NaN propagates as in torch's max pooling: once seen, it stays.
                for r in 1..<group where !best.isNaN {
                    let value = first[r * d + j]
                    if value.isNaN || value > best { best = value }
                }
                out[j] = best
            }
        }
    }
    return result
}
