#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Pillow resampling filter. The raw values are Pillow's own numbers (`PIL.Image.Resampling`), which is what
/// `"resample": 3` in a Hugging Face `preprocessor_config.json` refers to.
public enum ResampleFilter: Int, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case nearest = 0
    case lanczos = 1
    case bilinear = 2
    case bicubic = 3
    case box = 4
    case hamming = 5
    /// Magic Kernel Sharp 2013 (Pillow 13 `Resampling.MKS2013`).
    case mks2013 = 6
    /// Magic Kernel Sharp 2021 (Pillow 13 `Resampling.MKS2021`).
    case mks2021 = 7

    /// The filter named by timm / torchvision interpolation strings ("bilinear", "bicubic", ...), or nil.
    public init?(interpolationName: String) {
        switch interpolationName.lowercased() {
        case "nearest": self = .nearest
        case "lanczos": self = .lanczos
        case "bilinear": self = .bilinear
        case "bicubic": self = .bicubic
        case "box": self = .box
        case "hamming": self = .hamming
        case "mks2013": self = .mks2013
        case "mks2021": self = .mks2021
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .nearest: "nearest"
        case .lanczos: "lanczos"
        case .bilinear: "bilinear"
        case .bicubic: "bicubic"
        case .box: "box"
        case .hamming: "hamming"
        case .mks2013: "mks2013"
        case .mks2021: "mks2021"
        }
    }

    /// Half-width of the kernel at scale 1 (Pillow's `struct filter` support values). Nearest has no kernel.
    var support: Double {
        switch self {
        case .nearest: 0
        case .box: 0.5
        case .bilinear, .hamming: 1.0
        case .bicubic: 2.0
        case .lanczos: 3.0
        case .mks2013: 2.5
        case .mks2021: 4.5
        }
    }

    /// The continuous kernel, evaluated exactly as Pillow's C functions do (double precision, same constants,
    /// same branch boundaries) so that the fixed-point coefficients derived from it are bit-identical.
    @inline(__always)
    func weight(_ t: Double) -> Double {
        switch self {
        case .nearest:
            return 0
        case .box:
            return (t > -0.5 && t <= 0.5) ? 1.0 : 0.0
        case .bilinear:
            let x = abs(t)
            return x < 1.0 ? 1.0 - x : 0.0
        case .hamming:
            var x = abs(t)
            if x == 0.0 { return 1.0 }
            if x >= 1.0 { return 0.0 }
            x *= Double.pi
            // Pillow writes these two constants as C `float` literals; keep their float rounding.
            return sin(x) / x * (Double(Float(0.54)) + Double(Float(0.46)) * cos(x))
        case .bicubic:
            // Keys' cubic convolution with a = -0.5.
            let a = -0.5
            let x = abs(t)
            if x < 1.0 { return ((a + 2.0) * x - (a + 3.0)) * x * x + 1 }
            if x < 2.0 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0.0
        case .lanczos:
            // Sinc windowed by a sinc three times wider (Lanczos-3), truncated to [-3, 3).
            if -3.0 <= t && t < 3.0 { return Self.sinc(t) * Self.sinc(t / 3) }
            return 0.0
        case .mks2013:
            // Costella's Magic Kernel Sharp, piecewise quadratic (same expressions as Pillow, pow included).
            let x = abs(t)
            if x < 0.5 { return 17.0 / 16.0 - 7.0 / 4.0 * pow(x, 2) }
            if x < 1.5 { return (1.0 - x) * (7.0 / 4.0 - x) }
            if x < 2.5 { return -1.0 / 8.0 * pow(x - 5.0 / 2.0, 2) }
            return 0
        case .mks2021:
            let x = abs(t)
            if x < 0.5 { return 577.0 / 576.0 - 239.0 / 144.0 * pow(x, 2) }
            if x < 1.5 { return 35.0 / 36.0 * (x - 1.0) * (x - 239.0 / 140.0) }
            if x < 2.5 { return 1.0 / 6.0 * (x - 2.0) * (65.0 / 24.0 - x) }
            if x < 3.5 { return 1.0 / 36.0 * (x - 3.0) * (x - 15.0 / 4.0) }
            if x < 4.5 { return -1.0 / 288.0 * pow(x - 9.0 / 2.0, 2) }
            return 0
        }
    }

    @inline(__always)
    private static func sinc(_ t: Double) -> Double {
        if t == 0.0 { return 1.0 }
        let x = t * Double.pi
        return sin(x) / x
    }
}
