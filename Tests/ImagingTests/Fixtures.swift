import Foundation
import Imaging
import TensorFiles

// Shared access to the golden files under Tests/Fixtures (written by tools/reference/make_fixtures.py; contract in
// tools/reference/README.md). Arrays are read with TensorFiles' NPZArchive, the same reader the product uses.

/// Paths into Tests/Fixtures and loaders for its .npz goldens.
enum Fixtures {
    /// Tests/ImagingTests/<this file> -> Tests -> Tests/Fixtures.
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// A file or directory under Tests/Fixtures, e.g. `url("preprocess/clip.npz")`.
    static func url(_ relativePath: String) -> URL {
        root.appendingPathComponent(relativePath)
    }

    /// A tiny reference checkpoint directory, e.g. `checkpoint("clip")`.
    static func checkpoint(_ name: String) -> URL {
        url("checkpoints").appendingPathComponent(name)
    }

    /// The bytes of a generated test image in Tests/Fixtures/images.
    static func imageBytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url("images").appendingPathComponent(name)))
    }

    /// An .npz golden under Tests/Fixtures, e.g. `npz("decoded.npz")`.
    static func npz(_ relativePath: String) throws -> NPZArchive {
        try NPZArchive(contentsOf: url(relativePath))
    }

    /// decoded.npz (file name -> Pillow `convert("RGB")` array), read once for the whole test run.
    static let decodedArrays: Result<[String: RawTensor], any Error> = Result {
        let archive = try npz("decoded.npz")
        var arrays: [String: RawTensor] = [:]
        for name in archive.names { arrays[name] = try archive.array(name) }
        return arrays
    }

    /// decoded.npz as a dictionary (throws the load error, if any, in the calling test).
    static func decoded() throws -> [String: RawTensor] {
        try decodedArrays.get()
    }
}

/// A golden that does not have the layout a test expects.
struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension RawTensor {
    /// The array as an image; it must be uint8 with shape [height, width, 3].
    func rgbImage() throws -> RGBImage {
        guard dtype == .uint8, shape.count == 3, shape[2] == 3 else {
            throw FixtureError("expected uint8 HxWx3, got \(dtype.rawValue) \(shape)")
        }
        return RGBImage(width: shape[1], height: shape[0], pixels: try uint8s())
    }

    /// The values of a float32 array (no conversion from other dtypes, so a wrongly typed golden is caught).
    func float32Values() throws -> [Float] {
        guard dtype == .float32 else { throw FixtureError("expected float32, got \(dtype.rawValue) \(shape)") }
        return floats()
    }
}
