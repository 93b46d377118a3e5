import CDNNL
import PosterSimCore
import Synchronization

// Kernel choice for fully-connected layers (see `KernelChoice.swift`): oneDNN's matmul primitive with weights
// reordered once at load into the packed layout it asks for (`any`) measured faster than `dnnl_sgemm` and
// OpenBLAS `cblas_sgemm` on the shapes that dominate (CLIP 50·B×768×{768,3072}, VGG fc1 8×4096×25088 and fc2),
// and it fuses bias + activation (ReLU, exact GELU, quick GELU) as post-ops.

/// y = activation(x·Wᵀ + b) over the last axis (PyTorch `nn.Linear`, weight `[out, in]`), as a oneDNN matmul.
///
/// Guarantees: weights immutable and pre-packed once at load; primitives cached per row count, each created for the
/// packed layout already held (so the weights exist once, whatever the batch sizes), with a second packed copy only
/// if oneDNN cannot run some row count on that layout; safe for concurrent callers.
public final class Linear: Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    public let activation: Activation
    /// The data type of the weights and of the matmul's input; sums and bias are float32.
    public let precision: Precision
    /// Whether the output is bfloat16 (for a next bf16 layer that reads nothing else) rather than float32.
    public let bf16Output: Bool

    private let bias: Tensor
    private let weights: Mutex<[Tensor]>
    private let plans = Mutex<[Int: Plan]>([:])

    private final class Plan: Sendable {
        let primitive: Primitive
        let weights: MemoryDescriptor
        init(primitive: Primitive, weights: MemoryDescriptor) {
            self.primitive = primitive
            self.weights = weights
        }
    }

    /// - Parameters:
    ///   - weight: `outFeatures × inFeatures` row-major (PyTorch layout); a conv weight `[O, C, kh, kw]` applied
    ///     to a kh×kw input flattens to exactly this with `inFeatures = C·kh·kw`.
    ///   - bias: `outFeatures` values or nil.
    ///   - expectedRows: typical row count, used to pick the packed weight layout at load time.
    ///   - precision: `.bf16` packs the weights as bfloat16 once here and converts each input to bfloat16 (unless
    ///     it already is); the output is float32, so what follows (layer norm, softmax, residual sums) stays
    ///     float32 — except with `bf16Output`, for a layer whose only reader is another bf16 matmul.
    public init(weight: [Float], outFeatures: Int, inFeatures: Int, bias: [Float]?,
                activation: Activation = .identity, expectedRows: Int = 8, precision: Precision = .fp32,
                bf16Output: Bool = false) throws(EngineError) {
        guard outFeatures >= 1, inFeatures >= 1 else { throw .invalidArgument("linear \(inFeatures)→\(outFeatures)") }
        try precision.requireFloat("Linear")
        guard try checkedProduct([outFeatures, inFeatures]) == weight.count else {
            throw .shapeMismatch("\(weight.count) linear weights for \(outFeatures)×\(inFeatures)")
        }
        if let bias, bias.count != outFeatures {
            throw .shapeMismatch("linear bias has \(bias.count) values, expected \(outFeatures)")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.activation = activation
        self.precision = precision
        self.bf16Output = bf16Output && precision == .bf16
        self.bias = try Tensor(shape: [1, outFeatures], values: bias ?? [Float](repeating: 0, count: outFeatures))
        // Logical matmul weights are K×N; PyTorch's [N, K] row-major memory is that matrix in `ba` order.
        var transposed = dnnl_memory_desc_t()
        try check(dnnl_memory_desc_init_by_tag(&transposed, 2, [Int64(inFeatures), Int64(outFeatures)], dnnl_f32, dnnl_ba),
                  "dnnl_memory_desc_init_by_tag(linear weights)")
        let plain = Tensor(shape: [inFeatures, outFeatures], blockedLayout: MemoryDescriptor(raw: transposed),
                           storage: try Tensor(shape: [outFeatures, inFeatures], values: weight).storage)
        weights = Mutex([plain])
        let workspace = try Workspace()
        let packed = try weightTensor(try plan(rows: max(expectedRows, 1)).weights, workspace: workspace)
        weights.withLock { $0 = [packed] }
    }

    private func plan(rows: Int) throws(EngineError) -> Plan {
        if let found = plans.withLock({ $0[rows] }) { return found }
        // Prefer the layout the weights are already packed in (a second packed copy of a large layer costs as much
        // memory as the layer); ask oneDNN for its preferred layout only at load or when that one is refused.
        let held = weights.withLock { $0.first?.blockedLayout }
        let pd: dnnl_primitive_desc_t
        if let held, !plans.withLock({ $0.isEmpty }), let fixed = try? primitiveDescriptor(rows: rows, weights: held),
           Self.isOptimized(fixed) {
            pd = fixed
        } else {
            pd = try primitiveDescriptor(rows: rows, weights: nil)
        }
        let weightLayout = MemoryDescriptor(raw: dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0).pointee)
        let plan = Plan(primitive: try Primitive(descriptor: pd), weights: weightLayout)
        return plans.withLock { cache in
            if let existing = cache[rows] { return existing }
            cache[rows] = plan
            return plan
        }
    }

    /// False for oneDNN's reference kernels, which accept any layout but run far slower than repacking once more;
    /// such a descriptor is destroyed here.
    private static func isOptimized(_ pd: dnnl_primitive_desc_t) -> Bool {
        var info: UnsafePointer<CChar>?
        let name = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info) == dnnl_success
            ? info.map { String(cString: $0) } ?? "" : ""
        if name.isEmpty || name.hasPrefix("ref") {
            dnnl_primitive_desc_destroy(pd)
            return false
        }
        return true
    }

    /// A matmul primitive descriptor for `rows` rows, with `weights` as the weight layout, or oneDNN's choice (`any`).
    private func primitiveDescriptor(rows: Int, weights layout: MemoryDescriptor?) throws(EngineError)
        -> dnnl_primitive_desc_t
    {
        var wei = dnnl_memory_desc_t()
        if let layout {
            wei = layout.raw
        } else {
            try check(dnnl_memory_desc_init_by_tag(&wei, 2, [Int64(inFeatures), Int64(outFeatures)],
                                                   precision.dataType, dnnl_format_tag_any),
                      "dnnl_memory_desc_init_by_tag(weights)")
        }
        return try DenseLayer.matmulDescriptor(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                               weights: wei, activation: activation, precision: precision,
                                               bf16Output: bf16Output)
    }

    private func weightTensor(_ layout: MemoryDescriptor, workspace: Workspace) throws(EngineError) -> Tensor {
        let existing = weights.withLock { list in list.first { $0.blockedLayout == layout } }
        if let existing { return existing }
        guard let source = weights.withLock({ $0.first }), let sourceLayout = source.blockedLayout else {
            throw .invalidArgument("linear has no weights")
        }
        let storage = try TensorStorage(ownedBytes: layout.byteCount)
        try workspace.engine.reorder(from: sourceLayout, source.storage.base, to: layout, storage.base,
                                     stream: workspace.stream)
        let packed = Tensor(shape: [inFeatures, outFeatures], blockedLayout: layout, storage: storage)
        weights.withLock { $0.append(packed) }
        return packed
    }

    /// Applies the layer to the last axis of `input` (any leading shape). Blocked inputs are made plain first,
    /// so an NCHW feature map flattens in PyTorch's C·H·W order.
    public func callAsFunction(_ input: Tensor, workspace: Workspace) throws(EngineError) -> Tensor {
        guard let last = input.shape.last, input.count % inFeatures == 0,
              last == inFeatures || input.shape.count == 4 else {
            throw .shapeMismatch("linear expects [..., \(inFeatures)], got \(input.shape)")
        }
        let rows = input.count / inFeatures
        let outputShape = input.shape.count == 4 ? [input.shape[0], outFeatures]
                                                 : Array(input.shape.dropLast()) + [outFeatures]
        guard outputShape.reduce(1, *) == rows * outFeatures else {
            throw .shapeMismatch("linear expects [..., \(inFeatures)], got \(input.shape)")
        }
        let (source, sourceLayout) = try workspace.matrix(input, rows: rows, columns: inFeatures, precision: precision)
        let plan = try plan(rows: rows)
        let weight = try weightTensor(plan.weights, workspace: workspace)
        let resultLayout = try MemoryDescriptor(plain: outputShape, dataType: bf16Output ? dnnl_bf16 : dnnl_f32)
        let result = try workspace.makeTensor(shape: outputShape, layout: resultLayout)
        try plan.primitive.execute(stream: workspace.stream, arguments: [
            (DNNL_ARG_SRC, sourceLayout, source.storage.base),
            (DNNL_ARG_WEIGHTS, plan.weights, weight.storage.base),
            (DNNL_ARG_BIAS, try bias.memoryLayout(), bias.storage.base),
            (DNNL_ARG_DST, try MemoryDescriptor(plain: [rows, outFeatures], dataType: resultLayout.dataType),
             result.storage.base),
        ], scratchpad: try workspace.scratchpad(for: plan.primitive))
        return result
    }
}
