/// Why a preprocessing config could not be used or an image could not be preprocessed.
public enum PreprocessingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Neither `preprocessor_config.json` nor a `config.json` with a timm `pretrained_cfg` is in the directory.
    case configNotFound(directory: String)
    /// The file exists but could not be read.
    case unreadableFile(path: String, reason: String)
    /// The file is not valid JSON or not a JSON object.
    case invalidJSON(path: String, reason: String)
    /// A key holds a value of the wrong type or out of range.
    case invalidValue(key: String, value: String, reason: String)
    /// Valid for the reference library, but a variant this implementation does not reproduce.
    case unsupported(String)
    /// The image has no pixels, so the shortest-edge arithmetic of the reference would divide by zero.
    case emptyImage(width: Int, height: Int)
    /// An intermediate image would exceed `ImagePreprocessor.maxIntermediatePixels`.
    case imageTooLarge(width: Int, height: Int)
    /// `batch` was given images whose tensors differ in shape.
    case batchShapeMismatch(expected: [Int], got: [Int], index: Int)

    public var description: String {
        switch self {
        case .configNotFound(let directory):
            return "no preprocessor_config.json or timm config.json with pretrained_cfg in \(directory)"
        case .unreadableFile(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .invalidJSON(let path, let reason):
            return "\(path) is not a valid JSON object: \(reason)"
        case .invalidValue(let key, let value, let reason):
            return "invalid value for \"\(key)\": \(value) (\(reason))"
        case .unsupported(let what):
            return "unsupported preprocessing: \(what)"
        case .emptyImage(let width, let height):
            return "cannot preprocess an empty image (\(width)x\(height))"
        case .imageTooLarge(let width, let height):
            return "preprocessing would need a \(width)x\(height) intermediate image, which is too large"
        case .batchShapeMismatch(let expected, let got, let index):
            return "image \(index) gives a tensor of shape \(got), but earlier images gave \(expected)"
        }
    }
}
