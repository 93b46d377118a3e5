/// An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B (what Pillow calls mode "RGB").
///
/// Guarantee: `pixels.count == width * height * 3` at construction (checked by a precondition; decoders
/// validate sizes from files before they ever build one).
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes, row-major, no padding.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "RGBImage: negative size \(width)x\(height)")
        let (wh, o1) = width.multipliedReportingOverflow(by: height)
        let (count, o2) = wh.multipliedReportingOverflow(by: 3)
        precondition(!o1 && !o2 && pixels.count == count,
                     "RGBImage: \(pixels.count) bytes for \(width)x\(height)x3")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

extension RGBImage {
    /// The R, G, B values at column `x`, row `y` (programmer error if out of bounds).
    public subscript(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        precondition(x >= 0 && x < width && y >= 0 && y < height, "RGBImage: pixel (\(x), \(y)) out of bounds")
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}
