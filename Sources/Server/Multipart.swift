import Foundation
import MultipartKit
import NIOCore

/// The bytes of one field of a `multipart/form-data` body (by its `name`), using MultipartKit's parser.
enum MultipartImage {
    /// The boundary of a `multipart/form-data` content type, or nil when the content type is not multipart.
    static func boundary(contentType: String?) -> String?? {
        guard let contentType else { return nil }
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let type = parts.first, type.lowercased() == "multipart/form-data" else { return nil }
        for part in parts.dropFirst() {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            if kv.count == 2, kv[0].lowercased() == "boundary" {
                var value = kv[1]
                if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
                return .some(value.isEmpty ? nil : value)
            }
        }
        return .some(nil)
    }

    /// The content of the part named `field` (or, when none has that name, of the first part that carries a file).
    static func field(_ field: String, in body: ByteBuffer, boundary: String) throws -> [UInt8]? {
        let parser = MultipartParser(boundary: boundary)
        var headers: [(String, String)] = []
        var current: [UInt8] = []
        var named: [UInt8]?
        var firstFile: [UInt8]?
        parser.onHeader = { name, value in headers.append((name.lowercased(), value)) }
        parser.onBody = { buffer in current += buffer.readBytes(length: buffer.readableBytes) ?? [] }
        parser.onPartComplete = {
            let disposition = headers.first { $0.0 == "content-disposition" }?.1 ?? ""
            let name = Self.parameter("name", in: disposition)
            if name == field, named == nil { named = current }
            if firstFile == nil, Self.parameter("filename", in: disposition) != nil { firstFile = current }
            headers = []
            current = []
        }
        try parser.execute(body)
        return named ?? firstFile
    }

    static func parameter(_ key: String, in header: String) -> String? {
        for part in header.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, kv[0].lowercased() == key else { continue }
            var value = kv[1]
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }
}
