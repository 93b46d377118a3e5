import Foundation

/// A dense float32 tensor in row-major (C) order: `values.count == shape.reduce(1, *)`.
public struct ImageTensor: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]
    public init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "ImageTensor: \(values.count) values for shape \(shape)")
        self.shape = shape
        self.values = values
    }
}

/// Turns decoded RGB images into the model input tensor, reproducing the checkpoint's reference preprocessing:
/// the uint8 image after `resize(_:)` is byte-identical to Pillow's, and `tensor(for:)` equals the reference
/// float32 tensor (same float32 operations in the same order). Stateless and thread-safe.
public struct ImagePreprocessor: Sendable {
    public let config: PreprocessingConfig

    /// Largest image (in pixels) `resize(_:)` will build; extreme aspect ratios resized by shortest edge could
    /// otherwise ask for gigabytes. `resizeAndCrop` and `tensor` build only the crop, so with a convolution filter
    /// they take any size.
    public static let maxIntermediatePixels = 1 << 27

    public init(config: PreprocessingConfig) {
        self.config = config
    }

    /// Reads the checkpoint's `preprocessor_config.json`, else its timm `config.json` `pretrained_cfg`.
    public static func load(modelDirectory: URL) throws -> ImagePreprocessor {
        ImagePreprocessor(config: try PreprocessingConfig.load(modelDirectory: modelDirectory))
    }

    /// The size `resize(_:)` produces for a `width` x `height` input (at most `maxIntermediatePixels`).
    public func resizedSize(width: Int, height: Int) throws -> (width: Int, height: Int) {
        let size = try targetSize(width: width, height: height)
        guard size.width * size.height <= Self.maxIntermediatePixels else {
            throw PreprocessingError.imageTooLarge(width: size.width, height: size.height)
        }
        return size
    }

    /// The reference resize's size, whatever its area, as long as its byte count fits in an Int: `resizeAndCrop`
    /// computes only the cropped part of it.
    private func targetSize(width: Int, height: Int) throws -> (width: Int, height: Int) {
        guard width > 0, height > 0 else { throw PreprocessingError.emptyImage(width: width, height: height) }
        let size: (width: Int, height: Int)
        switch config.resize {
        case nil:
            size = (width, height)
        case .exact(let w, let h)?:
            size = (w, h)
        case .shortestEdge(let edge)?:
            // int(edge * long / short): an exact integer product, one correctly rounded division, truncation.
            let short = min(width, height), long = max(width, height)
            let (product, overflow) = edge.multipliedReportingOverflow(by: long)
            let newLong = overflow ? Int.max : Int(Double(product) / Double(short))
            size = width <= height ? (edge, newLong) : (newLong, edge)
        }
        let (pixels, overflow) = size.width.multipliedReportingOverflow(by: size.height)
        guard size.width > 0, size.height > 0, !overflow, !pixels.multipliedReportingOverflow(by: 3).overflow else {
            throw PreprocessingError.imageTooLarge(width: size.width, height: size.height)
        }
        return size
    }

    /// The image right after the reference resize (before any crop); the image itself when the config does not
    /// resize.
    public func resize(_ image: RGBImage) throws -> RGBImage {
        let size = try resizedSize(width: image.width, height: image.height)
        return image.resized(width: size.width, height: size.height, filter: config.filter)
    }

    /// The image after resize and center crop(s), still uint8: the same bytes as cropping the result of `resize(_:)`,
    /// but only the pixels inside the first crop are resized (see `RGBImage.resized(width:height:filter:columns:rows:)`),
    /// so an extreme aspect ratio costs no more than a poster.
    public func resizeAndCrop(_ image: RGBImage) throws -> RGBImage {
        guard let firstCrop = config.centerCrops.first else { return try resize(image) }
        // Nearest neighbour walks its source position from index 0 (as Pillow does), so its cost grows with the full
        // size: it keeps the size cap.
        let size = config.filter == .nearest
            ? try resizedSize(width: image.width, height: image.height)
            : try targetSize(width: image.width, height: image.height)
        let (x, y) = Self.centerCropOrigin(width: size.width, height: size.height, firstCrop)
        let columns = Self.clamped(x, firstCrop.width, to: size.width)
        let rows = Self.clamped(y, firstCrop.height, to: size.height)
        let kept = image.resized(width: size.width, height: size.height, filter: config.filter, columns: columns, rows: rows)
        // Where the window leaves the resized image, the crop pads with zeros.
        var current = kept.width == firstCrop.width && kept.height == firstCrop.height ? kept
            : kept.cropped(x: x - columns.lowerBound, y: y - rows.lowerBound, width: firstCrop.width,
                           height: firstCrop.height)
        for crop in config.centerCrops.dropFirst() {
            current = Self.centerCrop(current, crop)
        }
        return current
    }

    /// The part of `start ..< start + length` inside `0 ..< size` (empty, at a bound, when they do not meet).
    private static func clamped(_ start: Int, _ length: Int, to size: Int) -> Range<Int> {
        let lower = min(max(start, 0), size)
        return lower..<max(lower, min(start + length, size))
    }

    /// The model input for one image: float32, shape [3, height, width] (channels first).
    public func tensor(for image: RGBImage) throws -> ImageTensor {
        let cropped = try resizeAndCrop(image)
        let plane = cropped.width * cropped.height
        var values = [Float](repeating: 0, count: 3 * plane)
        let tables = channelTables()
        cropped.pixels.withUnsafeBufferPointer { src in
            values.withUnsafeMutableBufferPointer { dst in
                for c in 0..<3 {
                    let table = tables[c]
                    let base = c * plane
                    for i in 0..<plane {
                        dst[base + i] = table[Int(src[i * 3 + c])]
                    }
                }
            }
        }
        return ImageTensor(shape: [3, cropped.height, cropped.width], values: values)
    }

    /// Model input for several images: float32, shape [N, 3, height, width]. All images must give the same
    /// shape (always true when the config center-crops).
    public func batch(_ images: [RGBImage]) throws -> ImageTensor {
        var values: [Float] = []
        var itemShape: [Int]? = nil
        for (index, image) in images.enumerated() {
            let t = try tensor(for: image)
            if let itemShape, itemShape != t.shape {
                throw PreprocessingError.batchShapeMismatch(expected: itemShape, got: t.shape, index: index)
            }
            if itemShape == nil {
                itemShape = t.shape
                values.reserveCapacity(t.values.count * images.count)
            }
            values.append(contentsOf: t.values)
        }
        return ImageTensor(shape: [images.count] + (itemShape ?? [3, 0, 0]), values: values)
    }

    // MARK: - Steps

    /// Center crop with the rounding of the reference library, padding with zeros where the window leaves the
    /// image (both references pad with 0).
    static func centerCrop(_ image: RGBImage, _ crop: PreprocessingConfig.CenterCrop) -> RGBImage {
        if image.width == crop.width && image.height == crop.height { return image }
        let (x, y) = centerCropOrigin(width: image.width, height: image.height, crop)
        return image.cropped(x: x, y: y, width: crop.width, height: crop.height)
    }

    /// Top-left corner of the crop window in a `width` x `height` image (negative where the window pads).
    static func centerCropOrigin(width: Int, height: Int, _ crop: PreprocessingConfig.CenterCrop) -> (x: Int, y: Int) {
        switch crop.rounding {
        case .transformers:
            // transformers image_transforms.center_crop: top = (h - ch) // 2 (floor division); when the image is
            // smaller it pads by ceil(d / 2) first, which lands on the same window.
            (floorHalf(width - crop.width), floorHalf(height - crop.height))
        case .torchvision:
            (torchvisionOffset(size: width, crop: crop.width), torchvisionOffset(size: height, crop: crop.height))
        }
    }

    private static func floorHalf(_ d: Int) -> Int {
        d >= 0 ? d / 2 : -((-d + 1) / 2)
    }

    /// torchvision.transforms.functional.center_crop along one axis, as an offset into the unpadded image.
    private static func torchvisionOffset(size: Int, crop: Int) -> Int {
        // Pad (crop - size) // 2 before and the rest after when the crop is larger.
        let padBefore = crop > size ? (crop - size) / 2 : 0
        let padAfter = crop > size ? (crop - size + 1) / 2 : 0
        let padded = size + padBefore + padAfter
        // int(round((padded - crop) / 2.0)) with Python's round-half-to-even.
        let offset = Int((Double(padded - crop) / 2.0).rounded(.toNearestOrEven))
        return offset - padBefore
    }

    /// For each channel, the final float for each of the 256 byte values, computed with the reference's float
    /// operations (so a lookup is exact).
    private func channelTables() -> [[Float]] {
        (0..<3).map { c in
            (0..<256).map { v -> Float in
                var x: Float
                switch config.rescale {
                case .multiplyInFloat64(let factor):
                    // transformers rescale: image.astype(float64) * scale, then astype(float32).
                    x = Float(Double(v) * factor)
                case .divideBy255InFloat32:
                    // torchvision to_tensor: img.to(float32).div(255).
                    x = Float(v) / Float(255)
                case .none:
                    x = Float(v)
                }
                if let mean = config.mean, let std = config.std {
                    // Both references subtract and divide in float32 with float32 mean/std.
                    x = (x - Float(mean[c])) / Float(std[c])
                }
                return x
            }
        }
    }
}
