// Full-size ViT-B/32 check and timing, on the random-weight checkpoint and goldens that
// `tools/reference/make_fixtures.py --full-size` writes (HF cache layout). Runs only when POSTERSIM_FULL_SIZE
// names that directory (e.g. /tmp/postersim-full); meant for `swift test -c release --filter CLIPFullSize`.
import Foundation
import Imaging
import Models
import TensorFiles
import Testing

@Suite struct CLIPFullSizeTests {
    static let root = ProcessInfo.processInfo.environment["POSTERSIM_FULL_SIZE"].map { URL(fileURLWithPath: $0) }

    static func snapshot() throws -> URL {
        let snapshots = try #require(root).appendingPathComponent("models--openai--clip-vit-base-patch32/snapshots")
        return try #require(try FileManager.default.contentsOfDirectory(at: snapshots, includingPropertiesForKeys: nil)
            .sorted { $0.path < $1.path }.first)
    }

    @Test(.enabled(if: root != nil))
    func fullSizeParityAndTiming() throws {
        let model = try CLIPModel.load(from: Self.snapshot())
        let goldens = try NPZArchive(contentsOf: try #require(Self.root).appendingPathComponent("goldens/reference.npz"))
        var inputs: [Float] = []
        var count = 0
        for name in goldens.names where name.hasSuffix("__clip") {
            let input = try goldens.array(name + "_tensor").floats()
            let comparison = CLIPComparison(try model.forward(ImageTensor(shape: [3, 224, 224], values: input))[0],
                                            try goldens.array(name).floats())
            #expect(comparison.cosine >= 0.9999 && comparison.withinTolerance, "\(name): \(comparison)")
            inputs += input
            count += 1
        }
        #expect(count > 0)
        // Batch 1 and batch 8 (the golden inputs repeated), ms per image after a warm-up.
        let batch8 = ImageTensor(shape: [8, 3, 224, 224],
                                 values: (0..<8).flatMap { i in inputs[(i % count) * 150528..<((i % count) + 1) * 150528] })
        let batch1 = ImageTensor(shape: [1, 3, 224, 224], values: Array(inputs[0..<150528]))
        for (label, batch, images) in [("batch 1", batch1, 1), ("batch 8", batch8, 8)] {
            _ = try model.forward(batch)
            var times: [Double] = []
            for _ in 0..<5 {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try model.forward(batch)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(images))
            }
            print("CLIP ViT-B/32 image \(label): median \(times.sorted()[2]) ms/image")
        }
    }
}
