import CCodecs
import Foundation

/// Decodes JPEG, PNG and WebP posters to 8-bit RGB with the same pixel values as Pillow 13's
/// `Image.open(f).convert("RGB")` (see Sources/CCodecs for the per-format details reproduced).
///
/// Guarantees:
/// - The format is chosen by magic bytes only, never by file name.
/// - Image dimensions are read from the header first; an image with more than `maxPixels` pixels is refused
///   with `.tooManyPixels` before any pixel memory is allocated (unlike Pillow, which only refuses above twice
///   its limit and warns in between).
/// - Any input either decodes or throws an `ImageDecodingError`; no input traps.
/// - Truncated data is an error (Pillow's default, without `LOAD_TRUNCATED_IMAGES`).
/// - Cost is bounded by `limits` as well as by `maxPixels`: extreme shapes are refused from the header, and the
///   codecs run with a scan limit and a working-memory budget (`DecodingLimits` says why each exists). The server
///   and ingest both decode through this type, so both apply them.
public struct PosterDecoder: Sendable {
    /// Pillow's `Image.MAX_IMAGE_PIXELS`.
    public static let defaultMaxPixels = 89_478_485

    /// The largest `width * height` accepted.
    public var maxPixels: Int
    /// Caps on shape, progressive scans and decoder memory.
    public var limits: DecodingLimits

    public init(maxPixels: Int = PosterDecoder.defaultMaxPixels, limits: DecodingLimits = DecodingLimits()) {
        self.maxPixels = maxPixels
        self.limits = limits
    }

    /// The format announced by the leading magic bytes, or nil. Mirrors Pillow's `_accept` checks:
    /// JPEG `FF D8 FF`, the 8-byte PNG signature, and `RIFF....WEBP` followed by a `VP8 `/`VP8L`/`VP8X` chunk.
    public static func sniff(_ bytes: some Collection<UInt8>) -> ImageFormat? {
        let head = Array(bytes.prefix(16))
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if head.count == 16, head[0..<4].elementsEqual("RIFF".utf8), head[8..<12].elementsEqual("WEBP".utf8) {
            let chunk = head[12..<16]
            if chunk.elementsEqual("VP8 ".utf8) || chunk.elementsEqual("VP8L".utf8) || chunk.elementsEqual("VP8X".utf8) {
                return .webp
            }
        }
        return nil
    }

    /// Reads the header only and returns the image size, applying the zero-size and `maxPixels` checks.
    public func dimensions(of data: [UInt8]) throws(ImageDecodingError) -> (width: Int, height: Int) {
        let format = try Self.format(of: data)
        return try checkedDimensions(data, format).dimensions
    }

    /// Decodes encoded JPEG, PNG or WebP bytes to RGB.
    public func decode(_ data: [UInt8]) throws(ImageDecodingError) -> RGBImage {
        var statistics = DecodingStatistics()
        return try decode(data, statistics: &statistics)
    }

    /// Decodes and reports what the codec library spent, also when decoding fails.
    public func decode(_ data: [UInt8], statistics: inout DecodingStatistics) throws(ImageDecodingError) -> RGBImage {
        let format = try Self.format(of: data)
        let (dimensions, byteCount) = try checkedDimensions(data, format)
        var result = cc_result()
        var codecLimits = cc_limits(max_memory: max(0, limits.maxWorkingMemory),
                                    max_scans: UInt32(clamping: max(0, limits.maxScans)),
                                    max_scan_passes: UInt32(clamping: max(0, limits.maxScanPasses)))
        let pixels = [UInt8](unsafeUninitializedCapacity: byteCount) { buffer, initialized in
            data.withUnsafeBufferPointer { input in
                let codec = Self.codec(for: format)
                codec.decode(input.baseAddress!, input.count, buffer.baseAddress!, byteCount, &codecLimits, &result)
            }
            // On failure the contents are garbage but the array is discarded below.
            initialized = byteCount
        }
        statistics.scans = Int(result.scans)
        statistics.peakWorkingMemory = Int(result.peak_memory)
        if let error = error(from: result, format: format) { throw error }
        guard Int(result.width) == dimensions.width, Int(result.height) == dimensions.height else {
            throw .corrupt(format, "image size changed between header and decode")
        }
        return RGBImage(width: dimensions.width, height: dimensions.height, pixels: pixels)
    }

    /// Reads a file and decodes it (format by content, not by extension).
    public func decode(contentsOf url: URL) throws(ImageDecodingError) -> RGBImage {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .unreadable(path: url.path, reason: error.localizedDescription)
        }
        return try decode([UInt8](data))
    }

    // MARK: - Internals

    private struct Codec {
        var info: (UnsafePointer<UInt8>, Int, UnsafeMutablePointer<cc_result>) -> Void
        var decode: (UnsafePointer<UInt8>, Int, UnsafeMutablePointer<UInt8>, Int, UnsafePointer<cc_limits>,
                     UnsafeMutablePointer<cc_result>) -> Void
    }

    private static func codec(for format: ImageFormat) -> Codec {
        switch format {
        case .jpeg: Codec(info: { cc_jpeg_info($0, $1, $2) }, decode: { cc_jpeg_decode($0, $1, $2, $3, $4, $5) })
        case .png: Codec(info: { cc_png_info($0, $1, $2) }, decode: { cc_png_decode($0, $1, $2, $3, $4, $5) })
        case .webp: Codec(info: { cc_webp_info($0, $1, $2) }, decode: { cc_webp_decode($0, $1, $2, $3, $4, $5) })
        }
    }

    private static func format(of data: [UInt8]) throws(ImageDecodingError) -> ImageFormat {
        if data.isEmpty { throw .empty }
        guard let format = sniff(data) else { throw .unknownFormat }
        return format
    }

    /// Header dimensions after the zero-size and pixel-limit checks, plus the RGB byte count (overflow-checked).
    private func checkedDimensions(_ data: [UInt8], _ format: ImageFormat)
        throws(ImageDecodingError) -> (dimensions: (width: Int, height: Int), byteCount: Int)
    {
        var info = cc_result()
        data.withUnsafeBufferPointer { input in
            Self.codec(for: format).info(input.baseAddress!, input.count, &info)
        }
        if let error = error(from: info, format: format) { throw error }
        let width = Int(info.width), height = Int(info.height)
        if width == 0 || height == 0 { throw .zeroSize(format) }
        let (pixelCount, overflow) = width.multipliedReportingOverflow(by: height)
        if overflow || pixelCount > maxPixels {
            throw .tooManyPixels(width: width, height: height, limit: maxPixels)
        }
        if let violation = limits.shapeViolation(width: width, height: height) {
            throw .limitExceeded(format, violation)
        }
        let (byteCount, overflow3) = pixelCount.multipliedReportingOverflow(by: 3)
        if overflow3 { throw .tooManyPixels(width: width, height: height, limit: maxPixels) }
        return ((width, height), byteCount)
    }

    private func error(from result: cc_result, format: ImageFormat) -> ImageDecodingError? {
        let limit = maxPixels
        let message = withUnsafeBytes(of: result.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        switch cc_status(rawValue: UInt32(bitPattern: result.status)) {
        case CC_OK:
            return nil
        case CC_TRUNCATED:
            return .truncated(format, message)
        case CC_ZERO_SIZE:
            return .zeroSize(format)
        case CC_TOO_LARGE:
            // A library dimension limit: report it as a bomb when the declared size is over our limit too.
            let (pixels, overflow) = Int(result.width).multipliedReportingOverflow(by: Int(result.height))
            if overflow || pixels > limit {
                return .tooManyPixels(width: Int(result.width), height: Int(result.height), limit: limit)
            }
            return .unsupported(format, message)
        case CC_UNSUPPORTED:
            return .unsupported(format, message)
        case CC_NO_MEMORY:
            return .unsupported(format, "out of memory: " + message)
        case CC_LIMIT_SCANS:
            return .limitExceeded(format, .scans(limit: limits.maxScans))
        case CC_LIMIT_SCAN_PASSES:
            return .limitExceeded(format, .scanPasses(limit: limits.maxScanPasses))
        case CC_LIMIT_MEMORY:
            return .limitExceeded(format, .workingMemory(limit: limits.maxWorkingMemory, detail: message))
        default:
            return .corrupt(format, message)
        }
    }
}
