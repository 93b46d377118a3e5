import CDNNL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The oneDNN CPU engine. One per process (`Engine.shared()`); oneDNN engines are safe to share between threads.
public final class Engine: @unchecked Sendable {
    let raw: dnnl_engine_t

    private init() throws(EngineError) {
        var engine: dnnl_engine_t?
        try check(dnnl_engine_create(&engine, dnnl_cpu, 0), "dnnl_engine_create")
        guard let engine else { throw .dnnl(call: "dnnl_engine_create", status: "no engine") }
        raw = engine
    }

    deinit { dnnl_engine_destroy(raw) }

    private static let instance: Result<Engine, EngineError> = Result { () throws(EngineError) in try Engine() }

    /// The process-wide CPU engine.
    public static func shared() throws(EngineError) -> Engine { try instance.get() }

    /// Which instruction set oneDNN dispatches to on this machine (e.g. "avx512_core_bf16").
    public static var effectiveISA: String {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_avx2: return "avx2"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        case let other: return "isa 0x\(String(other.rawValue, radix: 16))"
        }
    }

    /// Reorders `tensor` into a new owned plain tensor (used outside workspaces, e.g. by `Tensor.toArray`).
    func reorderedCopy(_ tensor: Tensor) throws(EngineError) -> Tensor {
        let plain = try MemoryDescriptor(plain: tensor.shape)
        let storage = try TensorStorage(ownedBytes: plain.byteCount)
        let stream = try Stream(engine: self)
        try reorder(from: tensor.memoryLayout(), tensor.storage.base, to: plain, storage.base, stream: stream)
        return Tensor(shape: tensor.shape, blockedLayout: nil, storage: storage)
    }

    /// Copies memory between two layouts of the same logical tensor with a oneDNN reorder primitive. With `scale`,
    /// each value is multiplied by it on the way (oneDNN output scale), rounded to nearest and saturated when the
    /// destination is an integer type: the quantisation of float32 activations to u8 and back.
    func reorder(from source: MemoryDescriptor, _ sourceBase: UnsafeMutableRawPointer,
                 to destination: MemoryDescriptor, _ destinationBase: UnsafeMutableRawPointer,
                 stream: Stream, scale: Float? = nil) throws(EngineError) {
        if source == destination, scale == nil {
            destinationBase.copyMemory(from: sourceBase, byteCount: source.byteCount)
            return
        }
        var descriptor: dnnl_primitive_desc_t?
        var src = source.raw, dst = destination.raw
        var attributes: PrimitiveAttributes?
        if let scale {
            let scaled = try PrimitiveAttributes(scratchpad: false)
            try scaled.setOutputScales([scale])
            attributes = scaled
        }
        try check(dnnl_reorder_primitive_desc_create(&descriptor, &src, raw, &dst, raw, attributes?.raw),
                  "dnnl_reorder_primitive_desc_create")
        let primitive = try Primitive(descriptor: descriptor)
        try primitive.execute(stream: stream, arguments: [
            (DNNL_ARG_FROM, source, sourceBase), (DNNL_ARG_TO, destination, destinationBase),
        ], scratchpad: nil)
    }
}

/// A oneDNN stream: in-order execution queue. Not thread-safe, so each workspace owns one.
final class Stream {
    let raw: dnnl_stream_t

    init(engine: Engine) throws(EngineError) {
        var stream: dnnl_stream_t?
        try check(dnnl_stream_create(&stream, engine.raw, dnnl_stream_default_flags.rawValue), "dnnl_stream_create")
        guard let stream else { throw .dnnl(call: "dnnl_stream_create", status: "no stream") }
        raw = stream
    }

    deinit { dnnl_stream_destroy(raw) }
}

/// A created oneDNN primitive (immutable; executing it from several threads at once is safe because every
/// primitive we create uses a user-provided scratchpad, see `PrimitiveAttributes`).
final class Primitive: @unchecked Sendable {
    let raw: dnnl_primitive_t
    /// Scratchpad the primitive needs per execution (bytes); 0 if none.
    let scratchpad: MemoryDescriptor?

    /// Takes ownership of `descriptor` (destroyed here) and creates the primitive.
    init(descriptor: dnnl_primitive_desc_t?) throws(EngineError) {
        guard let descriptor else { throw .dnnl(call: "dnnl_primitive_desc_create", status: "no descriptor") }
        defer { dnnl_primitive_desc_destroy(descriptor) }
        var primitive: dnnl_primitive_t?
        try check(dnnl_primitive_create(&primitive, descriptor), "dnnl_primitive_create")
        guard let primitive else { throw .dnnl(call: "dnnl_primitive_create", status: "no primitive") }
        raw = primitive
        if let md = dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0), md.pointee.ndims > 0 {
            scratchpad = MemoryDescriptor(raw: md.pointee)
        } else {
            scratchpad = nil
        }
    }

    deinit { dnnl_primitive_destroy(raw) }

    /// Wraps each (argument, layout, pointer) in a oneDNN memory object, runs the primitive and waits for it.
    func execute(stream: Stream, arguments: [(Int32, MemoryDescriptor, UnsafeMutableRawPointer)],
                 scratchpad scratchpadBase: UnsafeMutableRawPointer?) throws(EngineError) {
        let engine = try Engine.shared()
        var all = arguments
        if let scratchpad {
            guard let scratchpadBase else { throw .invalidArgument("primitive needs a scratchpad") }
            all.append((DNNL_ARG_SCRATCHPAD, scratchpad, scratchpadBase))
        }
        var memories: [dnnl_memory_t] = []
        memories.reserveCapacity(all.count)
        defer { for memory in memories { dnnl_memory_destroy(memory) } }
        var execArgs: [dnnl_exec_arg_t] = []
        for (argument, layout, base) in all {
            var md = layout.raw
            var memory: dnnl_memory_t?
            try check(dnnl_memory_create(&memory, &md, engine.raw, base), "dnnl_memory_create")
            guard let memory else { throw .dnnl(call: "dnnl_memory_create", status: "no memory") }
            memories.append(memory)
            execArgs.append(dnnl_exec_arg_t(arg: argument, memory: memory))
        }
        try check(dnnl_primitive_execute(raw, stream.raw, Int32(execArgs.count), execArgs), "dnnl_primitive_execute")
        try check(dnnl_stream_wait(stream.raw), "dnnl_stream_wait")
    }
}

/// Attributes every primitive gets: a user-managed scratchpad (so concurrent executions never share oneDNN's
/// global scratchpad) and optional post-ops.
final class PrimitiveAttributes {
    let raw: dnnl_primitive_attr_t
    private var postOps: dnnl_post_ops_t?

    /// - Parameter scratchpad: false for a reorder, which `Engine.reorder` runs without one (as oneDNN's library
    ///   mode does for attribute-less reorders).
    init(scratchpad: Bool = true) throws(EngineError) {
        var attr: dnnl_primitive_attr_t?
        try check(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create")
        guard let attr else { throw .dnnl(call: "dnnl_primitive_attr_create", status: "no attr") }
        raw = attr
        if scratchpad {
            try check(dnnl_primitive_attr_set_scratchpad_mode(raw, dnnl_scratchpad_mode_user),
                      "dnnl_primitive_attr_set_scratchpad_mode")
        }
    }

    /// oneDNN 2.x output scales: one value for the whole tensor, or one per output channel (dimension 1) when
    /// `scales` has more than one entry. Applied to the sums before the post-ops.
    func setOutputScales(_ scales: [Float]) throws(EngineError) {
        try check(dnnl_primitive_attr_set_output_scales(raw, Int64(scales.count), scales.count > 1 ? 1 << 1 : 0, scales),
                  "dnnl_primitive_attr_set_output_scales")
    }

    /// Appends post-ops in order: an optional sum (dst += previous dst contents) and an optional activation.
    func setPostOps(sum: Bool, activation: Activation) throws(EngineError) {
        guard sum || activation != .identity else { return }
        var ops: dnnl_post_ops_t?
        try check(dnnl_post_ops_create(&ops), "dnnl_post_ops_create")
        guard let ops else { throw .dnnl(call: "dnnl_post_ops_create", status: "no post-ops") }
        postOps = ops
        if sum { try check(dnnl_post_ops_append_sum(ops, 1), "dnnl_post_ops_append_sum") }
        if let (kind, alpha) = activation.eltwise {
            try check(dnnl_post_ops_append_eltwise(ops, 1, kind, alpha, 0), "dnnl_post_ops_append_eltwise")
        }
        try check(dnnl_primitive_attr_set_post_ops(raw, ops), "dnnl_primitive_attr_set_post_ops")
    }

    deinit {
        if let postOps { dnnl_post_ops_destroy(postOps) }
        dnnl_primitive_attr_destroy(raw)
    }
}

/// Activation fused after a convolution or linear layer (oneDNN eltwise post-op).
public enum Activation: Sendable, Equatable {
    case identity
    case relu
    /// Exact GELU, x·Φ(x) with Φ from erf (PyTorch `nn.GELU()` default, transformers "gelu").
    case gelu
    /// x·sigmoid(1.702x) (transformers "quick_gelu", used by OpenAI CLIP).
    case quickGelu

    var eltwise: (dnnl_alg_kind_t, Float)? {
        switch self {
        case .identity: return nil
        case .relu: return (dnnl_eltwise_relu, 0)
        case .gelu: return (dnnl_eltwise_gelu_erf, 0)
        // oneDNN's swish is x·sigmoid(alpha·x).
        case .quickGelu: return (dnnl_eltwise_swish, 1.702)
        }
    }
}
