// The number format a model computes in. It is part of a vector's model identity (`ModelIdentity.precision`):
// vectors made at another precision are stale for a space, exactly as vectors of another checkpoint are.

/// The precision of a model's arithmetic.
public enum Precision: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// float32 throughout: the reference's own vectors (the default).
    case fp32
    /// Weights and the activations between convolutions and matmuls in bfloat16, sums accumulated in float32;
    /// layer norms, softmax, attention and the final projection stay float32. Half the weights' memory; the vectors
    /// differ slightly from fp32's (cosine ≥ 0.999 on the reference posters). Whether it is faster depends on the
    /// CPU: see `Tensors/KernelChoice.swift` (on an AVX-512 BF16 Xeon without AMX, only ResNet-50 gained).
    case bf16

    public var description: String { rawValue }
}
