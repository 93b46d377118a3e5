import Dispatch

extension RGBImage {
    /// This image scaled to `width` x `height`, bit-identical to Pillow's
    /// `Image.resize((width, height), filter)` on a mode "RGB" image (no box, `reducing_gap=None`).
    ///
    /// Convolution filters follow Pillow 13's src/libImaging/Resample.c: a separable two-pass convolution, normally
    /// horizontal first (only over the input rows the vertical pass will read) then vertical, but vertical first when
    /// the height shrinks much more than the width; a pass is skipped when its dimension does not change. Accumulation is in 32-bit fixed point with the same weights and rounding, so the
    /// output bytes are the same. `.nearest` follows Pillow's affine nearest-neighbour scaling
    /// (src/libImaging/Geometry.c). An unchanged size returns a copy, as Pillow does.
    ///
    /// An empty source (width or height 0) gives an all-zero image, as in Pillow.
    /// - Precondition: `width > 0`, `height > 0`, and `width * height * 3` fits in memory.
    public func resized(width outWidth: Int, height outHeight: Int, filter: ResampleFilter) -> RGBImage {
        precondition(outWidth > 0 && outHeight > 0, "resized: target size must be positive, got \(outWidth)x\(outHeight)")
        let (area, overflow1) = outWidth.multipliedReportingOverflow(by: outHeight)
        let (_, overflow2) = area.multipliedReportingOverflow(by: 3)
        precondition(!overflow1 && !overflow2, "resized: target size \(outWidth)x\(outHeight) overflows")
        if outWidth == width && outHeight == height { return self }
        return resized(width: outWidth, height: outHeight, filter: filter, columns: 0..<outWidth, rows: 0..<outHeight)
    }

    /// Columns `columns` and rows `rows` of `resized(width:height:filter:)`, byte for byte, computed without the rest
    /// of it. Every output pixel of each pass depends only on its own window of the pass's input, so a resize followed
    /// by a crop need only compute the pixels that survive the crop, and read only the source rows and columns their
    /// windows touch: a 15 x 40,000 strip resized to 224 x 597,333 and cropped to 224 x 224 costs a 224 x 224 image
    /// and a few source rows, not 400 MB.
    /// - Precondition: `width > 0`, `height > 0`, and the ranges inside the resized size.
    public func resized(width outWidth: Int, height outHeight: Int, filter: ResampleFilter,
                        columns: Range<Int>, rows: Range<Int>) -> RGBImage {
        precondition(outWidth > 0 && outHeight > 0, "resized: target size must be positive, got \(outWidth)x\(outHeight)")
        precondition(columns.lowerBound >= 0 && columns.upperBound <= outWidth && rows.lowerBound >= 0
                     && rows.upperBound <= outHeight, "resized: region outside the \(outWidth)x\(outHeight) result")
        if columns.isEmpty || rows.isEmpty { return RGBImage(width: columns.count, height: rows.count, pixels: []) }
        if outWidth == width && outHeight == height {
            return cropped(x: columns.lowerBound, y: rows.lowerBound, width: columns.count, height: rows.count)
        }
        if filter == .nearest { return resizedNearest(width: outWidth, height: outHeight, columns: columns, rows: rows) }

        let needHorizontal = outWidth != width
        let needVertical = outHeight != height
        let vertical = needVertical
            ? ResampleCoefficients(inSize: height, outSize: outHeight, filter: filter, outputs: rows) : nil
        let horizontal = needHorizontal
            ? ResampleCoefficients(inSize: width, outSize: outWidth, filter: filter, outputs: columns) : nil
        // The source rows and columns the kept outputs read (windows grow monotonically with the output index).
        let sourceRows = vertical.map { $0.first[0]..<($0.first[$0.outputs.count - 1] + $0.count[$0.outputs.count - 1]) }
            ?? rows
        let sourceColumns = horizontal.map {
            $0.first[0]..<($0.first[$0.outputs.count - 1] + $0.count[$0.outputs.count - 1])
        } ?? columns

        // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as
        // the width does (so the horizontal pass has fewer rows). The order changes the bytes: the intermediate
        // image is rounded to uint8.
        let heightLoss = height - outHeight
        let horizontalFirst = !(heightLoss > 0 && heightLoss > (width - outWidth) * 2)

        var current: RGBImage
        if horizontalFirst {
            if let horizontal {
                current = Self.horizontalPass(source: self, rowOffset: sourceRows.lowerBound, rows: sourceRows.count,
                                              columnShift: 0, coefficients: horizontal)
            } else {
                current = cropped(x: columns.lowerBound, y: sourceRows.lowerBound, width: columns.count,
                                  height: sourceRows.count)
            }
            if let vertical {
                current = Self.verticalPass(source: current, rowShift: sourceRows.lowerBound, coefficients: vertical)
            }
        } else {
            // Only reached when the height shrinks, so there is a vertical pass.
            current = sourceColumns.count == width
                ? self : cropped(x: sourceColumns.lowerBound, y: 0, width: sourceColumns.count, height: height)
            if let vertical {
                current = Self.verticalPass(source: current, rowShift: 0, coefficients: vertical)
            }
            if let horizontal {
                current = Self.horizontalPass(source: current, rowOffset: 0, rows: current.height,
                                              columnShift: sourceColumns.lowerBound, coefficients: horizontal)
            }
        }
        return current
    }

    /// The `width` x `height` region whose top-left corner is at (`x`, `y`) in this image; parts of the region
    /// outside the image are black, like Pillow's `Image.crop((x, y, x + width, y + height))`.
    /// - Precondition: `width >= 0`, `height >= 0`.
    public func cropped(x: Int, y: Int, width outWidth: Int, height outHeight: Int) -> RGBImage {
        precondition(outWidth >= 0 && outHeight >= 0, "cropped: size must not be negative")
        var out = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        let x0 = max(x, 0), x1 = min(x + outWidth, width)
        let y0 = max(y, 0), y1 = min(y + outHeight, height)
        if x0 < x1 && y0 < y1 {
            let rowBytes = (x1 - x0) * 3
            pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for sy in y0..<y1 {
                        let s = (sy * width + x0) * 3
                        let d = ((sy - y) * outWidth + (x0 - x)) * 3
                        for k in 0..<rowBytes { dst[d + k] = src[s + k] }
                    }
                }
            }
        }
        return RGBImage(width: outWidth, height: outHeight, pixels: out)
    }

    // MARK: - Passes

    /// Work (multiply-adds) above which a pass is split across two threads.
    private static let parallelThreshold = 2_000_000

    /// Horizontal convolution of source rows `rowOffset ..< rowOffset + rows` into a `coefficients.outputs.count` x
    /// `rows` image; the source's column 0 is column `columnShift` of the image the coefficients were made for.
    private static func horizontalPass(source: RGBImage, rowOffset: Int, rows: Int, columnShift: Int,
                                       coefficients c: ResampleCoefficients) -> RGBImage {
        let outWidth = c.outputs.count
        var out = [UInt8](repeating: 0, count: outWidth * rows * 3)
        let inRowBytes = source.width * 3
        let outRowBytes = outWidth * 3
        source.pixels.withUnsafeBufferPointer { srcBuffer in
            c.weights.withUnsafeBufferPointer { weightBuffer in
                c.first.withUnsafeBufferPointer { firstBuffer in
                    c.count.withUnsafeBufferPointer { countBuffer in
                        out.withUnsafeMutableBufferPointer { dstBuffer in
                            let src = SendablePointer(srcBuffer.baseAddress)
                            let dst = SendableMutablePointer(dstBuffer.baseAddress)
                            let weights = SendablePointer(weightBuffer.baseAddress)
                            let first = SendablePointer(firstBuffer.baseAddress)
                            let count = SendablePointer(countBuffer.baseAddress)
                            let stride = c.stride
                            let work = rows * outWidth * stride
                            parallelRows(rows, parallel: work > parallelThreshold) { rowRange in
                                guard let src = src.pointer, let dst = dst.pointer, let weights = weights.pointer,
                                      let first = first.pointer, let count = count.pointer else { return }
                                for y in rowRange {
                                    let inRow = src + (y + rowOffset) * inRowBytes
                                    var outPixel = dst + y * outRowBytes
                                    for xx in 0..<outWidth {
                                        var p = inRow + (first[xx] - columnShift) * 3
                                        var k = weights + xx * stride
                                        var s0 = ResampleCoefficients.roundingBias
                                        var s1 = s0, s2 = s0
                                        for _ in 0..<count[xx] {
                                            let w = k.pointee
                                            s0 &+= Int32(p[0]) &* w
                                            s1 &+= Int32(p[1]) &* w
                                            s2 &+= Int32(p[2]) &* w
                                            p += 3
                                            k += 1
                                        }
                                        outPixel[0] = ResampleCoefficients.clip8(s0)
                                        outPixel[1] = ResampleCoefficients.clip8(s1)
                                        outPixel[2] = ResampleCoefficients.clip8(s2)
                                        outPixel += 3
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return RGBImage(width: outWidth, height: rows, pixels: out)
    }

    /// Vertical convolution; source row `first[i] - rowShift + j` feeds output row `i` (the source may hold only the
    /// rows the windows touch, starting at original row `rowShift`).
    private static func verticalPass(source: RGBImage, rowShift: Int, coefficients c: ResampleCoefficients) -> RGBImage {
        let outHeight = c.outputs.count
        let rowBytes = source.width * 3
        var out = [UInt8](repeating: 0, count: rowBytes * outHeight)
        guard rowBytes > 0 else { return RGBImage(width: source.width, height: outHeight, pixels: out) }
        source.pixels.withUnsafeBufferPointer { srcBuffer in
            c.weights.withUnsafeBufferPointer { weightBuffer in
                out.withUnsafeMutableBufferPointer { dstBuffer in
                    let src = SendablePointer(srcBuffer.baseAddress)
                    let dst = SendableMutablePointer(dstBuffer.baseAddress)
                    let weights = SendablePointer(weightBuffer.baseAddress)
                    let first = c.first, count = c.count, stride = c.stride
                    let work = outHeight * rowBytes * stride
                    parallelRows(outHeight, parallel: work > parallelThreshold) { rowRange in
                        guard let src = src.pointer, let dst = dst.pointer, let weights = weights.pointer else { return }
                        // One Int32 accumulator per output byte of the row: the taps then stream whole source rows,
                        // which is cache friendly and vectorises. Integer sums do not depend on the order.
                        let accumulator = UnsafeMutablePointer<Int32>.allocate(capacity: rowBytes)
                        defer { accumulator.deallocate() }
                        for yy in rowRange {
                            accumulator.initialize(repeating: ResampleCoefficients.roundingBias, count: rowBytes)
                            let k = weights + yy * stride
                            let top = first[yy] - rowShift
                            for j in 0..<count[yy] {
                                let w = k[j]
                                let row = src + (top + j) * rowBytes
                                for i in 0..<rowBytes {
                                    accumulator[i] &+= Int32(row[i]) &* w
                                }
                            }
                            let outRow = dst + yy * rowBytes
                            for i in 0..<rowBytes {
                                outRow[i] = ResampleCoefficients.clip8(accumulator[i])
                            }
                        }
                    }
                }
            }
        }
        return RGBImage(width: source.width, height: outHeight, pixels: out)
    }

    /// Nearest neighbour as Pillow's `ImagingScaleAffine`: the source coordinate starts at half a step and advances
    /// by `inSize / outSize` in double precision (accumulated, not multiplied), truncated toward zero.
    private func resizedNearest(width outWidth: Int, height outHeight: Int, columns: Range<Int>,
                                rows: Range<Int>) -> RGBImage {
        var out = [UInt8](repeating: 0, count: columns.count * rows.count * 3)
        let xs = Self.nearestIndices(inSize: width, outSize: outWidth, outputs: columns)
        let ys = Self.nearestIndices(inSize: height, outSize: outHeight, outputs: rows)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for yy in 0..<rows.count {
                    let sy = ys[yy]
                    if sy < 0 { continue }  // outside the source: Pillow fills with zeros
                    let inRow = sy * width * 3
                    let outRow = yy * columns.count * 3
                    for xx in 0..<columns.count {
                        let sx = xs[xx]
                        if sx < 0 { continue }
                        dst[outRow + xx * 3] = src[inRow + sx * 3]
                        dst[outRow + xx * 3 + 1] = src[inRow + sx * 3 + 1]
                        dst[outRow + xx * 3 + 2] = src[inRow + sx * 3 + 2]
                    }
                }
            }
        }
        return RGBImage(width: columns.count, height: rows.count, pixels: out)
    }

    /// Source index for each output index in `outputs`, or -1 when it falls outside the source. The position is
    /// accumulated from index 0 as Pillow does, so the doubles are the same whatever range is asked for.
    private static func nearestIndices(inSize: Int, outSize: Int, outputs: Range<Int>) -> [Int] {
        let step = Double(Float(inSize) - Float(0)) / Double(outSize)
        var position = Double(Float(0)) + step * 0.5
        var indices = [Int](repeating: -1, count: outputs.count)
        for i in 0..<outputs.upperBound {
            if i >= outputs.lowerBound {
                let index = position < 0 ? -1 : Int(position)
                if index >= 0 && index < inSize { indices[i - outputs.lowerBound] = index }
            }
            position += step
        }
        return indices
    }
}

// MARK: - Threading helpers

/// A read-only pointer handed to worker threads; each worker reads disjoint or shared immutable memory.
private struct SendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafePointer<T>?
    init(_ pointer: UnsafePointer<T>?) { self.pointer = pointer }
}

/// A writable pointer handed to worker threads; workers write disjoint row ranges.
private struct SendableMutablePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>?
    init(_ pointer: UnsafeMutablePointer<T>?) { self.pointer = pointer }
}

/// Runs `body` over `0..<rows`, split in two halves on two threads when `parallel` is true (the machine this is
/// tuned for has two cores).
private func parallelRows(_ rows: Int, parallel: Bool, _ body: @Sendable (Range<Int>) -> Void) {
    guard parallel && rows >= 2 else {
        body(0..<rows)
        return
    }
    let half = rows / 2
    DispatchQueue.concurrentPerform(iterations: 2) { part in
        body(part == 0 ? 0..<half : half..<rows)
    }
}
