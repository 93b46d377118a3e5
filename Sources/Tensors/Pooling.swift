import CDNNL
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Max pooling over NCHW (PyTorch `MaxPool2d`, floor mode, implicit −∞ padding), as a oneDNN pooling primitive
/// working directly on the input's layout (blocked or plain).
///
/// Guarantees: immutable configuration, primitives cached per input layout; safe for concurrent callers.
public final class MaxPool2d: Sendable {
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int

    private final class Plan: Sendable {
        let primitive: Primitive
        let destination: MemoryDescriptor
        init(primitive: Primitive, destination: MemoryDescriptor) {
            self.primitive = primitive
            self.destination = destination
        }
    }
    private let plans = Mutex<[(MemoryDescriptor, Plan)]>([])

    public init(kernelSize: Int, stride: Int, padding: Int = 0) throws(EngineError) {
        guard kernelSize >= 1, stride >= 1, padding >= 0, padding <= kernelSize / 2 else {
            throw .invalidArgument("max pool kernel \(kernelSize), stride \(stride), padding \(padding)")
        }
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
    }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernelSize) / stride + 1, (width + 2 * padding - kernelSize) / stride + 1)
    }

    private func plan(for input: Tensor) throws(EngineError) -> Plan {
        let layout = try input.memoryLayout()
        if let found = plans.withLock({ list in list.first { $0.0 == layout }?.1 }) { return found }
        let output = outputSize(height: input.shape[2], width: input.shape[3])
        guard output.height >= 1, output.width >= 1 else {
            throw .shapeMismatch("max pool input \(input.shape) is smaller than kernel \(kernelSize)")
        }
        var src = layout.raw, dst = dnnl_memory_desc_t()
        try check(dnnl_memory_desc_init_by_tag(&dst, 4, [input.shape[0], input.shape[1], output.height, output.width]
            .map(Int64.init), layout.dataType, dnnl_format_tag_any), "dnnl_memory_desc_init_by_tag(pool dst)")
        var desc = dnnl_pooling_desc_t()
        let k = Int64(kernelSize), s = Int64(stride), p = Int64(padding)
        try check(dnnl_pooling_forward_desc_init(&desc, dnnl_forward_inference, dnnl_pooling_max, &src, &dst,
                                                 [s, s], [k, k], [p, p], [p, p]), "dnnl_pooling_forward_desc_init")
        let attributes = try PrimitiveAttributes()
        var pd: dnnl_primitive_desc_t?
        try check(dnnl_primitive_desc_create(&pd, &desc, attributes.raw, try Engine.shared().raw, nil),
                  "dnnl_primitive_desc_create(pooling)")
        guard let pd else { throw .dnnl(call: "dnnl_primitive_desc_create(pooling)", status: "no descriptor") }
        let destination = MemoryDescriptor(raw: dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0).pointee)
        let plan = Plan(primitive: try Primitive(descriptor: pd), destination: destination)
        plans.withLock { $0.append((layout, plan)) }
        return plan
    }

    public func callAsFunction(_ input: Tensor, workspace: Workspace) throws(EngineError) -> Tensor {
        guard input.shape.count == 4 else { throw .shapeMismatch("max pool expects NCHW, got \(input.shape)") }
        let plan = try plan(for: input)
        let output = outputSize(height: input.shape[2], width: input.shape[3])
        let result = try workspace.makeTensor(shape: [input.shape[0], input.shape[1], output.height, output.width],
                                              layout: plan.destination)
        try plan.primitive.execute(stream: workspace.stream, arguments: [
            (DNNL_ARG_SRC, try input.memoryLayout(), input.storage.base),
            (DNNL_ARG_DST, plan.destination, result.storage.base),
        ], scratchpad: try workspace.scratchpad(for: plan.primitive))
        return result
    }
}

/// Adaptive average pooling over NCHW exactly as PyTorch defines its windows (aten AdaptiveAveragePooling.cpp):
/// output cell i along an axis of length L → O averages input [floor(i·L/O), ceil((i+1)·L/O)). Windows may
/// overlap or (when O > L) repeat cells. Returns a plain tensor; blocked inputs are reordered first.
public func adaptiveAvgPool2d(_ input: Tensor, outputSize: (height: Int, width: Int),
                              workspace: Workspace) throws(EngineError) -> Tensor {
    guard input.shape.count == 4 else { throw .shapeMismatch("adaptive avg pool expects NCHW, got \(input.shape)") }
    guard outputSize.height >= 1, outputSize.width >= 1 else {
        throw .invalidArgument("adaptive avg pool output size \(outputSize)")
    }
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    guard h >= 1, w >= 1 else { throw .shapeMismatch("adaptive avg pool input \(input.shape) is empty") }
    let (oh, ow) = outputSize
    let plainInput = try workspace.plain(input)
    let result = try workspace.makeTensor(shape: [n, c, oh, ow])
    let source = plainInput.storage.floats, destination = result.storage.floats
    let planes = n * c
    parallelFor(planes, grain: max(1, 4096 / max(h * w, 1))) { plane in
        let inPlane = source + plane * h * w, outPlane = destination + plane * oh * ow
        for oy in 0..<oh {
            let y0 = (oy * h) / oh, y1 = ((oy + 1) * h + oh - 1) / oh
            for ox in 0..<ow {
                let x0 = (ox * w) / ow, x1 = ((ox + 1) * w + ow - 1) / ow
                var sum: Float = 0
                for y in y0..<y1 { for x in x0..<x1 { sum += inPlane[y * w + x] } }
                outPlane[oy * ow + ox] = sum / Float((y1 - y0) * (x1 - x0))
            }
        }
    }
    return result
}

/// Runs `body(i)` for i in 0..<count on both cores when there is enough work (`grain` items per task minimum).
func parallelFor(_ count: Int, grain: Int, _ body: (Int) -> Void) {
    let tasks = min(ProcessInfoCores.count, max(1, count / max(grain, 1)))
    if tasks <= 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: tasks) { task in
            let start = count * task / tasks, end = count * (task + 1) / tasks
            for i in start..<end { body(i) }
        }
    }
}

enum ProcessInfoCores {
    /// Online CPUs (the machine this runs on has 2).
    static let count: Int = {
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return online > 0 ? online : 1
    }()
}
