import PosterSimCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Per-caller scratch state: a oneDNN stream and a bump-allocated arena for activations and scratchpads.
///
/// Guarantees: after the first call of a given shape, running the same model again allocates no large buffers
/// (the arena keeps its high-water size and is rewound by `reset()`). A workspace must be used by one thread at
/// a time; get one per call from a `WorkspacePool`. Tensors allocated here stay memory-safe after `reset()`
/// (they keep their chunk alive) but their contents may be overwritten by later allocations.
public final class Workspace: @unchecked Sendable {
    let engine: Engine
    let stream: Stream

    /// One arena chunk, mapped straight from the kernel rather than through malloc: glibc raises its mmap
    /// threshold after a large free, so later chunks would come from the heap and their pages would stay
    /// resident after release. munmap gives them back at once.
    private final class Chunk {
        let base: UnsafeMutableRawPointer
        let size: Int
        init(size: Int) throws(EngineError) {
            let pointer = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let pointer, pointer != MAP_FAILED else { throw .outOfMemory(bytes: size) }
            base = pointer  // page-aligned, so 64-byte aligned as oneDNN prefers
            self.size = size
        }
        deinit { munmap(base, size) }
    }

    private var chunks: [Chunk] = []
    private var used = 0          // bytes used in the last chunk
    private var totalUsed = 0     // bytes handed out since the last reset, across chunks

    public init(engine: Engine? = nil) throws(EngineError) {
        if let engine { self.engine = engine } else { self.engine = try Engine.shared() }
        stream = try Stream(engine: self.engine)
    }

    /// Bytes currently reserved by the arena (address space; pages become resident when first written).
    public var capacity: Int { chunks.reduce(0) { $0 + $1.size } }

    /// Rewinds the arena. If the last run needed several chunks they are merged into one of the total size so
    /// the next run of the same shapes fits without allocating.
    public func reset() {
        if chunks.count > 1, let merged = try? Chunk(size: totalUsed) { chunks = [merged] }
        used = 0
        totalUsed = 0
    }

    /// Whether `tensor`'s memory belongs to this arena.
    public func holds(_ tensor: Tensor) -> Bool {
        guard let owner = tensor.storage.owner else { return false }
        return chunks.contains { $0 === owner }
    }

    /// Rewinds the arena and returns all its memory to the system.
    public func release() {
        chunks = []
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

    /// `tensor`'s `rows·columns` elements as a dense row-major `[rows, columns]` matrix of `precision`'s type, the
    /// input of a matmul: the tensor itself when it already is one (e.g. a bf16 layer's output), else a plain
    /// float32 view, converted to bfloat16 in the arena for `.bf16`. Returns the tensor and its descriptor.
    ///
    /// At `.int8` the matrix is u8, quantised from float32 with `scale` (an int8 matmul's input scale).
    func matrix(_ tensor: Tensor, rows: Int, columns: Int, precision: Precision,
                scale: Float? = nil) throws(EngineError) -> (Tensor, MemoryDescriptor) {
        let layout = try MemoryDescriptor(plain: [rows, columns], dataType: precision.dataType)
        if precision == .int8 {
            guard let scale else { throw .invalidArgument("an int8 matmul's input needs its scale") }
            let plain = try self.plain(tensor).reshaped([rows, columns])
            return (try quantized(plain, to: layout, scale: scale), layout)
        }
        if let held = tensor.blockedLayout, held.dataType == layout.dataType, held.byteCount == layout.byteCount,
           try held == MemoryDescriptor(plain: tensor.shape, dataType: held.dataType) {
            return (tensor, layout)
        }
        let plain = try self.plain(tensor).reshaped([rows, columns])
        return (try converted(plain, to: layout), layout)
    }

    /// `tensor` as a plain row-major tensor (a no-op for plain tensors).
    public func plain(_ tensor: Tensor) throws(EngineError) -> Tensor {
        guard tensor.blockedLayout != nil else { return tensor }
        return try converted(tensor, to: MemoryDescriptor(plain: tensor.shape))
    }

    /// Float32 `tensor` as u8 in `layout`: round(x · scale), saturated to 0...255 (int8 layers' input).
    func quantized(_ tensor: Tensor, to layout: MemoryDescriptor, scale: Float) throws(EngineError) -> Tensor {
        let result = try makeTensor(shape: tensor.shape, layout: layout)
        try engine.reorder(from: tensor.memoryLayout(), tensor.storage.base, to: layout, result.storage.base,
                           stream: stream, scale: scale)
        return result
    }

    /// u8 `tensor` whose values stand for value / `scale` (an int8 layer's output) as a plain float32 tensor.
    public func dequantized(_ tensor: Tensor, scale: Float) throws(EngineError) -> Tensor {
        guard scale.isFinite, scale > 0 else { throw .invalidArgument("dequantisation scale \(scale)") }
        let result = try makeTensor(shape: tensor.shape)
        try engine.reorder(from: tensor.memoryLayout(), tensor.storage.base, to: MemoryDescriptor(plain: tensor.shape),
                           result.storage.base, stream: stream, scale: 1 / scale)
        return result
    }
}

/// A thread-safe pool of workspaces: concurrent callers each borrow their own, so shared models need no locks
/// on the hot path.
///
/// The models share `WorkspacePool.shared`, so the arenas one model grew are reused by the next instead of each
/// model keeping its own high-water memory. At most `maxIdle` workspaces are kept between calls; the others (left
/// over from a burst of concurrent callers) are released when returned.
public final class WorkspacePool: Sendable {
    private let idle = Mutex<[Workspace]>([])
    public let maxIdle: Int

    /// The pool the models use unless given another.
    public static let shared = WorkspacePool()

    /// - Parameter maxIdle: workspaces kept for reuse; the default covers two concurrent calls of the model that
    ///   borrows the most (CLIP: three).
    public init(maxIdle: Int = 6) {
        self.maxIdle = max(maxIdle, 0)
    }

    /// Runs `body` with a workspace no other caller is using, then resets it and returns it to the pool.
    /// Copy results out (e.g. `toArray()`) inside `body`.
    public func withWorkspace<R>(_ body: (Workspace) throws -> R) throws -> R {
        let workspace = try borrow()
        defer { giveBack(workspace) }
        return try body(workspace)
    }

    /// `withWorkspace` for a step that needs two (a `WorkspaceRelay`).
    public func withWorkspaces<R>(_ body: ((Workspace, Workspace)) throws -> R) throws -> R {
        try withWorkspace { first in try withWorkspace { second in try body((first, second)) } }
    }

    /// Workspaces kept for reuse and the bytes their arenas reserve.
    public var idleCapacity: (count: Int, bytes: Int) {
        idle.withLock { list in (list.count, list.reduce(0) { $0 + $1.capacity }) }
    }

    /// Releases every idle workspace's memory (e.g. after a one-off large batch).
    public func releaseIdle() {
        let released = idle.withLock { list -> [Workspace] in
            defer { list = [] }
            return list
        }
        for workspace in released { workspace.release() }
    }

    private func borrow() throws -> Workspace {
        // The most recently returned workspace has the warmest, largest arena.
        try idle.withLock { list -> Workspace? in list.popLast() } ?? Workspace()
    }

    private func giveBack(_ workspace: Workspace) {
        workspace.reset()
        let kept = idle.withLock { list -> Bool in
            guard list.count < maxIdle else { return false }
            list.append(workspace)
            return true
        }
        if !kept { workspace.release() }
    }
}

/// Two workspaces used in turn: each step writes into one while its input lives in the other, then the other is
/// rewound. Only two steps' outputs are alive at any time, so a network's activation memory is that of its two
/// largest consecutive steps instead of the sum of every intermediate map.
public struct WorkspaceRelay {
    public let workspaces: (Workspace, Workspace)
    private var turn = 0

    public init(_ workspaces: (Workspace, Workspace)) { self.workspaces = workspaces }

    /// Runs `step` on `input` (which lives in the other workspace or outside both). Usually the result lands in
    /// the step's workspace and the other one is rewound. A step may instead return its input's memory (a
    /// reshape, a no-op pool, a convolution written over its residual): then the other workspace still holds the
    /// live data, and the step's workspace, holding only dead intermediates, is rewound instead.
    public mutating func run(_ input: Tensor, _ step: (Workspace) throws -> Tensor) throws -> Tensor {
        let (target, other) = turn == 0 ? workspaces : (workspaces.1, workspaces.0)
        let result = try step(target)
        if target.holds(result) {
            other.reset()
            turn = 1 - turn
        } else {
            target.reset()
        }
        return result
    }
}
