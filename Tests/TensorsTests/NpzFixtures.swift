// Access to the kernel goldens (Tests/Fixtures/kernels/<name>.npz, from tools/reference/make_kernel_fixtures.py)
// through TensorFiles' npz reader.
import Foundation
import TensorFiles

struct FixtureError: Error, CustomStringConvertible {
    let description: String
}

/// One array from a fixture: shape and values as Float (float32 and int64 arrays).
struct FixtureArray {
    let shape: [Int]
    let values: [Float]
    var ints: [Int] { values.map { Int($0) } }
}

/// All arrays of one `Tests/Fixtures/kernels/<name>.npz`.
struct KernelFixture {
    let arrays: [String: FixtureArray]

    init(_ name: String) throws {
        var root = URL(fileURLWithPath: #filePath)
        while root.lastPathComponent != "Tests" { root.deleteLastPathComponent() }
        let archive = try NPZArchive(contentsOf: root.appendingPathComponent("Fixtures/kernels/\(name).npz"))
        var arrays: [String: FixtureArray] = [:]
        for key in archive.names {
            let raw = try archive.array(key)
            let values = raw.dtype == .int64 ? try raw.int64s().map { Float($0) } : raw.floats()
            arrays[key] = FixtureArray(shape: raw.shape, values: values)
        }
        self.arrays = arrays
    }

    subscript(_ key: String) -> FixtureArray {
        get throws {
            guard let array = arrays[key] else { throw FixtureError(description: "fixture has no array \(key)") }
            return array
        }
    }
}

/// Largest |a − b| relative to max(1, max |b|): the tolerance scale for float32 kernels.
func maxRelativeError(_ actual: [Float], _ expected: [Float]) -> Float {
    guard actual.count == expected.count else { return .infinity }
    let scale = max(1, expected.map(abs).max() ?? 1)
    var worst: Float = 0
    for (a, e) in zip(actual, expected) {
        let d = abs(a - e)
        if !(d <= worst) { worst = d.isNaN ? .infinity : d }
    }
    return worst / scale
}
