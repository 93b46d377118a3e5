// Read-only ZIP reader (PKWARE APPNOTE 6.3: end of central directory, ZIP64 records, central directory, local
// headers; stored and deflate entries). Written for PyTorch checkpoints and NumPy .npz files.
import CZlib
import Foundation

/// Errors from reading a ZIP archive. Every offset and size read from the file is bounds-checked and reported here.
public enum ZipError: Error, CustomStringConvertible, Sendable, Equatable {
    case endOfCentralDirectoryNotFound
    case zip64LocatorInvalid
    case zip64RecordInvalid
    case multiDiskUnsupported
    case centralDirectoryOutOfBounds
    case centralDirectoryEntryInvalid(index: Int)
    case entryCountMismatch(declared: Int, found: Int)
    case invalidEntryName(index: Int)
    case duplicateEntry(String)
    case localHeaderInvalid(String)
    case localHeaderNameMismatch(String)
    case entryDataOutOfBounds(String)
    case encryptedEntry(String)
    case unsupportedCompression(entry: String, method: UInt16)
    case sizeMismatch(entry: String)
    case implausibleCompressionRatio(entry: String)
    case inflateFailed(entry: String, message: String)
    case crcMismatch(entry: String, expected: UInt32, actual: UInt32)
    case entryNotFound(String)

    public var description: String {
        switch self {
        case .endOfCentralDirectoryNotFound: return "not a zip archive: end-of-central-directory record not found"
        case .zip64LocatorInvalid: return "zip: invalid ZIP64 end-of-central-directory locator"
        case .zip64RecordInvalid: return "zip: invalid ZIP64 end-of-central-directory record"
        case .multiDiskUnsupported: return "zip: multi-disk archives are not supported"
        case .centralDirectoryOutOfBounds: return "zip: central directory lies outside the file"
        case .centralDirectoryEntryInvalid(let index): return "zip: central directory entry \(index) is invalid"
        case .entryCountMismatch(let declared, let found):
            return "zip: end record declares \(declared) entries but the central directory holds \(found)"
        case .invalidEntryName(let index): return "zip: entry \(index) has a name that is not valid UTF-8"
        case .duplicateEntry(let name): return "zip: entry \(name) appears twice"
        case .localHeaderInvalid(let name): return "zip: local header of \(name) is invalid or out of bounds"
        case .localHeaderNameMismatch(let name): return "zip: local header name differs from central directory for \(name)"
        case .entryDataOutOfBounds(let name): return "zip: data of \(name) extends past the end of the file"
        case .encryptedEntry(let name): return "zip: entry \(name) is encrypted"
        case .unsupportedCompression(let name, let method): return "zip: entry \(name) uses unsupported compression method \(method)"
        case .sizeMismatch(let name): return "zip: stored entry \(name) has different compressed and uncompressed sizes"
        case .implausibleCompressionRatio(let name): return "zip: entry \(name) claims an impossible deflate ratio"
        case .inflateFailed(let name, let message): return "zip: cannot inflate \(name): \(message)"
        case .crcMismatch(let name, let expected, let actual):
            return "zip: CRC-32 mismatch in \(name) (expected \(String(expected, radix: 16)), got \(String(actual, radix: 16)))"
        case .entryNotFound(let name): return "zip: no entry named \(name)"
        }
    }
}

/// A read-only ZIP archive over a `ByteBuffer` (usually a memory-mapped file).
///
/// Guarantees: the central directory is parsed and validated at open (ZIP64 aware); each entry's local header and data
/// range are validated on access. `contents(of:)` returns stored entries as views into the buffer without copying
/// (PyTorch stores tensor data uncompressed and 64-byte aligned, so weights stay mapped) and inflates deflate entries
/// with zlib into a new buffer. CRC-32 is verified for every entry read unless disabled.
public struct ZipArchive: Sendable, MappedFile {
    /// One central-directory entry.
    public struct Entry: Sendable {
        public let name: String
        public let method: UInt16
        public let flags: UInt16
        public let crc32: UInt32
        public let compressedSize: Int
        public let uncompressedSize: Int
        public let localHeaderOffset: Int
    }

    public let buffer: ByteBuffer
    /// Entries in central-directory order.
    public let entries: [Entry]
    private let index: [String: Int]


    /// Parses the archive held in `buffer`.
    public init(buffer: ByteBuffer) throws {
        self.buffer = buffer
        let parsed = try buffer.withUnsafeBytes { try ZipArchive.parseCentralDirectory($0) }
        var index: [String: Int] = [:]
        for (position, entry) in parsed.enumerated() {
            guard index[entry.name] == nil else { throw ZipError.duplicateEntry(entry.name) }
            index[entry.name] = position
        }
        self.entries = parsed
        self.index = index
    }

    /// Entry names in central-directory order.
    public var names: [String] { entries.map(\.name) }

    /// The entry called `name`, if any.
    public func entry(named name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The uncompressed bytes of `name`: a zero-copy view for stored entries, a new buffer for deflated ones.
    public func contents(of name: String, verifyCRC: Bool = true) throws -> ByteView {
        guard let entry = entry(named: name) else { throw ZipError.entryNotFound(name) }
        return try contents(of: entry, verifyCRC: verifyCRC)
    }

    /// The uncompressed bytes of `entry` (see `contents(of:verifyCRC:)`).
    public func contents(of entry: Entry, verifyCRC: Bool = true) throws -> ByteView {
        let data = try compressedData(of: entry)
        let result: ByteView
        switch entry.method {
        case 0:
            guard entry.compressedSize == entry.uncompressedSize else { throw ZipError.sizeMismatch(entry: entry.name) }
            result = data
        case 8:
            result = try inflate(data, entry: entry)
        default:
            throw ZipError.unsupportedCompression(entry: entry.name, method: entry.method)
        }
        if verifyCRC {
            let actual = result.withUnsafeBytes { ZipArchive.crc32(of: $0) }
            guard actual == entry.crc32 else {
                throw ZipError.crcMismatch(entry: entry.name, expected: entry.crc32, actual: actual)
            }
        }
        return result
    }

    // MARK: - Parsing

    private static let eocdSignature: UInt32 = 0x0605_4b50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4b50
    private static let zip64EOCDSignature: UInt32 = 0x0606_4b50
    private static let centralSignature: UInt32 = 0x0201_4b50
    private static let localSignature: UInt32 = 0x0403_4b50

    private static func parseCentralDirectory(_ raw: UnsafeRawBufferPointer) throws -> [Entry] {
        let size = raw.count
        // The end record is 22 bytes plus a comment of at most 65535 bytes; search backwards for its signature and
        // accept the first candidate whose comment length reaches exactly to the end of the file.
        guard size >= 22 else { throw ZipError.endOfCentralDirectoryNotFound }
        var eocd = -1
        var candidate = size - 22
        let lowest = max(0, size - 22 - 65535)
        while candidate >= lowest {
            if raw.u32(at: candidate) == eocdSignature, Int(raw.u16(at: candidate + 20)) == size - candidate - 22 {
                eocd = candidate
                break
            }
            candidate -= 1
        }
        guard eocd >= 0 else { throw ZipError.endOfCentralDirectoryNotFound }

        var diskNumber = Int(raw.u16(at: eocd + 4))
        var centralDisk = Int(raw.u16(at: eocd + 6))
        var entriesOnDisk = Int(raw.u16(at: eocd + 8))
        var entryCount = Int(raw.u16(at: eocd + 10))
        var centralSize = Int(raw.u32(at: eocd + 12))
        var centralOffset = Int(raw.u32(at: eocd + 16))

        // ZIP64: a locator sits right before the end record and points at the ZIP64 end record.
        if eocd >= 20, raw.u32(at: eocd - 20) == zip64LocatorSignature {
            let locator = eocd - 20
            guard raw.u32(at: locator + 16) <= 1 else { throw ZipError.multiDiskUnsupported }
            let recordOffset64 = raw.u64(at: locator + 8)
            guard recordOffset64 <= UInt64(locator), Int(recordOffset64) <= locator - 56 else { throw ZipError.zip64LocatorInvalid }
            let record = Int(recordOffset64)
            guard raw.u32(at: record) == zip64EOCDSignature else { throw ZipError.zip64RecordInvalid }
            func field(_ at: Int) throws -> Int {
                let value = raw.u64(at: record + at)
                guard value <= UInt64(Int.max) else { throw ZipError.zip64RecordInvalid }
                return Int(value)
            }
            diskNumber = Int(raw.u32(at: record + 16))
            centralDisk = Int(raw.u32(at: record + 20))
            entriesOnDisk = try field(24)
            entryCount = try field(32)
            centralSize = try field(40)
            centralOffset = try field(48)
            // The central directory must end where the ZIP64 record begins.
            guard centralOffset <= record, centralSize <= record - centralOffset else { throw ZipError.centralDirectoryOutOfBounds }
        } else {
            guard centralOffset <= eocd, centralSize <= eocd - centralOffset else { throw ZipError.centralDirectoryOutOfBounds }
        }
        guard diskNumber == 0, centralDisk == 0, entriesOnDisk == entryCount else { throw ZipError.multiDiskUnsupported }
        // Each central entry is at least 46 bytes: reject absurd counts before reserving memory.
        guard entryCount <= centralSize / 46 else { throw ZipError.entryCountMismatch(declared: entryCount, found: centralSize / 46) }

        var entries: [Entry] = []
        entries.reserveCapacity(entryCount)
        var position = centralOffset
        let end = centralOffset + centralSize
        while entries.count < entryCount {
            let number = entries.count
            guard end - position >= 46, raw.u32(at: position) == centralSignature else {
                throw ZipError.centralDirectoryEntryInvalid(index: number)
            }
            let flags = raw.u16(at: position + 8)
            let method = raw.u16(at: position + 10)
            let crc = raw.u32(at: position + 16)
            var compressed = UInt64(raw.u32(at: position + 20))
            var uncompressed = UInt64(raw.u32(at: position + 24))
            let nameLength = Int(raw.u16(at: position + 28))
            let extraLength = Int(raw.u16(at: position + 30))
            let commentLength = Int(raw.u16(at: position + 32))
            var startDisk = UInt32(raw.u16(at: position + 34))
            var localOffset = UInt64(raw.u32(at: position + 42))
            let variable = nameLength + extraLength + commentLength
            guard end - position - 46 >= variable else { throw ZipError.centralDirectoryEntryInvalid(index: number) }
            let nameStart = position + 46
            guard let name = String(validating: UnsafeRawBufferPointer(rebasing: raw[nameStart..<nameStart + nameLength]), as: UTF8.self) else {
                throw ZipError.invalidEntryName(index: number)
            }
            // ZIP64 extended information (header id 1) replaces the fields saturated at 0xFFFFFFFF / 0xFFFF, in order.
            var extra = nameStart + nameLength
            let extraEnd = extra + extraLength
            while extraEnd - extra >= 4 {
                let headerID = raw.u16(at: extra)
                let dataSize = Int(raw.u16(at: extra + 2))
                guard extraEnd - extra - 4 >= dataSize else { throw ZipError.centralDirectoryEntryInvalid(index: number) }
                if headerID == 1 {
                    var cursor = extra + 4
                    let zip64End = cursor + dataSize
                    func next64() throws -> UInt64 {
                        guard zip64End - cursor >= 8 else { throw ZipError.centralDirectoryEntryInvalid(index: number) }
                        defer { cursor += 8 }
                        return raw.u64(at: cursor)
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try next64() }
                    if compressed == 0xFFFF_FFFF { compressed = try next64() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try next64() }
                    if startDisk == 0xFFFF {
                        guard zip64End - cursor >= 4 else { throw ZipError.centralDirectoryEntryInvalid(index: number) }
                        startDisk = raw.u32(at: cursor)
                    }
                }
                extra += 4 + dataSize
            }
            guard startDisk == 0 else { throw ZipError.multiDiskUnsupported }
            let limit = UInt64(raw.count)
            guard compressed <= limit, localOffset <= limit, uncompressed <= UInt64(Int.max) else {
                throw ZipError.entryDataOutOfBounds(name)
            }
            entries.append(Entry(name: name, method: method, flags: flags, crc32: crc, compressedSize: Int(compressed),
                                 uncompressedSize: Int(uncompressed), localHeaderOffset: Int(localOffset)))
            position += 46 + variable
        }
        return entries
    }

    /// The raw (possibly compressed) data of `entry`, located through its local header.
    private func compressedData(of entry: Entry) throws -> ByteView {
        if entry.flags & 1 != 0 { throw ZipError.encryptedEntry(entry.name) }
        let dataStart: Int = try buffer.withUnsafeBytes { raw in
            let header = entry.localHeaderOffset
            guard header <= raw.count, raw.count - header >= 30, raw.u32(at: header) == ZipArchive.localSignature else {
                throw ZipError.localHeaderInvalid(entry.name)
            }
            let nameLength = Int(raw.u16(at: header + 26))
            let extraLength = Int(raw.u16(at: header + 28))
            guard raw.count - header - 30 >= nameLength + extraLength else { throw ZipError.localHeaderInvalid(entry.name) }
            let localName = UnsafeRawBufferPointer(rebasing: raw[(header + 30)..<(header + 30 + nameLength)])
            guard localName.elementsEqual(entry.name.utf8) else { throw ZipError.localHeaderNameMismatch(entry.name) }
            // Sizes and CRC in the local header may be zero (data descriptor, as PyTorch writes): use the central ones.
            return header + 30 + nameLength + extraLength
        }
        guard let data = buffer.view.slice(dataStart, entry.compressedSize) else {
            throw ZipError.entryDataOutOfBounds(entry.name)
        }
        return data
    }

    /// Inflates raw deflate data into a buffer of exactly the declared uncompressed size.
    private func inflate(_ data: ByteView, entry: Entry) throws -> ByteView {
        // Deflate cannot expand by more than about 1032:1; a larger claim is a corrupt or hostile header, and checking
        // it first keeps us from allocating a huge buffer.
        let (bound, overflow) = data.count.multipliedReportingOverflow(by: 1032)
        guard overflow || entry.uncompressedSize <= bound + 64 else {
            throw ZipError.implausibleCompressionRatio(entry: entry.name)
        }
        let output = try ByteBuffer(owningCount: entry.uncompressedSize) { destination in
            try data.withUnsafeBytes { source in
                var stream = z_stream()
                var status = inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
                guard status == Z_OK else { throw ZipError.inflateFailed(entry: entry.name, message: "inflateInit2 failed (\(status))") }
                defer { inflateEnd(&stream) }
                // zlib's avail_in/avail_out are 32-bit: feed and drain in chunks.
                var consumed = 0
                var produced = 0
                let chunk = Int(UInt32.max / 2)
                repeat {
                    let inputCount = min(chunk, source.count - consumed)
                    let outputCount = min(chunk, destination.count - produced)
                    stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) + consumed })
                    stream.avail_in = uInt(inputCount)
                    stream.next_out = destination.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) + produced }
                    stream.avail_out = uInt(outputCount)
                    status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    consumed += inputCount - Int(stream.avail_in)
                    produced += outputCount - Int(stream.avail_out)
                    if status == Z_STREAM_END { break }
                    guard status == Z_OK || (status == Z_BUF_ERROR && (inputCount > 0 || outputCount > 0)) else {
                        let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                        throw ZipError.inflateFailed(entry: entry.name, message: message)
                    }
                    // No progress possible: input exhausted or output full without reaching the end of the stream.
                    if inputCount - Int(stream.avail_in) == 0 && outputCount - Int(stream.avail_out) == 0 {
                        let reason = produced == destination.count ? "more data than the declared size" : "truncated data"
                        throw ZipError.inflateFailed(entry: entry.name, message: reason)
                    }
                } while true
                guard produced == destination.count else {
                    throw ZipError.inflateFailed(entry: entry.name, message: "inflated \(produced) bytes, expected \(destination.count)")
                }
            }
        }
        return output.view
    }

    /// CRC-32 (zlib polynomial) of `bytes`, in chunks because zlib takes a 32-bit length.
    static func crc32(of bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
        var crc = CZlib.crc32(0, nil, 0)
        var done = 0
        while done < bytes.count {
            let length = min(1 << 30, bytes.count - done)
            crc = CZlib.crc32(crc, base + done, uInt(length))
            done += length
        }
        return UInt32(truncatingIfNeeded: crc)
    }
}
