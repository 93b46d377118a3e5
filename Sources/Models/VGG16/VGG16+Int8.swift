import Embedding
import Imaging
import PosterSimCore
import Tensors

// VGG16 at `--precision int8` (issue 17). What runs in int8 and why:
//
// - conv1_1 stays float32. Its input is the normalised image (signed, so it would need s8 and a scale of its own,
//   losing about half of the image's 8-bit resolution) and it is the cheapest layer (3 input channels: about 2% of
//   the convolutions' time). Its float output is quantised on the way into conv1_2.
// - conv1_2 … conv5_3 (12 layers, 98% of the convolution time) run as `QuantizedConv2d`: s8 weights per output
//   channel, u8 activations (every layer ends in ReLU, so activations are non-negative and u8 keeps all 8 bits for
//   them), s32 sums, the scales as oneDNN output scales, ReLU fused. Max pooling works on the u8 maps directly (the
//   maximum commutes with a positive scale), so the scale after a pool is the scale before it.
// - The final 7×7 map is dequantised to float32 (so the head's pooling and patch paths stay as they are) and fc6
//   quantises it again with the same scale, which gives back the u8 values exactly: fc6 runs as an int8 matmul (s8
//   weights per output, a quarter of its 411 MB of float32 weights, which it reads once per batch), float32 output.
//   fc7 stays float32: its output is the vector. With fc6 in int8 too, VGG16 took about 15 ms less CPU per image
//   than with a float32 head and 300 MB less resident memory (KernelChoice.swift), at a fidelity cost of min cosine
//   0.99974 instead of 0.99976 and top-10 overlap 0.977 instead of 0.979 on the full-size checkpoint.
//
// The activation scales: one per layer boundary, s = 255 / m, where m is the largest value that boundary's float32
// activation reached over a calibration pass at load: the fp32 network over `CalibrationPosters` (16 generated
// posters from a fixed seed, through the model folder's own preprocessing). So the scales depend only on the
// checkpoint (and on code), never on the images being embedded or on which images share a batch: a vector depends
// on its image and the checkpoint alone, as the store's identity (`;precision=int8`) promises. Larger activations
// on a real poster saturate at 255 / s; the fidelity tests (Tests/ModelsTests/PrecisionTests.swift on the fixture
// checkpoint, `make parity` on the full-size one) bound what that costs. Dynamic per-batch scales were rejected:
// they make a vector depend on its batch-mates. The maximum rather than a percentile: a percentile clips the
// rare large activations that decide the top of fc7, and with 8 bits for non-negative values the maximum's
// resolution measured enough (KernelChoice.swift).

extension VGGFeatures {
    /// Runs the convolution stack on `input`; `observe` sees each convolution's output (index, tensor) while it
    /// is alive. An int8 stack's final map is dequantised to plain float32.
    func run(_ input: Tensor, relay: inout WorkspaceRelay,
             observe: ((Int, Tensor) throws -> Void)? = nil) throws -> Tensor {
        var x = input
        var index = 0
        for step in steps {
            switch step {
            case .conv(let layer):
                x = try relay.run(x) { ws in try layer.conv(x, workspace: ws) }
                try observe?(index, x)
                index += 1
            case .quantized(let conv):
                x = try relay.run(x) { ws in try conv(x, workspace: ws) }
                index += 1
            case .pool(let pool):
                x = try relay.run(x) { ws in try pool(x, workspace: ws) }
            }
        }
        if let outputScale {
            x = try relay.run(x) { ws in try ws.dequantized(x, scale: outputScale) }
        }
        return x
    }

    /// The largest value each convolution's (ReLU) output reaches over `images` `[N, C, H, W]`, run in groups of
    /// `VGG16.maxImagesPerConvolutionPass`.
    func activationMaxima(_ images: ImageTensor, workspaces: WorkspacePool) throws -> [Float] {
        guard images.shape.count == 4, images.shape[0] >= 1, images.shape[1] == inChannels else {
            throw ModelError.badInput("calibration images must be [N, \(inChannels), H, W], got \(images.shape)")
        }
        var maxima = [Float](repeating: 0, count: widths.count)
        let count = images.shape[0], imageSize = images.values.count / count
        try workspaces.withWorkspaces { pair in
            for start in stride(from: 0, to: count, by: VGG16.maxImagesPerConvolutionPass) {
                let n = min(VGG16.maxImagesPerConvolutionPass, count - start)
                let batch = try Tensor(shape: [n] + images.shape.dropFirst(),
                                       values: Array(images.values[(start * imageSize)..<((start + n) * imageSize)]))
                var relay = WorkspaceRelay(pair)
                _ = try run(batch, relay: &relay) { index, output in
                    maxima[index] = max(maxima[index], try output.maximum())
                }
                pair.0.reset()
                pair.1.reset()
            }
        }
        return maxima
    }

    /// The int8 stack: the float32 stack is built, calibrated on `calibration`, and its layers after the first
    /// replaced by `QuantizedConv2d`s with the scales the calibration gives (see the comment at the top).
    static func int8(_ source: VGGTensorSource, calibration: ImageTensor, convolutions: ConvolutionAlgorithm,
                     workspaces: WorkspacePool) throws -> VGGFeatures {
        let size = calibration.shape.count == 4 ? calibration.shape[2] : 224
        let float = try VGGFeatures(source, expectedInput: size, convolutions: convolutions, precision: .fp32)
        let maxima = try float.activationMaxima(calibration, workspaces: workspaces)
        // The calibration's activation arenas would otherwise stay resident next to fc6's quantisation, which
        // follows (the load's peak); inference grows them again as it needs.
        workspaces.releaseIdle()
        func scale(_ maximum: Float) -> Float { maximum > 0 && maximum.isFinite ? 255 / maximum : 1 }
        var steps: [Step] = []
        var index = 0, mapSize = size
        for step in float.steps {
            switch step {
            case .conv(let layer) where index == 0:
                steps.append(.conv(layer))
                index += 1
            case .conv(let layer):
                let weightName = "\(layer.key).weight", biasName = "\(layer.key).bias"
                let shape = [layer.conv.outChannels, layer.conv.inChannels, 3, 3]
                steps.append(.quantized(try QuantizedConv2d(
                    weight: source.floats(weightName, shape: shape).values, weightShape: shape,
                    bias: source.floats(biasName, shape: [shape[0]]).values, stride: 1, padding: 1,
                    inputScale: scale(maxima[index - 1]), outputScale: scale(maxima[index]),
                    expectedInput: (max(mapSize, 1), max(mapSize, 1)),
                    weightSource: { try source.floats(weightName, shape: shape).values })))
                index += 1
            case .quantized:
                throw ModelError.badInput("the float32 stack holds an int8 layer")
            case .pool(let pool):
                steps.append(.pool(pool))
                mapSize /= 2
            }
        }
        return VGGFeatures(steps: steps, inChannels: float.inChannels, widths: float.widths,
                           outputScale: scale(maxima.last ?? 0))
    }

    /// Bytes of the int8 layers' s8 weights (0 for a float stack).
    var quantizedWeightBytes: Int {
        steps.reduce(0) { total, step in
            if case .quantized(let conv) = step { return total + conv.weightBytes }
            return total
        }
    }
}

extension VGG16 {
    /// Bytes of the s8 convolution weights at `.int8` (0 at other precisions): what replaces the float32
    /// convolution weights (and their Winograd copies) of the other precisions.
    public var quantizedWeightBytes: Int { featureLayers.quantizedWeightBytes }
}
