import CDNNL
import PosterSimCore

// Which precisions this CPU can run fast. bf16 needs AVX-512 with the BF16 dot-product instructions
// (`vdpbf16ps`, cpuinfo flag `avx512_bf16`): oneDNN's bf16 convolutions and matmuls use them. Without them oneDNN
// would still run bf16 on plain AVX-512 by emulating the conversions, slower than fp32, so a precision the CPU
// lacks is refused with an error naming the missing instructions instead (never a silent fallback to fp32, which
// would store vectors under the wrong identity). int8 needs VNNI (`vpdpbusd`), either with AVX-512
// (`avx512_vnni`) or with AVX2 (`avx_vnni`, oneDNN's avx2_vnni): without it oneDNN's u8×s8 kernels fall back to a
// three-instruction multiply-add sequence, which loses most of int8's gain, and on AVX-512 without VNNI they halve
// the weights to avoid saturating 16-bit sums (a silent accuracy loss); so it is refused the same way.

/// The instruction sets the engine's kernels can use on this machine, as oneDNN sees them (its effective ISA:
/// the CPU's, capped by `ONEDNN_MAX_CPU_ISA` when set). Injectable, so the refusal is testable on any CPU.
public struct CPUCapabilities: Sendable, Equatable, CustomStringConvertible {
    /// oneDNN's name for the instruction set it dispatches to, e.g. `avx512_core_bf16`.
    public var isa: String
    /// Instruction-set extensions present, named as `/proc/cpuinfo` flags: `avx512_core` (AVX-512 F, BW, VL,
    /// DQ), `avx512_vnni`, `avx512_bf16`, `avx2`, `avx_vnni` (VNNI on AVX2).
    public var instructions: Set<String>

    public init(isa: String, instructions: Set<String>) {
        self.isa = isa
        self.instructions = instructions
    }

    /// This machine, from oneDNN's ISA query.
    public static var detected: CPUCapabilities {
        let isa = dnnl_get_effective_cpu_isa()
        func has(_ flag: dnnl_cpu_isa_t) -> Bool { isa.rawValue & flag.rawValue == flag.rawValue }
        var found: Set<String> = []
        if has(dnnl_cpu_isa_avx2) { found.insert("avx2") }
        if has(dnnl_cpu_isa_avx512_core) { found.insert("avx512_core") }
        if has(dnnl_cpu_isa_avx512_core_vnni) { found.insert("avx512_vnni") }
        if has(dnnl_cpu_isa_avx512_core_bf16) { found.insert("avx512_bf16") }
        if has(dnnl_cpu_isa_avx2_vnni) { found.insert("avx_vnni") }
        return CPUCapabilities(isa: Engine.effectiveISA, instructions: found)
    }

    /// The extensions `precision` needs, in the order they build on each other. Each entry lists alternatives, any
    /// one of which will do (int8: VNNI with AVX-512 or with AVX2).
    public static func requiredInstructions(for precision: Precision) -> [[String]] {
        switch precision {
        case .fp32: return []
        case .bf16: return [["avx512_core"], ["avx512_bf16"]]
        case .int8: return [["avx512_vnni", "avx_vnni"]]
        }
    }

    /// What `precision` needs and this CPU lacks (empty when it can run it); alternatives read "a or b".
    public func missingInstructions(for precision: Precision) -> [String] {
        Self.requiredInstructions(for: precision).filter { instructions.isDisjoint(with: $0) }
            .map { $0.joined(separator: " or ") }
    }

    /// Throws `EngineError.missingInstructions` unless this CPU can run `precision`.
    public func require(_ precision: Precision) throws(EngineError) {
        let missing = missingInstructions(for: precision)
        guard missing.isEmpty else { throw .missingInstructions(precision: precision, missing: missing, isa: isa) }
    }

    public var description: String { "\(isa) (\(instructions.sorted().joined(separator: ", ")))" }
}

extension Precision {
    /// The oneDNN data type of weights and activations at this precision.
    var dataType: dnnl_data_type_t {
        switch self {
        case .fp32: return dnnl_f32
        case .bf16: return dnnl_bf16
        // The activations between int8 layers (weights are s8); the float ops refuse `.int8` (`requireFloat`).
        case .int8: return dnnl_u8
        }
    }

    /// Throws unless this is a precision the float32/bfloat16 ops (`Conv2d`, `Linear`, `DenseLayer`) compute in;
    /// int8 layers are `QuantizedConv2d`, built by the models that support it.
    func requireFloat(_ op: String) throws(EngineError) {
        if self == .int8 {
            throw .invalidArgument("\(op) computes in fp32 or bf16; int8 layers are QuantizedConv2d")
        }
    }
}
