/// An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B (what Pillow calls mode "RGB").
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes, row-major, no padding.
    public var pixels: [UInt8]
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage: pixel count does not match \(width)x\(height)")
        self.width = width; self.height = height; self.pixels = pixels
    }
}
