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
    /// VGG16 only (`supportedModels`): its convolutions after the first and fc6 run on int8 (s8 weights quantised
    /// per output channel at load, u8 activations between layers, s32 sums, scales fixed at load by a calibration
    /// pass over seeded generated posters); the first convolution and fc7, whose output is the vector, stay float32.
    /// About 2× faster convolutions with VNNI; vectors within cosine 0.999 of fp32's. ResNet-50 and CLIP are refused:
    /// ResNet-50's static int8 missed the neighbour-overlap bound (0.935 < 0.95, `make bench-int8`).
    case int8

    /// The models that can compute at this precision; any other is refused with an error naming it.
    public var supportedModels: [ModelName] {
        switch self {
        case .fp32, .bf16: return ModelName.allCases
        case .int8: return [.vgg16]
        }
    }

    public var description: String { rawValue }
}
