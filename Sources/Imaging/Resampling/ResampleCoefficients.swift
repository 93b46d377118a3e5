/// Fixed-point convolution weights for resampling one axis from `inSize` to `outSize` samples, computed the way
/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` do (src/libImaging/Resample.c):
///
/// - the kernel is stretched by the scale factor when downscaling (never shrunk when upscaling);
/// - each output sample `i` has its own window `[first[i], first[i] + count[i])` of input samples, found by rounding
///   `center ± support` (C truncation of `v + 0.5`) and clamping to the input;
/// - the window's weights are divided by their sum, then converted to Int32 with 22 fractional bits, rounding half
///   away from zero.
///
/// Computed once per resize call and axis, not per row. Each output sample's weights depend only on its index, so
/// they can be computed for a sub-range of the outputs (`outputs`) with the same values: a resize followed by a
/// crop computes only the samples that survive the crop.
struct ResampleCoefficients: Sendable {
    /// Bits after the binary point: 32 bits minus 8 for the sample value minus 2 spare bits for kernels whose
    /// partial sums overshoot (Pillow's PRECISION_BITS).
    static let precisionBits: Int32 = 32 - 8 - 2
    /// Added before the final shift so that truncation rounds to nearest.
    static let roundingBias: Int32 = 1 << (precisionBits - 1)

    let inSize: Int
    let outSize: Int
    /// The output samples these coefficients are for; entry `k` of the arrays is output `outputs.lowerBound + k`.
    let outputs: Range<Int>
    /// Stride between the weight rows of consecutive output samples (Pillow's `ksize`).
    let stride: Int
    /// First input sample used by each output sample.
    let first: [Int]
    /// Number of input samples used by each output sample (may be 0 when the input is empty).
    let count: [Int]
    /// `outputs.count * stride` fixed-point weights; entries past `count[i]` are zero.
    let weights: [Int32]

    /// - Precondition: `outSize > 0`, `inSize >= 0`, `filter != .nearest`, `outputs` inside `0..<outSize`.
    init(inSize: Int, outSize: Int, filter: ResampleFilter, outputs: Range<Int>? = nil) {
        precondition(outSize > 0 && inSize >= 0, "ResampleCoefficients: bad sizes \(inSize) -> \(outSize)")
        precondition(filter != .nearest, "ResampleCoefficients: nearest has no convolution kernel")
        let outputs = outputs ?? 0..<outSize
        precondition(outputs.lowerBound >= 0 && outputs.upperBound <= outSize, "ResampleCoefficients: bad outputs")
        self.inSize = inSize
        self.outSize = outSize
        self.outputs = outputs

        // Pillow takes the source extent from a `float` box; (in1 - in0) is computed in float, then widened.
        let scale = Double(Float(inSize) - Float(0)) / Double(outSize)
        let filterScale = scale < 1.0 ? 1.0 : scale
        let support = filter.support * filterScale
        let stride = Int(support.rounded(.up)) * 2 + 1
        self.stride = stride

        var first = [Int](repeating: 0, count: outputs.count)
        var count = [Int](repeating: 0, count: outputs.count)
        var weights = [Int32](repeating: 0, count: outputs.count * stride)
        var window = [Double](repeating: 0, count: stride)
        let inverseFilterScale = 1.0 / filterScale
        let fixedOne = Double(Int32(1) << Self.precisionBits)

        for (k, i) in outputs.enumerated() {
            let center = Double(Float(0)) + (Double(i) + 0.5) * scale
            // C's (int) cast truncates toward zero; values here are far inside Int's range.
            var lo = Int(center - support + 0.5)
            if lo < 0 { lo = 0 }
            var hi = Int(center + support + 0.5)
            if hi > inSize { hi = inSize }
            let n = max(0, hi - lo)
            var sum = 0.0
            for j in 0..<n {
                let w = filter.weight((Double(j + lo) - center + 0.5) * inverseFilterScale)
                window[j] = w
                sum += w
            }
            let base = k * stride
            for j in 0..<n {
                let w = sum != 0.0 ? window[j] / sum : window[j]
                // Round half away from zero, then truncate (Pillow: (int)(±0.5 + w * 2^22)).
                weights[base + j] = Self.toFixed(w < 0 ? -0.5 + w * fixedOne : 0.5 + w * fixedOne)
            }
            first[k] = lo
            count[k] = n
        }
        self.first = first
        self.count = count
        self.weights = weights
    }

    /// Truncates toward zero like a C (int) cast; saturates instead of trapping on values no real kernel produces.
    @inline(__always)
    private static func toFixed(_ v: Double) -> Int32 {
        if v.isNaN { return 0 }
        if v >= Double(Int32.max) { return Int32.max }
        if v <= Double(Int32.min) { return Int32.min }
        return Int32(v)
    }

    /// The 8-bit result of a fixed-point accumulator (Pillow's `clip8`: shift out the fraction, saturate to 0...255).
    @inline(__always)
    static func clip8(_ accumulator: Int32) -> UInt8 {
        let v = accumulator >> precisionBits
        return v < 0 ? 0 : (v > 255 ? 255 : UInt8(truncatingIfNeeded: v))
    }
}
