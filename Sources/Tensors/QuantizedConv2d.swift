import CDNNL
import PosterSimCore
import Synchronization

// int8 convolutions (issue 17, `--precision int8`, VGG16 only; measured in `KernelChoice.swift`). oneDNN 2.6's
// u8×s8 kernels with VNNI (brgconv:avx512_core_vnni here) run VGG16's 3×3 layers in about half the time of the fp32
// Winograd ones. The arithmetic, in oneDNN 2.x's terms (output scales applied to the s32 sums, bias added before):
//
//   activations  u8 = round(x · s)            one scale s per layer boundary, fixed at load (x ≥ 0 after ReLU)
//   weights      s8 = round(w[o] · t[o])      t[o] = 127 / max|w[o]|, per output channel
//   sums         acc[o] = Σ u8 · s8 + bias[o] · s_in · t[o]        (s32 sums, exact; the bias in their scale)
//   output       u8 = saturate(round(relu(acc[o] · s_out / (s_in · t[o]))))
//
// so the output is the float layer's output in the next boundary's scale, saturated at 255 / s_out (which is why
// the scales come from a calibration pass; see VGG16+Int8.swift for how they are chosen).

/// A 3×3-style convolution (PyTorch `Conv2d`, groups 1, zero padding) with bias and fused ReLU computed in int8:
/// u8 input in scale `inputScale`, s8 weights quantised per output channel at init, s32 sums, u8 output in scale
/// `outputScale` (a value v stands for v / scale). A float32 input is quantised on the way in.
///
/// Guarantees: weights are quantised once and held once, in the layout the primitive asked for (a layout another
/// input size needs is quantised again from `weightSource`); primitives are cached per input shape; each image's
/// result does not depend on the others in its batch (integer sums are exact and the scales are fixed); safe for
/// concurrent callers, each with its own `Workspace`.
public final class QuantizedConv2d: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    /// u8 = round(x · inputScale) for the float activations x this layer reads.
    public let inputScale: Float
    /// The output's u8 values are the float layer's outputs times this (saturated at 255).
    public let outputScale: Float
    /// Bytes of the s8 weights as held (oneDNN's blocked layout, padding included).
    public var weightBytes: Int { weights.withLock { $0.reduce(0) { $0 + $1.layout.byteCount } } }

    private let weightShape: [Int]
    /// The bias in the sums' scale (`bias · inputScale · t[o]`), float32 as oneDNN 2.x takes it.
    private let bias: Tensor
    /// Per output channel `outputScale / (inputScale · t[o])`.
    private let scales: [Float]
    /// Per output channel `t[o]`.
    private let weightScales: [Float]
    private let weightSource: @Sendable () throws -> [Float]
    private let weights: Mutex<[(layout: MemoryDescriptor, storage: TensorStorage)]>
    private let plans = Mutex<[PlanKey: Plan]>([:])

    private struct PlanKey: Hashable { var batch: Int, height: Int, width: Int }

    private typealias Plan = ConvolutionPlan

    /// - Parameters:
    ///   - weight: OIHW float32 values (`weightShape`), quantised here; not kept.
    ///   - inputScale, outputScale: the activation scales of the boundaries before and after this layer (> 0).
    ///   - expectedInput: a typical input size, to choose the weight layout at load.
    ///   - weightSource: gives `weight` again when another input size needs another weight layout.
    public init(weight: [Float], weightShape: [Int], bias: [Float], stride: Int = 1, padding: Int = 1,
                inputScale: Float, outputScale: Float, expectedInput: (height: Int, width: Int),
                weightSource: @escaping @Sendable () throws -> [Float]) throws(EngineError) {
        guard weightShape.count == 4, weightShape[2] == weightShape[3] else {
            throw .shapeMismatch("int8 conv weight shape \(weightShape) is not square OIHW")
        }
        guard stride >= 1, padding >= 0 else { throw .invalidArgument("conv stride \(stride), padding \(padding)") }
        guard inputScale.isFinite, inputScale > 0, outputScale.isFinite, outputScale > 0 else {
            throw .invalidArgument("int8 conv scales \(inputScale), \(outputScale) must be finite and positive")
        }
        guard try checkedProduct(weightShape) == weight.count else {
            throw .shapeMismatch("\(weight.count) conv weights for \(weightShape)")
        }
        let out = weightShape[0]
        guard bias.count == out else { throw .shapeMismatch("conv bias has \(bias.count) values, expected \(out)") }
        inChannels = weightShape[1]
        outChannels = out
        kernelSize = weightShape[2]
        self.stride = stride
        self.padding = padding
        self.inputScale = inputScale
        self.outputScale = outputScale
        self.weightShape = weightShape
        self.weightSource = weightSource
        let perChannel = weight.count / out
        let weightScales = (0..<out).map { o -> Float in
            let largest = weight[(o * perChannel)..<((o + 1) * perChannel)].reduce(Float(0)) { max($0, abs($1)) }
            return largest > 0 ? 127 / largest : 1  // an all-zero channel quantises to zeros at any scale
        }
        self.weightScales = weightScales
        scales = weightScales.map { outputScale / (inputScale * $0) }
        self.bias = try Tensor(shape: [out], values: (0..<out).map { bias[$0] * inputScale * weightScales[$0] })
        weights = Mutex([])
        let key = PlanKey(batch: 1, height: max(expectedInput.height, kernelSize),
                          width: max(expectedInput.width, kernelSize))
        let plan = try makePlan(key)
        _ = try weightStorage(plan.weights, values: weight)
    }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernelSize) / stride + 1, (width + 2 * padding - kernelSize) / stride + 1)
    }

    private func makePlan(_ key: PlanKey) throws(EngineError) -> Plan {
        if let plan = plans.withLock({ $0[key] }) { return plan }
        let output = outputSize(height: key.height, width: key.width)
        guard output.height >= 1, output.width >= 1 else {
            throw .shapeMismatch("conv input \(key.height)x\(key.width) is smaller than kernel \(kernelSize)")
        }
        var src = dnnl_memory_desc_t(), wei = dnnl_memory_desc_t(), bia = dnnl_memory_desc_t(), dst = dnnl_memory_desc_t()
        try check(dnnl_memory_desc_init_by_tag(&src, 4, [key.batch, inChannels, key.height, key.width].map(Int64.init),
                                               dnnl_u8, dnnl_format_tag_any), "dnnl_memory_desc_init_by_tag(src)")
        try check(dnnl_memory_desc_init_by_tag(&wei, 4, weightShape.map(Int64.init), dnnl_s8, dnnl_format_tag_any),
                  "dnnl_memory_desc_init_by_tag(weights)")
        try check(dnnl_memory_desc_init_by_tag(&bia, 1, [Int64(outChannels)], dnnl_f32, dnnl_a),
                  "dnnl_memory_desc_init_by_tag(bias)")
        try check(dnnl_memory_desc_init_by_tag(&dst, 4, [key.batch, outChannels, output.height, output.width].map(Int64.init),
                                               dnnl_u8, dnnl_format_tag_any), "dnnl_memory_desc_init_by_tag(dst)")
        var desc = dnnl_convolution_desc_t()
        let strides = [Int64(stride), Int64(stride)], pads = [Int64(padding), Int64(padding)]
        try check(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                                     &src, &wei, &bia, &dst, strides, pads, pads),
                  "dnnl_convolution_forward_desc_init(int8)")
        let attributes = try PrimitiveAttributes()
        try attributes.setOutputScales(scales)
        try attributes.setPostOps(sum: false, activation: .relu)
        let plan = try Plan(&desc, attributes: attributes, name: "int8 convolution")
        return plans.withLock { cache in
            if let existing = cache[key] { return existing }
            cache[key] = plan
            return plan
        }
    }

    /// The s8 weights in `layout`: held, or quantised from `values` (else from `weightSource`) and reordered once.
    private func weightStorage(_ layout: MemoryDescriptor, values: [Float]? = nil) throws(EngineError) -> TensorStorage {
        if let held = weights.withLock({ list in list.first { $0.layout == layout }?.storage }) { return held }
        var floats: [Float]
        if let values {
            floats = values
        } else {
            do { floats = try weightSource() } catch {
                throw .invalidArgument("cannot re-read the int8 convolution's weights: \(error)")
            }
            guard floats.count == weightShape.reduce(1, *) else {
                throw .shapeMismatch("re-read \(floats.count) conv weights for \(weightShape)")
            }
        }
        let plain = try MemoryDescriptor(plain: weightShape, dataType: dnnl_s8)
        let quantised = try TensorStorage(ownedBytes: plain.byteCount)
        let bytes = quantised.base.assumingMemoryBound(to: Int8.self)
        let perChannel = floats.count / outChannels
        for o in 0..<outChannels {
            let t = weightScales[o]
            for i in (o * perChannel)..<((o + 1) * perChannel) {
                bytes[i] = Int8(max(-127, min(127, (floats[i] * t).rounded())))
            }
        }
        floats = []
        let storage = try TensorStorage(ownedBytes: layout.byteCount)
        let engine = try Engine.shared()
        try engine.reorder(from: plain, quantised.base, to: layout, storage.base, stream: try Stream(engine: engine))
        return weights.withLock { list in
            if let held = list.first(where: { $0.layout == layout }) { return held.storage }
            list.append((layout, storage))
            return storage
        }
    }

    /// Runs the layer on an NCHW tensor: u8 (in `inputScale`, any layout) or float32 (quantised here). The result
    /// is u8 in the layout oneDNN picked, in `outputScale`.
    public func callAsFunction(_ input: Tensor, workspace: Workspace) throws(EngineError) -> Tensor {
        guard input.shape.count == 4, input.shape[1] == inChannels else {
            throw .shapeMismatch("conv expects N×\(inChannels)×H×W input, got \(input.shape)")
        }
        let key = PlanKey(batch: input.shape[0], height: input.shape[2], width: input.shape[3])
        let plan = try makePlan(key)
        let source: Tensor
        if input.isFloat32 {
            source = try workspace.quantized(input, to: plan.source, scale: inputScale)
        } else {
            guard input.blockedLayout?.dataType == dnnl_u8 else {
                throw .invalidArgument("int8 conv reads u8 or float32 activations")
            }
            source = try workspace.converted(input, to: plan.source)
        }
        let weight = try weightStorage(plan.weights)
        let output = outputSize(height: key.height, width: key.width)
        let result = try workspace.makeTensor(shape: [key.batch, outChannels, output.height, output.width],
                                              layout: plan.destination)
        try plan.primitive.execute(stream: workspace.stream, arguments: [
            (DNNL_ARG_SRC, plan.source, source.storage.base),
            (DNNL_ARG_WEIGHTS, plan.weights, weight.base),
            (DNNL_ARG_BIAS, try bias.memoryLayout(), bias.storage.base),
            (DNNL_ARG_DST, plan.destination, result.storage.base),
        ], scratchpad: try workspace.scratchpad(for: plan.primitive))
        return result
    }
}
