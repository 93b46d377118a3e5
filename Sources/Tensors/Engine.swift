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

    /// Copies memory between two layouts of the same logical tensor with a oneDNN reorder primitive.
    func reorder(from source: MemoryDescriptor, _ sourceBase: UnsafeMutableRawPointer,
                 to destination: MemoryDescriptor, _ destinationBase: UnsafeMutableRawPointer,
                 stream: Stream) throws(EngineError) {
        if source == destination {
            destinationBase.copyMemory(from: sourceBase, byteCount: source.byteCount)
            return
        }
        var descriptor: dnnl_primitive_desc_t?
        var src = source.raw, dst = destination.raw
        try check(dnnl_reorder_primitive_desc_create(&descriptor, &src, raw, &dst, raw, nil),
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

    init() throws(EngineError) {
        var attr: dnnl_primitive_attr_t?
        try check(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create")
        guard let attr else { throw .dnnl(call: "dnnl_primitive_attr_create", status: "no attr") }
        raw = attr
        try check(dnnl_primitive_attr_set_scratchpad_mode(raw, dnnl_scratchpad_mode_user),
                  "dnnl_primitive_attr_set_scratchpad_mode")
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

/// Per-caller scratch state: a oneDNN stream and a bump-allocated arena for activations and scratchpads.
///
/// Guarantees: after the first call of a given shape, running the same model again allocates no large buffers
/// (the arena keeps its high-water size and is rewound by `reset()`). A workspace must be used by one thread at
/// a time; get one per call from a `WorkspacePool`. Tensors allocated here stay memory-safe after `reset()`
/// (they keep their chunk alive) but their contents may be overwritten by later allocations.
public final class Workspace: @unchecked Sendable {
    let engine: Engine
    let stream: Stream

    private final class Chunk {
        let base: UnsafeMutableRawPointer
        let size: Int
        init(size: Int) throws(EngineError) {
            var pointer: UnsafeMutableRawPointer?
            guard posix_memalign(&pointer, 64, size) == 0, let pointer else { throw .outOfMemory(bytes: size) }
            base = pointer
            self.size = size
        }
        deinit { free(base) }
    }

    private var chunks: [Chunk] = []
    private var used = 0          // bytes used in the last chunk
    private var totalUsed = 0     // bytes handed out since the last reset, across chunks

    public init(engine: Engine? = nil) throws(EngineError) {
        if let engine { self.engine = engine } else { self.engine = try Engine.shared() }
        stream = try Stream(engine: self.engine)
    }

    /// Bytes currently reserved by the arena.
    public var capacity: Int { chunks.reduce(0) { $0 + $1.size } }

    /// Rewinds the arena. If the last run needed several chunks they are merged into one of the total size so
    /// the next run of the same shapes fits without allocating.
    public func reset() {
        if chunks.count > 1, let merged = try? Chunk(size: totalUsed) { chunks = [merged] }
        used = 0
        totalUsed = 0
    }

    func allocate(bytes: Int) throws(EngineError) -> TensorStorage {
        let rounded = (max(bytes, 1) + 63) & ~63
        if let last = chunks.last, last.size - used >= rounded {
            let storage = TensorStorage(slice: last.base + used, byteCount: bytes, owner: last)
            used += rounded
            totalUsed += rounded
            return storage
        }
        let chunk = try Chunk(size: max(rounded, 2 * (chunks.last?.size ?? 0), 1 << 20))
        chunks.append(chunk)
        used = rounded
        totalUsed += rounded
        return TensorStorage(slice: chunk.base, byteCount: bytes, owner: chunk)
    }

    /// A new tensor in the arena, in `layout` (plain when nil). Contents are unspecified.
    func makeTensor(shape: [Int], layout: MemoryDescriptor? = nil) throws(EngineError) -> Tensor {
        let plainBytes = try checkedProduct(shape) * 4
        // A oneDNN descriptor that is just row-major is recorded as plain.
        if let layout, try layout != MemoryDescriptor(plain: shape) {
            return Tensor(shape: shape, blockedLayout: layout, storage: try allocate(bytes: layout.byteCount))
        }
        return Tensor(shape: shape, blockedLayout: nil, storage: try allocate(bytes: plainBytes))
    }

    /// A new plain tensor in the arena whose values `fill` writes (all `count` of them; contents start
    /// unspecified). For model code that assembles inputs (patches, token rows) without a per-call allocation.
    public func makeTensor(shape: [Int], fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) throws -> Tensor {
        let tensor = try makeTensor(shape: shape, layout: nil)
        try fill(UnsafeMutableBufferPointer(start: tensor.storage.floats, count: tensor.count))
        return tensor
    }

    /// Scratchpad memory for one execution of `primitive`.
    func scratchpad(for primitive: Primitive) throws(EngineError) -> UnsafeMutableRawPointer? {
        guard let layout = primitive.scratchpad else { return nil }
        return try allocate(bytes: layout.byteCount).base
    }

    /// `tensor` in `layout`: the tensor itself when it already is, else a reordered copy in the arena.
    func converted(_ tensor: Tensor, to layout: MemoryDescriptor) throws(EngineError) -> Tensor {
        let current = try tensor.memoryLayout()
        if current == layout { return tensor }
        let result = try makeTensor(shape: tensor.shape, layout: layout)
        try engine.reorder(from: current, tensor.storage.base, to: layout, result.storage.base, stream: stream)
        return result
    }

    /// `tensor` as a plain row-major tensor (a no-op for plain tensors).
    public func plain(_ tensor: Tensor) throws(EngineError) -> Tensor {
        guard tensor.blockedLayout != nil else { return tensor }
        return try converted(tensor, to: MemoryDescriptor(plain: tensor.shape))
    }
}

/// A thread-safe pool of workspaces: concurrent callers each borrow their own, so shared models need no locks
/// on the hot path.
public final class WorkspacePool: Sendable {
    private let idle = Mutex<[Workspace]>([])

    public init() {}

    /// Runs `body` with a workspace no other caller is using, then resets it and returns it to the pool.
    /// Copy results out (e.g. `toArray()`) inside `body`.
    public func withWorkspace<R>(_ body: (Workspace) throws -> R) throws -> R {
        let workspace = try idle.withLock { list -> Workspace? in list.popLast() } ?? Workspace()
        defer {
            workspace.reset()
            idle.withLock { $0.append(workspace) }
        }
        return try body(workspace)
    }
}
