import CDNNL
import PosterSimCore
import Synchronization

// Kernel choice for convolutions — measured, see the table in `KernelChoice.swift`.
// Short version (AMD EPYC Zen 4, AVX-512, 2 threads, oneDNN 2.6.3 / OpenBLAS 0.3.21): oneDNN's direct
// convolution ("brgconv:avx512_core") on the activation layout it picks itself (`any`) beats im2col + sgemm
// (oneDNN or OpenBLAS) on the 3×3 and 7×7 ResNet-50 / VGG16 shapes and ties on 1×1, while the same primitive
// forced onto plain NCHW falls back to "gemm:jit" and is several times slower. So convolutions run as oneDNN
// primitives with `any` formats and that layout is kept from layer to layer (on this AVX-512 machine oneDNN picks
// channels-last `acdb` activations with Acdb64a/32a-blocked weights; on AVX2 it may pick nChw8c); only the
// network input and the final feature map are reordered. The 3×3 stride-1 layers of ResNet-50 and VGG16 run as
// Winograd where oneDNN has it (AVX-512): 1.3–2.9× faster per layer at batch 8, on nChw16c activations.

/// How a convolution computes its sums. Measured in `KernelChoice.swift`.
public enum ConvolutionAlgorithm: String, Sendable, Equatable, CaseIterable {
    /// Direct convolution: each output is the plain sum over the window, as PyTorch's CPU convolution computes it.
    case direct
    /// Winograd minimal filtering (oneDNN picks F(2×2,3×3) or F(4×4,3×3)) for 3×3 stride-1 convolutions where
    /// oneDNN has it for this CPU (AVX-512), direct otherwise. 1.8–4× fewer multiplications; the transforms round
    /// differently: a layer's outputs differ from direct by up to ~1e-5 of their magnitude, and the full-size
    /// ResNet-50 and VGG16 embeddings from PyTorch's by under 1.3e-7 of their norm, as with direct (`make parity`).
    /// Weights are laid out for one image and take 1.8–4× the direct layout's memory.
    case winograd
}

/// The memory layout a convolution reads and writes its activations in.
public enum ActivationLayout: Sendable, Equatable {
    /// Whatever oneDNN prefers for the shape (channels-last `acdb` on AVX-512 for fp32 and bf16).
    case any
    /// nChw16c (channels in blocks of 16), the layout Winograd needs: a network whose Winograd layers sit between
    /// direct ones keeps every layer in it, so no activation is reordered between layers. An input of fewer than
    /// 16 channels (an RGB image) is still read in the layout oneDNN prefers rather than padded to 16.
    case blocked16
}

/// Eval-mode batch-norm parameters (PyTorch `BatchNorm2d`: weight=γ, bias=β, running mean/var, eps).
public struct BatchNormParameters: Sendable {
    public var weight: [Float]
    public var bias: [Float]
    public var runningMean: [Float]
    public var runningVar: [Float]
    public var eps: Float

    public init(weight: [Float], bias: [Float], runningMean: [Float], runningVar: [Float], eps: Float = 1e-5) {
        self.weight = weight
        self.bias = bias
        self.runningMean = runningMean
        self.runningVar = runningVar
        self.eps = eps
    }
}

/// A 2-D convolution (PyTorch `Conv2d`, groups 1, dilation 1, zero padding) with bias and an optional fused
/// activation and residual sum, run as a oneDNN convolution primitive.
///
/// Guarantees: weights are immutable after init and already reordered to the layout the primitive wants;
/// primitives are created once per input shape and cached; `callAsFunction` is safe to call from several
/// threads at once (each with its own `Workspace`). Any input size works: a Winograd layer given a size whose
/// weight layout differs from the load-time one (oneDNN's Winograd layouts depend on the map size and cannot be
/// reordered into each other) makes that layout from `weightSource`, or from a plain copy kept when there is none.
public final class Conv2d: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelSize: (height: Int, width: Int)
    public let stride: Int
    public let padding: Int
    public let activation: Activation
    /// Whether this convolution runs as Winograd (asked for with `.winograd` and available here).
    public let usesWinograd: Bool
    /// The data type of weights, input and output (bias and sums are float32 either way).
    public var precision: Precision { geometry.precision }

    private let weightShape: [Int]
    private let bias: Tensor
    /// Weights in every layout a primitive asked for so far (normally one), first entry is the load-time one.
    private let weights: Mutex<[Tensor]>
    /// Re-reads the unfolded OIHW weights, for layouts the kept copies cannot be reordered into.
    private let weightSource: (@Sendable () throws -> [Float])?
    private let batchNorm: BatchNormParameters?
    private let plans = Mutex<[PlanKey: Plan]>([:])
    /// Map sizes oneDNN has no Winograd kernel for: they run direct, without asking oneDNN again on every call.
    private let winogradUnavailable = Mutex<Set<PlanKey>>([])

    private struct PlanKey: Hashable {
        var batch: Int, height: Int, width: Int
        var residual: Bool
        /// Winograd plans are made for one image and run image by image: oneDNN 2.6 lays Winograd weights out for
        /// one batch size and cannot re-lay them, so one batch size keeps one copy of the weights.
        var winograd = false
    }

    private typealias Plan = ConvolutionPlan

    /// What a primitive needs to know about this convolution, apart from the input size.
    private struct Geometry {
        var weightShape: [Int]
        var stride: Int, padding: Int
        var activation: Activation
        var precision: Precision
        var layout: ActivationLayout
        var inChannels: Int { weightShape[1] }
        var outChannels: Int { weightShape[0] }

        func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
            ((height + 2 * padding - weightShape[2]) / stride + 1, (width + 2 * padding - weightShape[3]) / stride + 1)
        }
    }
    private let geometry: Geometry

    /// - Parameters:
    ///   - weight: OIHW values, `outChannels × inChannels × kernelHeight × kernelWidth`.
    ///   - bias: `outChannels` values or nil.
    ///   - batchNorm: eval-mode batch norm applied after the convolution; folded into weight and bias here.
    ///   - expectedInput: a typical input height/width, used to choose the weight layout at load time.
    ///   - algorithm: `.winograd` is taken only where oneDNN implements it for this shape and CPU.
    ///   - weightSource: gives `weight` again (unfolded) when another input size needs a Winograd layout, e.g. a
    ///     read from the mapped checkpoint. Without it a Winograd layer keeps a plain copy of its weights.
    ///   - precision: `.bf16` converts the (batch-norm-folded) weights to bfloat16 once here and reads and writes
    ///     bfloat16 activations in the layout oneDNN picks, summing in float32 with a float32 bias; oneDNN has no
    ///     bf16 Winograd, so such a layer always runs direct.
    ///   - layout: the activation layout of a direct convolution (`ActivationLayout`); Winograd always uses nChw16c.
    public init(weight: [Float], weightShape: [Int], bias: [Float]?, stride: Int = 1, padding: Int = 0,
                batchNorm: BatchNormParameters? = nil, activation: Activation = .identity,
                expectedInput: (height: Int, width: Int) = (56, 56),
                algorithm: ConvolutionAlgorithm = .direct,
                weightSource: (@Sendable () throws -> [Float])? = nil,
                precision: Precision = .fp32, layout: ActivationLayout = .any) throws(EngineError) {
        guard weightShape.count == 4 else { throw .shapeMismatch("conv weight shape \(weightShape) is not OIHW") }
        try precision.requireFloat("Conv2d")
        guard stride >= 1, padding >= 0 else { throw .invalidArgument("conv stride \(stride), padding \(padding)") }
        let count = try checkedProduct(weightShape)
        guard count == weight.count else { throw .shapeMismatch("\(weight.count) conv weights for \(weightShape)") }
        let out = weightShape[0]
        if let bias, bias.count != out { throw .shapeMismatch("conv bias has \(bias.count) values, expected \(out)") }
        inChannels = weightShape[1]
        outChannels = out
        kernelSize = (weightShape[2], weightShape[3])
        self.stride = stride
        self.padding = padding
        self.activation = activation
        self.weightShape = weightShape
        let geometry = Geometry(weightShape: weightShape, stride: stride, padding: padding, activation: activation,
                                precision: precision, layout: layout)
        self.geometry = geometry
        self.weightSource = weightSource
        self.batchNorm = batchNorm

        var foldedWeight = weight
        var foldedBias = bias ?? [Float](repeating: 0, count: out)
        if let batchNorm { try Conv2d.foldBatchNorm(batchNorm, weight: &foldedWeight, bias: &foldedBias) }
        self.bias = try Tensor(shape: [out], values: foldedBias)

        // Reorder the weights now for the layout the primitive picks at a typical size, and drop the plain copy.
        let plainWeights = try Tensor(shape: weightShape, values: foldedWeight)
        weights = Mutex([plainWeights])
        let workspace = try Workspace()
        var key = PlanKey(batch: 1, height: max(expectedInput.height, kernelSize.height),
                          width: max(expectedInput.width, kernelSize.width), residual: false)
        var plan: Plan?
        if algorithm == .winograd, precision == .fp32, weightShape[2] == 3, weightShape[3] == 3, stride == 1 {
            key.winograd = true
            // oneDNN answers "unimplemented" where it has no Winograd kernel (e.g. AVX2-only CPUs, odd widths).
            plan = try? Conv2d.createPlan(key, geometry)
        }
        if plan == nil { key.winograd = false }
        usesWinograd = key.winograd
        let chosen: Plan
        if let plan { chosen = plan } else { chosen = try Conv2d.createPlan(key, geometry) }
        plans.withLock { $0[key] = chosen }
        let preferred = try weightTensor(chosen.weights, workspace: workspace)
        let keepPlain = usesWinograd && weightSource == nil
        weights.withLock { $0 = keepPlain ? [preferred, plainWeights] : [preferred] }
    }

    /// Folds eval-mode batch norm into conv weight and bias: y = γ·(conv(x) + b − μ)/√(σ²+ε) + β, so
    /// W' = W·s and b' = (b − μ)·s + β with s = γ/√(σ²+ε) per output channel (computed in Double).
    static func foldBatchNorm(_ bn: BatchNormParameters, weight: inout [Float], bias: inout [Float]) throws(EngineError) {
        let out = bias.count
        guard bn.weight.count == out, bn.bias.count == out, bn.runningMean.count == out, bn.runningVar.count == out
        else { throw .shapeMismatch("batch norm parameters do not have \(out) channels") }
        guard bn.eps >= 0 else { throw .invalidArgument("batch norm eps \(bn.eps)") }
        let perChannel = weight.count / max(out, 1)
        for o in 0..<out {
            let scale = Double(bn.weight[o]) / (Double(bn.runningVar[o]) + Double(bn.eps)).squareRoot()
            for i in (o * perChannel)..<((o + 1) * perChannel) { weight[i] = Float(Double(weight[i]) * scale) }
            bias[o] = Float((Double(bias[o]) - Double(bn.runningMean[o])) * scale + Double(bn.bias[o]))
        }
    }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        geometry.outputSize(height: height, width: width)
    }

    private func makePlan(_ key: PlanKey) throws(EngineError) -> Plan {
        if let plan = plans.withLock({ $0[key] }) { return plan }
        let plan = try Conv2d.createPlan(key, geometry)
        return plans.withLock { cache in
            if let existing = cache[key] { return existing }
            cache[key] = plan
            return plan
        }
    }

    private static func createPlan(_ key: PlanKey, _ geometry: Geometry) throws(EngineError) -> Plan {
        let output = geometry.outputSize(height: key.height, width: key.width)
        guard output.height >= 1, output.width >= 1 else {
            throw .shapeMismatch("conv input \(key.height)x\(key.width) is smaller than kernel \(geometry.weightShape[2...])")
        }
        // Direct convolutions take the activation layout oneDNN prefers (`any`) unless told otherwise; Winograd
        // needs nChw16c.
        let activations = key.winograd || geometry.layout == .blocked16 ? dnnl_nChw16c : dnnl_format_tag_any
        let sourceTag = !key.winograd && geometry.inChannels < 16 ? dnnl_format_tag_any : activations
        let type = geometry.precision.dataType
        var src = dnnl_memory_desc_t(), wei = dnnl_memory_desc_t(), bia = dnnl_memory_desc_t(), dst = dnnl_memory_desc_t()
        try check(dnnl_memory_desc_init_by_tag(&src, 4, [key.batch, geometry.inChannels, key.height, key.width].map(Int64.init),
                                               type, sourceTag), "dnnl_memory_desc_init_by_tag(src)")
        try check(dnnl_memory_desc_init_by_tag(&wei, 4, geometry.weightShape.map(Int64.init), type, dnnl_format_tag_any),
                  "dnnl_memory_desc_init_by_tag(weights)")
        try check(dnnl_memory_desc_init_by_tag(&bia, 1, [Int64(geometry.outChannels)], dnnl_f32, dnnl_a),
                  "dnnl_memory_desc_init_by_tag(bias)")
        try check(dnnl_memory_desc_init_by_tag(&dst, 4, [key.batch, geometry.outChannels, output.height, output.width].map(Int64.init),
                                               type, activations), "dnnl_memory_desc_init_by_tag(dst)")
        var desc = dnnl_convolution_desc_t()
        let strides: [Int64] = [Int64(geometry.stride), Int64(geometry.stride)]
        let pads: [Int64] = [Int64(geometry.padding), Int64(geometry.padding)]
        try check(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference,
                                                     key.winograd ? dnnl_convolution_winograd : dnnl_convolution_direct,
                                                     &src, &wei, &bia, &dst, strides, pads, pads),
                  "dnnl_convolution_forward_desc_init")
        let attributes = try PrimitiveAttributes()
        try attributes.setPostOps(sum: key.residual, activation: geometry.activation)
        return try Plan(&desc, attributes: attributes, name: "convolution")
    }

    /// The weights in `layout`, reordering (once, into owned memory) if no cached copy has it. A Winograd layout
    /// cannot be reordered into anything, so the source is a kept copy in another layout, else `weightSource`.
    private func weightTensor(_ layout: MemoryDescriptor, workspace: Workspace) throws(EngineError) -> Tensor {
        let (existing, reorderable) = weights.withLock { list in
            (list.first { (try? $0.memoryLayout()) == layout }, list.first { $0.blockedLayout?.isWinograd != true })
        }
        if let existing { return existing }
        let source: Tensor
        if let reorderable {
            source = reorderable
        } else if let weightSource {
            var values: [Float]
            do { values = try weightSource() } catch {
                throw .invalidArgument("cannot re-read the convolution's weights: \(error)")
            }
            guard values.count == weightShape.reduce(1, *) else {
                throw .shapeMismatch("re-read \(values.count) conv weights for \(weightShape)")
            }
            if let batchNorm {
                var unusedBias = [Float](repeating: 0, count: outChannels)
                try Conv2d.foldBatchNorm(batchNorm, weight: &values, bias: &unusedBias)
            }
            source = try Tensor(shape: weightShape, values: values)
        } else {
            throw .invalidArgument("conv has no weights in a layout that can be reordered")
        }
        let storage = try TensorStorage(ownedBytes: layout.byteCount)
        try workspace.engine.reorder(from: source.memoryLayout(), source.storage.base, to: layout, storage.base,
                                     stream: workspace.stream)
        let reordered = Tensor(shape: weightShape, blockedLayout: layout, storage: storage)
        weights.withLock { $0.append(reordered) }
        return reordered
    }

    /// Runs the convolution on an NCHW tensor (plain or blocked). With `residual`, computes
    /// activation(conv(x) + bias + residual), the ResNet shortcut sum fused as a oneDNN sum post-op.
    /// The result is in the primitive's preferred (usually blocked) layout.
    ///
    /// The sum post-op accumulates into the destination, so the residual is first copied there; with
    /// `overwritingResidual` (the caller no longer needs `residual`) and a residual already in the destination's
    /// layout, the result is written over the residual's own memory instead, saving that copy.
    public func callAsFunction(_ input: Tensor, residual: Tensor? = nil, overwritingResidual: Bool = false,
                               workspace: Workspace) throws(EngineError) -> Tensor {
        guard input.shape.count == 4, input.shape[1] == inChannels else {
            throw .shapeMismatch("conv expects N×\(inChannels)×H×W input, got \(input.shape)")
        }
        let batch = input.shape[0]
        if residual == nil, let plan = winogradPlan(height: input.shape[2], width: input.shape[3]) {
            return try winograd(input, plan: plan, workspace: workspace)
        }
        let key = PlanKey(batch: batch, height: input.shape[2], width: input.shape[3], residual: residual != nil)
        let plan = try makePlan(key)
        let output = outputSize(height: key.height, width: key.width)
        let outputShape = [key.batch, outChannels, output.height, output.width]
        let source = try workspace.converted(input, to: plan.source)
        let weight = try weightTensor(plan.weights, workspace: workspace)
        let result: Tensor
        if let residual {
            guard residual.shape == outputShape else {
                throw .shapeMismatch("residual \(residual.shape) does not match conv output \(outputShape)")
            }
            let residualLayout = try residual.memoryLayout()
            if overwritingResidual, residualLayout == plan.destination {
                result = residual
            } else {
                result = try workspace.makeTensor(shape: outputShape, layout: plan.destination)
                try workspace.engine.reorder(from: residualLayout, residual.storage.base, to: plan.destination,
                                             result.storage.base, stream: workspace.stream)
            }
        } else {
            result = try workspace.makeTensor(shape: outputShape, layout: plan.destination)
        }
        try plan.primitive.execute(stream: workspace.stream, arguments: [
            (DNNL_ARG_SRC, plan.source, source.storage.base),
            (DNNL_ARG_WEIGHTS, plan.weights, weight.storage.base),
            (DNNL_ARG_BIAS, try bias.memoryLayout(), bias.storage.base),
            (DNNL_ARG_DST, plan.destination, result.storage.base),
        ], scratchpad: try workspace.scratchpad(for: plan.primitive))
        return result
    }

    /// The one-image Winograd plan for this map size; nil when the layer is direct, or oneDNN has no Winograd
    /// kernel for the size (then the size runs direct, like a residual sum).
    private func winogradPlan(height: Int, width: Int) -> Plan? {
        guard usesWinograd else { return nil }
        let key = PlanKey(batch: 1, height: height, width: width, residual: false, winograd: true)
        if winogradUnavailable.withLock({ $0.contains(key) }) { return nil }
        do {
            return try makePlan(key)
        } catch {
            winogradUnavailable.withLock { _ = $0.insert(key) }
            return nil
        }
    }

    /// Winograd: the batch in nChw16c (images back to back), each image through the one-image primitive, so the
    /// weights stay in the single layout made at load and each image's result is the same as on its own.
    private func winograd(_ input: Tensor, plan: Plan, workspace: Workspace) throws(EngineError) -> Tensor {
        let batch = input.shape[0]
        let output = outputSize(height: input.shape[2], width: input.shape[3])
        let outputShape = [batch, outChannels, output.height, output.width]
        let source = try workspace.converted(input, to: MemoryDescriptor(blocked16: input.shape))
        let result = try workspace.makeTensor(shape: outputShape, layout: MemoryDescriptor(blocked16: outputShape))
        let weight = try weightTensor(plan.weights, workspace: workspace)
        let scratchpad = try workspace.scratchpad(for: plan.primitive)
        // In nChw16c the batch is the outermost dimension, so image i starts i one-image layouts in.
        let sourceStride = plan.source.byteCount, resultStride = plan.destination.byteCount
        let biasLayout = try bias.memoryLayout()
        for image in 0..<batch {
            try plan.primitive.execute(stream: workspace.stream, arguments: [
                (DNNL_ARG_SRC, plan.source, source.storage.base + image * sourceStride),
                (DNNL_ARG_WEIGHTS, plan.weights, weight.storage.base),
                (DNNL_ARG_BIAS, biasLayout, bias.storage.base),
                (DNNL_ARG_DST, plan.destination, result.storage.base + image * resultStride),
            ], scratchpad: scratchpad)
        }
        return result
    }
}

/// A convolution primitive made for one input size, with the memory layouts it was made for (shared by `Conv2d` and
/// `QuantizedConv2d`, which cache one per input size).
final class ConvolutionPlan: Sendable {
    let primitive: Primitive
    let source: MemoryDescriptor
    let weights: MemoryDescriptor
    let destination: MemoryDescriptor
    init(primitive: Primitive, source: MemoryDescriptor, weights: MemoryDescriptor, destination: MemoryDescriptor) {
        self.primitive = primitive
        self.source = source
        self.weights = weights
        self.destination = destination
    }

    /// The primitive oneDNN makes for `desc` with `attributes`, and the layouts it chose (`name` labels errors).
    convenience init(_ desc: inout dnnl_convolution_desc_t, attributes: PrimitiveAttributes, name: String)
        throws(EngineError)
    {
        var pd: dnnl_primitive_desc_t?
        try check(dnnl_primitive_desc_create(&pd, &desc, attributes.raw, try Engine.shared().raw, nil),
                  "dnnl_primitive_desc_create(\(name))")
        guard let pd else { throw .dnnl(call: "dnnl_primitive_desc_create(\(name))", status: "no descriptor") }
        let source = MemoryDescriptor(raw: dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0).pointee)
        let weights = MemoryDescriptor(raw: dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0).pointee)
        let destination = MemoryDescriptor(raw: dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0).pointee)
        self.init(primitive: try Primitive(descriptor: pd), source: source, weights: weights, destination: destination)
    }
}
