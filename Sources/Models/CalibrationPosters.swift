import Imaging
import PosterSimCore

/// Poster-like pictures made from a fixed seed, for int8 calibration (`VGG16`'s activation scales): the same
/// pixels on every machine and every run, so a model's int8 vectors depend only on their image and the checkpoint.
///
/// Each picture mixes what drives a convolution's largest responses on real posters: a two-colour gradient, a
/// soft disc, hard-edged boxes, a band of high-contrast "title" strokes, a patch of fine texture and pixel
/// noise, at the poster sizes TMDB serves (2:3).
public enum CalibrationPosters {
    /// The seed of the set the models calibrate on. Changing it (or `count`, or the drawing) changes int8 vectors,
    /// so it would have to change the int8 identity too; keep it fixed.
    public static let seed: UInt64 = 0x1717_0008
    /// Pictures in the set: enough for stable maxima (the trial's ONNX Runtime calibration used 16), few enough to
    /// keep the pass at load near a second for VGG16 on a quiet machine. 8 measured a little worse (full-size
    /// VGG16 on 48 other generated posters: top-10 overlap 0.969 against 0.977) for half the load cost.
    public static let count = 16

    /// The calibration set: `count` pictures from `seed`.
    public static func images(count: Int = CalibrationPosters.count, seed: UInt64 = CalibrationPosters.seed) -> [RGBImage] {
        var rng = SplitMix64(seed: seed)
        let sizes = [(300, 450), (342, 513), (185, 278), (500, 750)]
        return (0..<count).map { i in poster(width: sizes[i % sizes.count].0, height: sizes[i % sizes.count].1, &rng) }
    }

    static func poster(width: Int, height: Int, _ rng: inout SplitMix64) -> RGBImage {
        func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * (rng.nextFloat() + 1) / 2 }
        func colour() -> [Float] { (0..<3).map { _ in uniform(0, 255) } }
        var canvas = [Float](repeating: 0, count: width * height * 3)
        let top = colour(), bottom = colour(), tilt = (0..<3).map { _ in uniform(-70, 70) }
        for y in 0..<height {
            let ty = Float(y) / Float(max(height - 1, 1))
            for x in 0..<width {
                let tx = Float(x) / Float(max(width - 1, 1)) - 0.5
                for c in 0..<3 { canvas[(y * width + x) * 3 + c] = top[c] * (1 - ty) + bottom[c] * ty + tx * tilt[c] }
            }
        }
        // A soft-edged disc.
        let cx = uniform(0.2, 0.8) * Float(width), cy = uniform(0.15, 0.55) * Float(height)
        let radius = uniform(0.12, 0.35) * Float(min(width, height)), disc = colour()
        for y in 0..<height {
            for x in 0..<width {
                let d = ((Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy)).squareRoot()
                let a = min(max(radius - d + 0.5, 0), 1)
                guard a > 0 else { continue }
                for c in 0..<3 { canvas[(y * width + x) * 3 + c] = canvas[(y * width + x) * 3 + c] * (1 - a) + disc[c] * a }
            }
        }
        // Hard-edged boxes.
        for _ in 0..<3 {
            let x0 = Int(uniform(0, Float(width))), y0 = Int(uniform(0, Float(height)))
            let x1 = min(width, x0 + 1 + Int(uniform(0, 0.4) * Float(width)))
            let y1 = min(height, y0 + 1 + Int(uniform(0, 0.3) * Float(height)))
            let fill = colour()
            for y in y0..<y1 { for x in x0..<x1 { for c in 0..<3 { canvas[(y * width + x) * 3 + c] = fill[c] } } }
        }
        // A patch of fine texture (stripes at a random frequency and angle, as fabric, hair or foliage give).
        let px0 = Int(uniform(0, 0.5) * Float(width)), py0 = Int(uniform(0, 0.6) * Float(height))
        let px1 = min(width, px0 + width / 3), py1 = min(height, py0 + height / 4)
        let (fx, fy, amplitude) = (uniform(0.2, 1.5), uniform(0.2, 1.5), uniform(30, 110))
        for y in py0..<py1 {
            for x in px0..<px1 {
                let v = amplitude * Float.sinApprox(fx * Float(x) + fy * Float(y))
                for c in 0..<3 { canvas[(y * width + x) * 3 + c] += v }
            }
        }
        // Title strokes near the bottom: dark on a light background, light on a dark one.
        let bandY = Int(Float(height) * 0.78), bandHeight = max(1, height / 16)
        let background = (0..<3).map { canvas[(bandY * width + width / 2) * 3 + $0] }.reduce(0, +) / 3
        let ink = background > 128 ? (0..<3).map { _ in uniform(0, 40) } : (0..<3).map { _ in uniform(215, 255) }
        var x = width / 10
        while x < width - width / 10 {
            let glyph = 1 + Int(uniform(1, Float(max(2, width / 25 + 2))))
            if uniform(0, 1) < 0.8 {
                for y in bandY..<min(height, bandY + bandHeight) {
                    for gx in x..<min(width, x + glyph) { for c in 0..<3 { canvas[(y * width + gx) * 3 + c] = ink[c] } }
                }
            }
            x += glyph + 1 + Int(uniform(0, Float(max(1, width / 40 + 1))))
        }
        let pixels = canvas.map { UInt8(min(max(($0 + uniform(-8, 8)).rounded(), 0), 255)) }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}

private extension Float {
    /// sin on the real line from a parabola per half period: enough for a texture, and the same bits on every
    /// platform (libm's sin may differ in the last place between machines, which would move calibration maxima).
    static func sinApprox(_ x: Float) -> Float {
        let period = 2 * Float.pi
        var t = x - period * (x / period).rounded(.down)  // [0, 2π)
        let sign: Float = t < .pi ? 1 : -1
        if t >= .pi { t -= .pi }
        return sign * 4 * t * (.pi - t) / (.pi * .pi)
    }
}
