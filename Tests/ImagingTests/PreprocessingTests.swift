import CZlib
import Foundation
import Imaging
import Testing

// Goldens: Tests/Fixtures/preprocess/{clip,resnet50,vgg16}.npz and decoded.npz, written by
// tools/reference/ref_preprocess.py (transformers CLIPImageProcessorPil / ConvNextImageProcessorPil, timm eval
// transform). Inputs are the Pillow-decoded RGB arrays, so these tests do not depend on the decoder.

/// The three reference processors and the checkpoint directory holding each one's config.
let preprocessingModels = ["clip", "resnet50", "vgg16"]

@Suite struct PreprocessingGoldenTests {
    @Test(arguments: preprocessingModels)
    func resizedAndTensorMatchReference(model: String) throws {
        let preprocessor = try ImagePreprocessor.load(modelDirectory: ResampleFixtures.checkpoint(model))
        let decoded = try ResampleFixtures.decoded()
        let golden = try ResampleFixtureArchive(url: ResampleFixtures.root.appendingPathComponent("preprocess/\(model).npz"))

        var resizedChecked = 0, tensorsChecked = 0
        var maxDifference: Float = 0
        for key in golden.keys.sorted() {
            guard let split = key.range(of: "__", options: .backwards) else { continue }
            let file = String(key[..<split.lowerBound]), kind = String(key[split.upperBound...])
            let input = try #require(decoded[file], "no decoded input for \(file)")
            let image = try input.rgbImage()
            let expected = try golden.array(key)
            switch kind {
            case "resized":
                let resized = try preprocessor.resize(image)
                let reference = try expected.rgbImage()
                #expect(resized.width == reference.width && resized.height == reference.height,
                        "\(model) \(file): resized to \(resized.width)x\(resized.height), reference \(reference.width)x\(reference.height)")
                #expect(resized.pixels == reference.pixels, "\(model) \(file): resized bytes differ from Pillow")
                resizedChecked += 1
            case "tensor":
                let tensor = try preprocessor.tensor(for: image)
                #expect(tensor.shape == expected.shape, "\(model) \(file): shape \(tensor.shape) vs \(expected.shape)")
                let reference = try expected.floats()
                guard tensor.values.count == reference.count else { continue }
                var difference: Float = 0
                for (a, b) in zip(tensor.values, reference) { difference = max(difference, abs(a - b)) }
                #expect(difference <= 1e-6, "\(model) \(file): max |difference| \(difference)")
                maxDifference = max(maxDifference, difference)
                tensorsChecked += 1
            default:
                continue
            }
        }
        print("\(model): \(resizedChecked) resized images exact, \(tensorsChecked) tensors, max |difference| \(maxDifference)")
        #expect(resizedChecked > 0 && tensorsChecked > 0, "\(model): the golden file holds no arrays")
    }

    /// Every ok image goes through every pipeline without error and gives a [3, 224, 224] tensor; the uint8
    /// image after resize+crop equals the crop of the resized image taken at the reference offsets.
    @Test(arguments: preprocessingModels)
    func everyDecodedImageGivesModelInput(model: String) throws {
        let preprocessor = try ImagePreprocessor.load(modelDirectory: ResampleFixtures.checkpoint(model))
        let decoded = try ResampleFixtures.decoded()
        #expect(decoded.count > 10)
        for (file, array) in decoded {
            let tensor = try preprocessor.tensor(for: array.rgbImage())
            #expect(tensor.shape == [3, 224, 224], "\(model) \(file)")
            #expect(tensor.values.allSatisfy { $0.isFinite }, "\(model) \(file)")
        }
    }

    @Test func batchStacksTensors() throws {
        let preprocessor = try ImagePreprocessor.load(modelDirectory: ResampleFixtures.checkpoint("clip"))
        let decoded = try ResampleFixtures.decoded()
        let names = decoded.keys.sorted().prefix(3)
        let images = try names.map { try decoded[$0]!.rgbImage() }
        let batch = try preprocessor.batch(images)
        #expect(batch.shape == [3, 3, 224, 224])
        let singles = try images.flatMap { try preprocessor.tensor(for: $0).values }
        #expect(batch.values == singles)
        let empty = try preprocessor.batch([])
        #expect(empty.values.isEmpty && empty.shape.first == 0)
    }
}

@Suite struct PreprocessingConfigTests {
    private func transformers(_ json: String) throws -> PreprocessingConfig {
        try PreprocessingConfig.fromTransformers(json: Data(json.utf8))
    }

    private func timm(_ json: String) throws -> PreprocessingConfig {
        try PreprocessingConfig.fromTimm(json: Data(json.utf8))
    }

    @Test func loadsEachFixtureCheckpointKind() throws {
        let clip = try PreprocessingConfig.load(modelDirectory: ResampleFixtures.checkpoint("clip"))
        #expect(clip.filter == .bicubic)
        #expect(clip.centerCrops.map(\.rounding) == [.transformers])
        let resnet = try PreprocessingConfig.load(modelDirectory: ResampleFixtures.checkpoint("resnet50"))
        #expect(resnet.filter == .bicubic)
        #expect(resnet.centerCrops.map(\.rounding) == [.transformers])
        let vgg = try PreprocessingConfig.load(modelDirectory: ResampleFixtures.checkpoint("vgg16"))
        #expect(vgg.filter == .bilinear)
        #expect(vgg.centerCrops.map(\.rounding) == [.torchvision])
        #expect(vgg.rescale == .divideBy255InFloat32)
    }

    @Test func sizeForms() throws {
        // An int size is a shortest edge (default_to_square is False for both classes); a dict is taken as is.
        let a = try transformers(#"{"image_processor_type": "CLIPImageProcessor", "size": 300}"#)
        let b = try transformers(#"{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 300}}"#)
        #expect(a == b)
        #expect(a.resize == .shortestEdge(300))
        let c = try transformers(#"{"image_processor_type": "CLIPImageProcessor", "size": {"height": 10, "width": 20}, "crop_size": [5, 6]}"#)
        #expect(c.resize == .exact(width: 20, height: 10))
        #expect(c.centerCrops == [.init(width: 6, height: 5, rounding: .transformers)])
        // null means "class default", as in transformers.
        let d = try transformers(#"{"image_processor_type": "CLIPImageProcessor", "size": null, "resample": null}"#)
        #expect(d == (try transformers(#"{"image_processor_type": "CLIPImageProcessor"}"#)))
    }

    @Test func convNextBranches() throws {
        // Below 384: shortest edge int(size / crop_pct), then a square crop; from 384: warp, no crop.
        let small = try transformers(#"{"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 224}, "crop_pct": 0.5}"#)
        #expect(small.resize == .shortestEdge(448))
        #expect(small.centerCrops == [.init(width: 224, height: 224, rounding: .transformers)])
        let large = try transformers(#"{"feature_extractor_type": "ConvNextFeatureExtractor", "size": 384}"#)
        #expect(large.resize == .exact(width: 384, height: 384))
        #expect(large.centerCrops.isEmpty)
        let image = RGBImage(width: 30, height: 50, pixels: [UInt8](repeating: 7, count: 30 * 50 * 3))
        let tensor = try ImagePreprocessor(config: large).tensor(for: image)
        #expect(tensor.shape == [3, 384, 384])
        #expect(throws: PreprocessingError.self) {
            try transformers(#"{"image_processor_type": "ConvNextImageProcessor", "size": {"height": 5, "width": 5}}"#)
        }
    }

    @Test func timmModes() throws {
        let squash = try timm(#"{"pretrained_cfg": {"input_size": [3, 100, 200], "crop_pct": 1.0, "crop_mode": "squash"}}"#)
        #expect(squash.resize == .exact(width: 200, height: 100))
        #expect(squash.filter == .bicubic)  // timm's default interpolation
        #expect(throws: PreprocessingError.unsupported("timm crop_mode border")) {
            try timm(#"{"pretrained_cfg": {"crop_mode": "border"}}"#)
        }
        #expect(throws: PreprocessingError.self) {
            try timm(#"{"pretrained_cfg": {"input_size": [3, 224, 288]}}"#)
        }
    }

    @Test(arguments: [
        "",
        "not json",
        "[1, 2]",
        #"{"size": 224}"#,
        #"{"image_processor_type": "ViTImageProcessor"}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "size": "big"}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "size": 0}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "size": 1e12}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "size": 22.5}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "size": {"longest_edge": 5}}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "resample": 9}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "do_resize": "yes"}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "image_mean": [0.5, 0.5]}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "image_std": [0.5, 0, 0.5]}"#,
        #"{"image_processor_type": "CLIPImageProcessor", "crop_size": {"shortest_edge": 3}}"#,
        #"{"image_processor_type": "ConvNextImageProcessor", "size": 224, "crop_pct": -1}"#,
        #"{"image_processor_type": "ConvNextImageProcessor", "size": 224, "crop_pct": 0.00001}"#,
        #"{"image_processor_type": "ConvNextImageProcessor", "do_center_crop": true}"#,
    ])
    func badTransformersConfigsThrow(json: String) {
        #expect(throws: PreprocessingError.self) { try transformers(json) }
    }

    @Test(arguments: [
        #"{"pretrained_cfg": 3}"#,
        #"{"pretrained_cfg": {"input_size": [3, 224]}}"#,
        #"{"pretrained_cfg": {"input_size": [1, 224, 224]}}"#,
        #"{"pretrained_cfg": {"input_size": [3, -4, 224]}}"#,
        #"{"pretrained_cfg": {"interpolation": "cubic-ish"}}"#,
        #"{"pretrained_cfg": {"mean": [0.1, "x", 0.2]}}"#,
        #"{"pretrained_cfg": {"std": [1, 1]}}"#,
        #"{"pretrained_cfg": {"crop_pct": "high"}}"#,
    ])
    func badTimmConfigsThrow(json: String) {
        #expect(throws: PreprocessingError.self) { try timm(json) }
    }

    @Test func missingConfigAndEmptyImageAreErrors() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("postersim-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: PreprocessingError.configNotFound(directory: empty.path)) {
            try ImagePreprocessor.load(modelDirectory: empty)
        }
        let preprocessor = try ImagePreprocessor.load(modelDirectory: ResampleFixtures.checkpoint("vgg16"))
        #expect(throws: PreprocessingError.emptyImage(width: 0, height: 5)) {
            try preprocessor.tensor(for: RGBImage(width: 0, height: 5, pixels: []))
        }
        // A 1 x 100000 strip would need a 224 x 22.4M intermediate: refused, not allocated.
        let strip = RGBImage(width: 1, height: 100_000, pixels: [UInt8](repeating: 0, count: 300_000))
        #expect(throws: PreprocessingError.self) { try preprocessor.resize(strip) }
    }
}

// MARK: - Fixture access (private npz reader; switch to TensorFiles once it is on main)

enum ResampleFixtures {
    static let root: URL = {
        // Tests/ImagingTests/<this file> -> package root -> Tests/Fixtures
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")
    }()

    static func checkpoint(_ name: String) -> URL {
        root.appendingPathComponent("checkpoints").appendingPathComponent(name)
    }

    /// decoded.npz: file name -> Pillow `convert("RGB")` array.
    static func decoded() throws -> [String: NPYArray] {
        let archive = try ResampleFixtureArchive(url: root.appendingPathComponent("decoded.npz"))
        var out: [String: NPYArray] = [:]
        for key in archive.keys { out[key] = try archive.array(key) }
        return out
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A NumPy array read from a .npy entry: uint8 or little-endian float32, C order.
struct NPYArray {
    let dtype: String
    let shape: [Int]
    let data: [UInt8]

    init(npy bytes: [UInt8]) throws {
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw FixtureError("not a .npy file")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else {
            guard bytes.count >= 12 else { throw FixtureError("short .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        }
        guard headerStart + headerLength <= bytes.count,
              let header = String(bytes: bytes[headerStart..<headerStart + headerLength], encoding: .ascii) else {
            throw FixtureError("bad .npy header")
        }
        guard !header.contains("'fortran_order': True") else { throw FixtureError("fortran order") }
        guard let descrRange = header.range(of: "'descr': '") else { throw FixtureError("no descr") }
        let afterDescr = header[descrRange.upperBound...]
        dtype = String(afterDescr.prefix { $0 != "'" })
        guard let shapeStart = header.range(of: "'shape': ("), let shapeEnd = header[shapeStart.upperBound...].firstIndex(of: ")") else {
            throw FixtureError("no shape")
        }
        shape = try header[shapeStart.upperBound..<shapeEnd].split(separator: ",").compactMap { part in
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { return nil }
            guard let n = Int(t) else { throw FixtureError("bad shape \(t)") }
            return n
        }
        data = Array(bytes[(headerStart + headerLength)...])
        let itemSize = dtype == "|u1" ? 1 : (dtype == "<f4" ? 4 : 0)
        guard itemSize > 0 else { throw FixtureError("unsupported dtype \(dtype)") }
        guard data.count == shape.reduce(1, *) * itemSize else { throw FixtureError("data size mismatch") }
    }

    func rgbImage() throws -> RGBImage {
        guard dtype == "|u1", shape.count == 3, shape[2] == 3 else {
            throw FixtureError("expected uint8 HxWx3, got \(dtype) \(shape)")
        }
        return RGBImage(width: shape[1], height: shape[0], pixels: data)
    }

    func floats() throws -> [Float] {
        guard dtype == "<f4" else { throw FixtureError("expected float32, got \(dtype)") }
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).littleEndian) }
        }
    }
}

/// Minimal reader for the zip files `np.savez_compressed` writes (stored or deflated entries, zip64 extras).
struct ResampleFixtureArchive {
    private let bytes: [UInt8]
    /// key (entry name without ".npy") -> (local header offset, compressed size, uncompressed size, method)
    private var entries: [String: (offset: Int, compressed: Int, size: Int, method: Int)] = [:]

    var keys: [String] { Array(entries.keys) }

    init(url: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: url))
        self.bytes = bytes
        func u16(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        func u64(_ o: Int) -> Int { u32(o) | u32(o + 4) << 32 }
        guard bytes.count >= 22 else { throw FixtureError("too short for a zip") }
        var eocd = bytes.count - 22
        while eocd >= 0 && u32(eocd) != 0x0605_4b50 { eocd -= 1 }
        guard eocd >= 0 else { throw FixtureError("no end of central directory") }
        var count = u16(eocd + 10)
        var cd = u32(eocd + 16)
        if cd == 0xFFFF_FFFF || count == 0xFFFF {
            // zip64 end of central directory locator sits just before the EOCD record.
            let locator = eocd - 20
            guard locator >= 0, u32(locator) == 0x0706_4b50 else { throw FixtureError("bad zip64 locator") }
            let record = u64(locator + 8)
            count = u64(record + 32)
            cd = u64(record + 48)
        }
        var p = cd
        for _ in 0..<count {
            guard u32(p) == 0x0201_4b50 else { throw FixtureError("bad central directory entry") }
            let method = u16(p + 10)
            var compressed = u32(p + 20), size = u32(p + 24)
            let nameLength = u16(p + 28), extraLength = u16(p + 30), commentLength = u16(p + 32)
            var offset = u32(p + 42)
            let name = String(decoding: bytes[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            // zip64 extra field: present values replace the 0xFFFFFFFF placeholders, in this order.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = u16(e), length = u16(e + 2)
                if id == 1 {
                    var q = e + 4
                    if size == 0xFFFF_FFFF { size = u64(q); q += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = u64(q); q += 8 }
                    if offset == 0xFFFF_FFFF { offset = u64(q); q += 8 }
                }
                e += 4 + length
            }
            let key = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name
            entries[key] = (offset, compressed, size, method)
            p = extraEnd + commentLength
        }
    }

    func array(_ key: String) throws -> NPYArray {
        guard let entry = entries[key] else { throw FixtureError("no entry \(key)") }
        let local = entry.offset
        let nameLength = Int(bytes[local + 26]) | Int(bytes[local + 27]) << 8
        let extraLength = Int(bytes[local + 28]) | Int(bytes[local + 29]) << 8
        let start = local + 30 + nameLength + extraLength
        let raw = Array(bytes[start..<(start + entry.compressed)])
        switch entry.method {
        case 0:
            return try NPYArray(npy: raw)
        case 8:
            return try NPYArray(npy: Self.inflate(raw, size: entry.size))
        default:
            throw FixtureError("unsupported zip method \(entry.method)")
        }
    }

    private static func inflate(_ input: [UInt8], size: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: size)
        var stream = z_stream()
        guard inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw FixtureError("inflateInit failed")
        }
        defer { inflateEnd(&stream) }
        var input = input
        let status = input.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.next_in = inBuffer.baseAddress
                stream.avail_in = UInt32(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = UInt32(outBuffer.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == size else { throw FixtureError("inflate failed (\(status))") }
        return output
    }
}
