import Foundation

/// A file format parsed from bytes: every such reader is built from a `ByteBuffer`, and from a file by mapping it
/// (the pages are read on access, so a multi-gigabyte checkpoint costs no copy).
public protocol MappedFile {
    /// Parses and validates the bytes in `buffer`.
    init(buffer: ByteBuffer) throws
}

extension MappedFile {
    /// Maps the file at `url` and parses it.
    public init(contentsOf url: URL) throws {
        try self.init(buffer: ByteBuffer(mapping: url))
    }
}
