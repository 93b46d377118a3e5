// A tiny private reader for the kernel goldens (.npz = zip of .npy, written by np.savez_compressed).
// Temporary: once the TensorFiles module's npz reader is merged, the tests switch to it.
import CZlib
import Foundation
import Testing

struct FixtureError: Error, CustomStringConvertible {
    let description: String
}

/// One array from a fixture: shape and values as Float (float32 / int64 arrays).
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
        let url = root.appendingPathComponent("Fixtures/kernels/\(name).npz")
        let data = try Data(contentsOf: url)
        arrays = try KernelFixture.readZip([UInt8](data))
    }

    subscript(_ key: String) -> FixtureArray {
        get throws {
            guard let array = arrays[key] else { throw FixtureError(description: "fixture has no array \(key)") }
            return array
        }
    }

    private static func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
    private static func u32(_ b: [UInt8], _ o: Int) -> Int { u16(b, o) | u16(b, o + 2) << 16 }

    private static func u64(_ b: [UInt8], _ o: Int) -> Int { u32(b, o) | u32(b, o + 4) << 32 }

    /// Reads entries through the central directory: numpy writes local headers with zip64 placeholders and
    /// data descriptors, so only the central directory has the sizes.
    private static func readZip(_ bytes: [UInt8]) throws -> [String: FixtureArray] {
        guard bytes.count >= 22,
              let end = stride(from: bytes.count - 22, through: 0, by: -1).first(where: { u32(bytes, $0) == 0x0605_4b50 })
        else { throw FixtureError(description: "npz without end of central directory") }
        let entries = u16(bytes, end + 10)
        var offset = u32(bytes, end + 16)
        var result: [String: FixtureArray] = [:]
        for _ in 0..<entries {
            guard offset + 46 <= bytes.count, u32(bytes, offset) == 0x0201_4b50 else {
                throw FixtureError(description: "bad central directory entry")
            }
            let method = u16(bytes, offset + 10)
            var compressed = u32(bytes, offset + 20), size = u32(bytes, offset + 24)
            let nameLength = u16(bytes, offset + 28), extraLength = u16(bytes, offset + 30)
            let commentLength = u16(bytes, offset + 32)
            var local = u32(bytes, offset + 42)
            let name = String(decoding: bytes[(offset + 46)..<(offset + 46 + nameLength)], as: UTF8.self)
            // Zip64 extended information (id 1): the 0xFFFFFFFF fields, in order size, compressed, offset.
            var extra = offset + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = u16(bytes, extra), length = u16(bytes, extra + 2)
                if id == 1 {
                    var field = extra + 4
                    if size == 0xFFFF_FFFF { size = u64(bytes, field); field += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = u64(bytes, field); field += 8 }
                    if local == 0xFFFF_FFFF { local = u64(bytes, field) }
                }
                extra += 4 + length
            }
            let dataStart = local + 30 + u16(bytes, local + 26) + u16(bytes, local + 28)
            guard dataStart + compressed <= bytes.count else { throw FixtureError(description: "truncated npz") }
            let payload = Array(bytes[dataStart..<(dataStart + compressed)])
            let npy = method == 0 ? payload : try inflate(payload, expected: size)
            result[String(name.dropLast(4))] = try parseNpy(npy)
            offset = extraEnd + commentLength
        }
        return result
    }

    private static func inflate(_ input: [UInt8], expected: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: expected)
        var stream = z_stream()
        guard inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw FixtureError(description: "inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        var input = input
        let status = input.withUnsafeMutableBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                stream.next_in = src.baseAddress
                stream.avail_in = UInt32(src.count)
                stream.next_out = dst.baseAddress
                stream.avail_out = UInt32(dst.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == expected else {
            throw FixtureError(description: "inflate failed (\(status))")
        }
        return output
    }

    private static func parseNpy(_ b: [UInt8]) throws -> FixtureArray {
        guard b.count > 10, b[0] == 0x93, b[1] == UInt8(ascii: "N") else { throw FixtureError(description: "not npy") }
        let major = Int(b[6])
        let headerLength = major == 1 ? u16(b, 8) : u32(b, 8)
        let headerStart = major == 1 ? 10 : 12
        let header = String(decoding: b[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard !header.contains("'fortran_order': True") else { throw FixtureError(description: "fortran order") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")")
        else { throw FixtureError(description: "npy header without shape: \(header)") }
        let shape = header[open.upperBound..<close].split(separator: ",")
            .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let data = Array(b[(headerStart + headerLength)...])
        if header.contains("'<f4'") {
            guard data.count >= count * 4 else { throw FixtureError(description: "short npy data") }
            let values = data.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
            return FixtureArray(shape: shape, values: values)
        }
        if header.contains("'<i8'") {
            guard data.count >= count * 8 else { throw FixtureError(description: "short npy data") }
            let values = data.withUnsafeBytes { raw in (0..<count).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) } }
            return FixtureArray(shape: shape, values: values)
        }
        throw FixtureError(description: "unsupported npy dtype in \(header)")
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
