/// Why a poster could not be decoded. Every malformed input maps to one of these; decoding never traps.
///
/// `kind` gives the stable names used by the test fixtures' manifest (`Tests/Fixtures/images/manifest.json`).
public enum ImageDecodingError: Error, Equatable, CustomStringConvertible {
    /// The input has no bytes at all.
    case empty
    /// The bytes do not start with a JPEG, PNG or WebP signature.
    case unknownFormat
    /// The data ends before the image is complete.
    case truncated(ImageFormat, String)
    /// The data is malformed (bad markers, checksums, compressed data, ...).
    case corrupt(ImageFormat, String)
    /// The header declares more pixels than the decoder's limit (decompression-bomb guard); nothing was allocated.
    case tooManyPixels(width: Int, height: Int, limit: Int)
    /// The header declares a zero width or height.
    case zeroSize(ImageFormat)
    /// A well-formed file using a feature that is not handled (e.g. 12-bit or 2-channel JPEG), or a library limit.
    case unsupported(ImageFormat, String)
    /// The file could not be read from disk.
    case unreadable(path: String, reason: String)
    /// A cost limit (`DecodingLimits`) refused the image: an extreme shape (from the header, before anything is
    /// allocated), too many progressive scans, or more decoder memory than the budget.
    case limitExceeded(ImageFormat, DecodingLimitViolation)

    /// The manifest name of this error: `empty`, `unknownFormat`, `truncated`, `corrupt`, `tooManyPixels`,
    /// `zeroSize`, plus `unsupported`, `unreadable` and `limitExceeded` which the fixtures do not use.
    public var kind: String {
        switch self {
        case .empty: "empty"
        case .unknownFormat: "unknownFormat"
        case .truncated: "truncated"
        case .corrupt: "corrupt"
        case .tooManyPixels: "tooManyPixels"
        case .zeroSize: "zeroSize"
        case .unsupported: "unsupported"
        case .unreadable: "unreadable"
        case .limitExceeded: "limitExceeded"
        }
    }

    public var description: String {
        switch self {
        case .empty:
            "image data is empty"
        case .unknownFormat:
            "not a JPEG, PNG or WebP image (unrecognized signature)"
        case .truncated(let format, let detail):
            "truncated \(format.rawValue) image" + (detail.isEmpty ? "" : ": \(detail)")
        case .corrupt(let format, let detail):
            "corrupt \(format.rawValue) image" + (detail.isEmpty ? "" : ": \(detail)")
        case .tooManyPixels(let width, let height, let limit):
            "image is \(width)x\(height) pixels, more than the limit of \(limit) (possible decompression bomb)"
        case .zeroSize(let format):
            "\(format.rawValue) image has a zero width or height"
        case .unsupported(let format, let detail):
            "unsupported \(format.rawValue) image" + (detail.isEmpty ? "" : ": \(detail)")
        case .unreadable(let path, let reason):
            "cannot read \(path): \(reason)"
        case .limitExceeded(let format, let violation):
            "\(format.rawValue) image refused by a decoding limit: \(violation)"
        }
    }
}
