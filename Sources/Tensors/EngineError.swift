import CDNNL
import PosterSimCore

/// Every failure the tensor layer (Tensors) reports. oneDNN status codes are mapped to `.dnnl` with the name of the call
/// that failed, so a bad shape or an unsupported primitive never traps.
public enum EngineError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A oneDNN call returned a status other than success.
    case dnnl(call: String, status: String)
    /// Shapes or element counts do not fit together.
    case shapeMismatch(String)
    /// An argument is outside what the operation accepts (negative size, zero stride, ...).
    case invalidArgument(String)
    /// An allocation failed or a size computation overflowed.
    case outOfMemory(bytes: Int)
    /// `precision` needs instruction-set extensions (cpuinfo names) this CPU lacks; `isa` is what oneDNN found.
    case missingInstructions(precision: Precision, missing: [String], isa: String)

    public var description: String {
        switch self {
        case .dnnl(let call, let status): return "oneDNN \(call) failed: \(status)"
        case .shapeMismatch(let what): return "shape mismatch: \(what)"
        case .invalidArgument(let what): return "invalid argument: \(what)"
        case .outOfMemory(let bytes): return "cannot allocate \(bytes) bytes"
        case .missingInstructions(let precision, let missing, let isa):
            return "precision \(precision) needs the CPU instructions \(missing.joined(separator: " and ")), which oneDNN "
                + "does not find on this machine (it runs \(isa) here); use precision fp32, which runs on any CPU"
        }
    }
}

/// Readable name of a oneDNN status (dnnl_types.h `dnnl_status_t`).
func statusName(_ status: dnnl_status_t) -> String {
    switch status {
    case dnnl_success: return "success"
    case dnnl_out_of_memory: return "out of memory"
    case dnnl_invalid_arguments: return "invalid arguments"
    case dnnl_unimplemented: return "unimplemented (no implementation for these shapes/formats)"
    case dnnl_iterator_ends: return "iterator ends"
    case dnnl_runtime_error: return "runtime error"
    case dnnl_not_required: return "not required"
    default: return "status \(status.rawValue)"
    }
}

/// Throws `EngineError.dnnl` when a oneDNN call did not succeed.
@inline(__always)
func check(_ status: dnnl_status_t, _ call: @autoclosure () -> String) throws(EngineError) {
    if status != dnnl_success { throw EngineError.dnnl(call: call(), status: statusName(status)) }
}

/// Multiplies sizes, reporting overflow instead of trapping.
func checkedProduct(_ values: [Int]) throws(EngineError) -> Int {
    var result = 1
    for value in values {
        guard value >= 0 else { throw .invalidArgument("negative dimension \(value) in \(values)") }
        let (product, overflow) = result.multipliedReportingOverflow(by: value)
        if overflow { throw .outOfMemory(bytes: Int.max) }
        result = product
    }
    return result
}
