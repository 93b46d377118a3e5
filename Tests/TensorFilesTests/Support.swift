import Foundation
import Testing
@testable import TensorFiles

/// Tests/Fixtures, found from this file's path (Tests/TensorFilesTests/Support.swift → package root).
let fixturesRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

let checkpointsRoot = fixturesRoot.appendingPathComponent("checkpoints")

func readJSON(_ url: URL) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(contentsOf: url))
}

/// Deterministic pseudo-random numbers (64-bit LCG, Knuth's MMIX constants) so corruption tests are reproducible.
struct LCG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 11
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// Builds a ZIP archive with stored (uncompressed) members, for crafting test inputs in memory. Local headers carry
/// the real CRC and sizes. With `zip64`, the central directory saturates sizes and offsets at 0xFFFFFFFF and gives the
/// real values in ZIP64 extra fields, and a ZIP64 end record + locator precede a saturated end record.
func makeStoredZip(_ members: [(String, [UInt8])], zip64: Bool = false) -> [UInt8] {
    var out: [UInt8] = []
    var central: [UInt8] = []
    func le16(_ v: Int, _ into: inout [UInt8]) { into += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
    func le32(_ v: UInt32, _ into: inout [UInt8]) { for i in 0..<4 { into.append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) } }
    func le64(_ v: Int, _ into: inout [UInt8]) { for i in 0..<8 { into.append(UInt8((UInt64(v) >> (8 * UInt64(i))) & 0xFF)) } }
    for (name, data) in members {
        let crc = data.withUnsafeBytes { ZipArchive.crc32(of: $0) }
        let offset = out.count
        let nameBytes = Array(name.utf8)
        le32(0x0403_4b50, &out); le16(20, &out); le16(0, &out); le16(0, &out); le16(0, &out); le16(0, &out)
        le32(crc, &out); le32(UInt32(data.count), &out); le32(UInt32(data.count), &out)
        le16(nameBytes.count, &out); le16(0, &out)
        out += nameBytes
        out += data
        let saturated: UInt32 = 0xFFFF_FFFF
        le32(0x0201_4b50, &central); le16(45, &central); le16(45, &central); le16(0, &central); le16(0, &central)
        le16(0, &central); le16(0, &central); le32(crc, &central)
        le32(zip64 ? saturated : UInt32(data.count), &central); le32(zip64 ? saturated : UInt32(data.count), &central)
        le16(nameBytes.count, &central); le16(zip64 ? 28 : 0, &central); le16(0, &central)
        le16(0, &central); le16(0, &central); le32(0, &central); le32(zip64 ? saturated : UInt32(offset), &central)
        central += nameBytes
        if zip64 {
            le16(1, &central); le16(24, &central)
            le64(data.count, &central); le64(data.count, &central); le64(offset, &central)
        }
    }
    let centralOffset = out.count
    out += central
    if zip64 {
        let record = out.count
        le32(0x0606_4b50, &out); le64(44, &out); le16(45, &out); le16(45, &out); le32(0, &out); le32(0, &out)
        le64(members.count, &out); le64(members.count, &out); le64(central.count, &out); le64(centralOffset, &out)
        le32(0x0706_4b50, &out); le32(0, &out); le64(record, &out); le32(1, &out)
        le32(0x0605_4b50, &out); le16(0, &out); le16(0, &out); le16(0xFFFF, &out); le16(0xFFFF, &out)
        le32(0xFFFF_FFFF, &out); le32(0xFFFF_FFFF, &out); le16(0, &out)
    } else {
        le32(0x0605_4b50, &out); le16(0, &out); le16(0, &out); le16(members.count, &out); le16(members.count, &out)
        le32(UInt32(central.count), &out); le32(UInt32(centralOffset), &out); le16(0, &out)
    }
    return out
}

/// A safetensors file built by hand: 8-byte length, `header` JSON text, `padding` spaces, then `data`.
func makeSafetensors(header: String, padding: Int = 0, data: [UInt8]) -> [UInt8] {
    let headerBytes = Array(header.utf8) + [UInt8](repeating: 0x20, count: padding)
    var out: [UInt8] = []
    let length = UInt64(headerBytes.count)
    for i in 0..<8 { out.append(UInt8((length >> (8 * UInt64(i))) & 0xFF)) }
    return out + headerBytes + data
}

func floatBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { value -> [UInt8] in
        let bits = value.bitPattern
        return (0..<4).map { UInt8((bits >> (8 * UInt32($0))) & 0xFF) }
    }
}

/// Writes bytes to a fresh temporary file and returns its URL.
func temporaryFile(_ bytes: [UInt8], name: String) throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("TensorFilesTests-\(getpid())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let url = directory.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url
}

/// Bit-exact comparison (NaNs must have identical payloads too).
func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// Bit-exact comparison where any NaN equals any NaN (torch's NaN payloads depend on its code path).
func sameBitsOrBothNaN(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
}
