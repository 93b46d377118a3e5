/// What one decode may cost, beyond the pixel limit. A real poster (about 2:3, about 6 MP, baseline or a handful of
/// progressive scans) never reaches any of these; hostile files that cost far more than their size do:
///
/// - `maxSide`: one row of tens of millions of pixels stays inside any pixel limit, but the codecs' row buffers
///   (8 bytes a pixel for 16-bit RGBA PNG, twice) and the resize windows grow with the side. 16,384 is WebP's own
///   maximum and several times any poster.
/// - `maxAspectRatio`: a 15 x 40,000 strip resized by its shortest edge becomes hundreds of megapixels before the
///   centre crop. Posters are 2:3; 32:1 leaves room for banners and stills and bounds the resize to 224 x 7,168.
/// - `maxScans`, `maxScanPasses`: each scan of a progressive JPEG is a pass over its components' blocks, and libjpeg
///   accepts thousands of near-empty ones (only warning about the bogus progression). Real encoders write about 10
///   scans that together cover the image fewer than 6 times; libjpeg-turbo suggests refusing more than 500 scans for
///   untrusted input, but 400 scans over a 4 MP image still cost 1.5 s, so the scans' total coverage is capped too
///   (32 whole-image passes: about 0.1 s for a 4 MP image).
/// - `maxWorkingMemory`: what a codec library may hold at once besides the RGB output. PNG needs a few rows and
///   zlib's window (~100 KB) and is held to it with a counting allocator; a progressive JPEG needs its whole
///   coefficient buffer (2 bytes per sample: 36 MB for a 6 MP 4:4:4 poster); a lossless WebP frame 4 bytes per pixel.
///   96 MiB covers progressive JPEGs up to about 16 MP (4:4:4) or 32 MP (4:2:0).
public struct DecodingLimits: Sendable, Equatable {
    public var maxSide: Int
    /// Largest `longer side / shorter side`.
    public var maxAspectRatio: Int
    public var maxScans: Int
    /// Whole-image passes all scans of a JPEG may add up to.
    public var maxScanPasses: Int
    /// Bytes.
    public var maxWorkingMemory: Int

    public static let defaultMaxSide = 16_384
    public static let defaultMaxAspectRatio = 32
    public static let defaultMaxScans = 500
    public static let defaultMaxScanPasses = 32
    public static let defaultMaxWorkingMemory = 96 << 20

    public init(maxSide: Int = DecodingLimits.defaultMaxSide,
                maxAspectRatio: Int = DecodingLimits.defaultMaxAspectRatio,
                maxScans: Int = DecodingLimits.defaultMaxScans,
                maxScanPasses: Int = DecodingLimits.defaultMaxScanPasses,
                maxWorkingMemory: Int = DecodingLimits.defaultMaxWorkingMemory) {
        self.maxSide = maxSide
        self.maxAspectRatio = maxAspectRatio
        self.maxScans = maxScans
        self.maxScanPasses = maxScanPasses
        self.maxWorkingMemory = maxWorkingMemory
    }

    /// The limit a `width` x `height` header breaks, if any (checked before anything is allocated).
    public func shapeViolation(width: Int, height: Int) -> DecodingLimitViolation? {
        let long = max(width, height), short = min(width, height)
        if long > maxSide { return .side(width: width, height: height, maxSide: maxSide) }
        if long > maxAspectRatio.multipliedReportingOverflow(by: short).partialValue {
            return .aspectRatio(width: width, height: height, maxRatio: maxAspectRatio)
        }
        return nil
    }
}

/// Which `DecodingLimits` cap refused an image.
public enum DecodingLimitViolation: Sendable, Equatable, CustomStringConvertible {
    case side(width: Int, height: Int, maxSide: Int)
    case aspectRatio(width: Int, height: Int, maxRatio: Int)
    /// A progressive JPEG with more scans than `limit`.
    case scans(limit: Int)
    /// A JPEG whose scans cover the image more than `limit` times.
    case scanPasses(limit: Int)
    /// The codec would need more than `limit` bytes of working memory; `detail` is the codec's account.
    case workingMemory(limit: Int, detail: String)

    public var description: String {
        switch self {
        case .side(let width, let height, let maxSide):
            "\(width)x\(height) pixels: a side is longer than \(maxSide)"
        case .aspectRatio(let width, let height, let maxRatio):
            "\(width)x\(height) pixels: longer than \(maxRatio) times its width or height"
        case .scans(let limit):
            "more than \(limit) progressive scans"
        case .scanPasses(let limit):
            "progressive scans that cover the image more than \(limit) times"
        case .workingMemory(let limit, let detail):
            "needs more than \(limit) bytes of decoder memory" + (detail.isEmpty ? "" : " (\(detail))")
        }
    }
}

/// What a decode cost, as the codec library reports it (for tests and measurements).
public struct DecodingStatistics: Sendable, Equatable {
    /// JPEG: scans (SOS markers) read; 0 for other formats.
    public var scans = 0
    /// The most bytes the codec library held at once besides the output: measured for PNG (counting allocator),
    /// the coefficient buffer requested for JPEG, the checked estimate for WebP.
    public var peakWorkingMemory = 0

    public init() {}
}
