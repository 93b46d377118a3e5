import PosterSimCore
import Foundation

/// The preprocessing a model expects, reduced to the steps that matter for an RGB uint8 input: resize, center
/// crop(s), conversion to float and per-channel normalisation — with the exact rounding conventions of the library
/// the checkpoint was made for.
///
/// Built from a checkpoint's own files: a Hugging Face `preprocessor_config.json` (`CLIPImageProcessor`,
/// `ConvNextImageProcessor`, reproduced as transformers' Pillow-based "slow" processors) or a timm `config.json`
/// `pretrained_cfg` (reproduced as timm's eval transform: torchvision Resize + CenterCrop + ToTensor + Normalize).
/// Parsing never traps: bad JSON, wrong types or out-of-range values throw `PreprocessingError`.
public struct PreprocessingConfig: Sendable, Equatable, Codable {
    /// How the resize target is derived from the input size.
    public enum Resize: Sendable, Equatable, Codable {
        /// The shorter side becomes `n`; the longer side becomes `Int(n * long / short)` (truncated), as in
        /// transformers' `get_resize_output_image_size` and torchvision's `_compute_resized_output_size`.
        case shortestEdge(Int)
        /// Exactly this size, aspect ratio not kept.
        case exact(width: Int, height: Int)
    }

    /// How a center crop places its window when the sizes differ by an odd number of pixels.
    public enum CropRounding: String, Sendable, Equatable, Codable {
        /// transformers' NumPy `center_crop`: offset `floor((size - crop) / 2)`, zeros where the window leaves
        /// the image.
        case transformers
        /// torchvision `CenterCrop`: pad with zeros first if the image is smaller (left/top get the smaller
        /// half), then offset `round((size - crop) / 2.0)` with Python's round-half-to-even.
        case torchvision
    }

    /// A center crop to `width` x `height`.
    public struct CenterCrop: Sendable, Equatable, Codable {
        public var width: Int
        public var height: Int
        public var rounding: CropRounding
        public init(width: Int, height: Int, rounding: CropRounding) {
            self.width = width; self.height = height; self.rounding = rounding
        }
    }

    /// How uint8 samples become floats before normalisation.
    public enum Rescale: Sendable, Equatable, Codable {
        /// transformers `rescale`: `Float32(Double(v) * factor)` (multiplied in float64, then cast).
        case multiplyInFloat64(factor: Double)
        /// torchvision `ToTensor`: `Float32(v) / 255` in float32.
        case divideBy255InFloat32
        /// No rescale: the float32 value of the byte.
        case none
    }

    /// Where the config came from, for messages and logs (e.g. "CLIPImageProcessor", "timm vgg16").
    public var processorName: String
    /// nil when the processor does not resize.
    public var resize: Resize?
    public var filter: ResampleFilter
    /// Applied in order after the resize.
    public var centerCrops: [CenterCrop]
    public var rescale: Rescale
    /// Per-channel (R, G, B) mean and standard deviation, applied in float32 as `(x - mean) / std`; nil when the
    /// processor does not normalise.
    public var mean: [Double]?
    public var std: [Double]?

    public init(processorName: String, resize: Resize?, filter: ResampleFilter, centerCrops: [CenterCrop],
                rescale: Rescale, mean: [Double]?, std: [Double]?) {
        self.processorName = processorName
        self.resize = resize
        self.filter = filter
        self.centerCrops = centerCrops
        self.rescale = rescale
        self.mean = mean
        self.std = std
    }

    /// Largest size accepted from a config for any resize or crop edge.
    public static let maxConfiguredEdge = 16384

    // MARK: - Loading

    /// Reads `preprocessor_config.json` from `directory`, or else the timm `pretrained_cfg` in `config.json`.
    public static func load(modelDirectory directory: URL) throws -> PreprocessingConfig {
        let fm = FileManager.default
        let hfURL = directory.appendingPathComponent("preprocessor_config.json")
        if fm.fileExists(atPath: hfURL.path) {
            return try fromTransformers(json: readFile(hfURL), path: hfURL.path)
        }
        let configURL = directory.appendingPathComponent("config.json")
        if fm.fileExists(atPath: configURL.path) {
            let data = try readFile(configURL)
            let root = try parseObject(data, path: configURL.path)
            if root["pretrained_cfg"] != nil {
                return try fromTimm(root: root)
            }
        }
        throw PreprocessingError.configNotFound(directory: directory.path)
    }

    /// Parses a Hugging Face `preprocessor_config.json` (`CLIPImageProcessor` or `ConvNextImageProcessor`,
    /// also under their older `...FeatureExtractor` names).
    public static func fromTransformers(json data: Data, path: String = "preprocessor_config.json") throws -> PreprocessingConfig {
        try fromTransformers(root: parseObject(data, path: path))
    }

    /// Parses a timm `config.json` (the `pretrained_cfg` object in it), or a bare `pretrained_cfg` object.
    public static func fromTimm(json data: Data, path: String = "config.json") throws -> PreprocessingConfig {
        try fromTimm(root: parseObject(data, path: path))
    }

    // MARK: - transformers

    private enum TransformersKind { case clip, convNext }

    /// Class defaults of transformers 5.x `CLIPImageProcessorPil` / `ConvNextImageProcessorPil` (models/clip and
    /// models/convnext), overridden by non-null config values, as `BaseImageProcessor._set_attributes` does.
    private static func fromTransformers(root: [String: JSONValue]) throws -> PreprocessingConfig {
        let typeName: String
        if case .string(let s)? = root["image_processor_type"] {
            typeName = s
        } else if case .string(let s)? = root["feature_extractor_type"] {
            typeName = s
        } else {
            throw PreprocessingError.invalidValue(key: "image_processor_type", value: "missing",
                                                  reason: "needed to know which processor the config is for")
        }
        let kind: TransformersKind
        let lowered = typeName.lowercased()
        if lowered.hasPrefix("clipimageprocessor") || lowered.hasPrefix("clipfeatureextractor") {
            kind = .clip
        } else if lowered.hasPrefix("convnextimageprocessor") || lowered.hasPrefix("convnextfeatureextractor") {
            kind = .convNext
        } else {
            throw PreprocessingError.unsupported("image processor \(typeName)")
        }
        let fields = Fields(root)

        // Class attributes (transformers/models/{clip,convnext}/image_processing_pil_*.py, utils/constants.py).
        let openAIMean = [0.48145466, 0.4578275, 0.40821073], openAIStd = [0.26862954, 0.26130258, 0.27577711]
        let defaultMean = kind == .clip ? openAIMean : [0.5, 0.5, 0.5]
        let defaultStd = kind == .clip ? openAIStd : [0.5, 0.5, 0.5]
        let defaultShortestEdge = kind == .clip ? 224 : 384

        let doResize = try fields.bool("do_resize") ?? true
        let doCenterCrop = try fields.bool("do_center_crop") ?? (kind == .clip)
        let doRescale = try fields.bool("do_rescale") ?? true
        let doNormalize = try fields.bool("do_normalize") ?? true
        let defaultToSquare = try fields.bool("default_to_square") ?? false
        let rescaleFactor = try fields.number("rescale_factor") ?? (1.0 / 255.0)
        let filter: ResampleFilter
        if let raw = try fields.integer("resample") {
            guard let f = ResampleFilter(rawValue: raw) else {
                throw PreprocessingError.invalidValue(key: "resample", value: String(raw),
                                                      reason: "not a Pillow resampling filter (0...7)")
            }
            filter = f
        } else {
            filter = .bicubic
        }
        let size = try fields.sizeSpec("size", defaultToSquare: defaultToSquare)
            ?? .shortestEdge(defaultShortestEdge)
        let cropSize: (width: Int, height: Int)?
        if let spec = try fields.sizeSpec("crop_size", defaultToSquare: true) {
            guard case .exact(let w, let h) = spec else {
                throw PreprocessingError.invalidValue(key: "crop_size", value: fields.summary("crop_size"),
                                                      reason: "a crop needs height and width")
            }
            cropSize = (w, h)
        } else {
            cropSize = kind == .clip ? (224, 224) : nil
        }
        let mean = try fields.channelTriple("image_mean") ?? defaultMean
        let std = try fields.channelTriple("image_std") ?? defaultStd
        if doNormalize, let zero = std.firstIndex(of: 0) {
            throw PreprocessingError.invalidValue(key: "image_std", value: fields.summary("image_std"),
                                                  reason: "channel \(zero) is zero")
        }

        var resize: Resize? = nil
        var crops: [CenterCrop] = []
        if doResize {
            switch kind {
            case .clip:
                resize = size
            case .convNext:
                // ConvNextImageProcessorPil.resize: below 384, resize the shortest edge to
                // int(shortest_edge / crop_pct) and center-crop a square; from 384 up, warp to a square.
                guard case .shortestEdge(let edge) = size else {
                    throw PreprocessingError.invalidValue(key: "size", value: fields.summary("size"),
                                                          reason: "ConvNextImageProcessor needs shortest_edge")
                }
                if edge < 384 {
                    let cropPct = try fields.number("crop_pct") ?? (224.0 / 256.0)
                    guard cropPct > 0, cropPct.isFinite else {
                        throw PreprocessingError.invalidValue(key: "crop_pct", value: fields.summary("crop_pct"),
                                                              reason: "must be a positive number")
                    }
                    let scaled = (Double(edge) / cropPct).rounded(.towardZero)
                    guard scaled >= 1, scaled <= Double(maxConfiguredEdge) else {
                        throw PreprocessingError.invalidValue(key: "crop_pct", value: fields.summary("crop_pct"),
                                                              reason: "gives a resize edge of \(scaled)")
                    }
                    resize = .shortestEdge(Int(scaled))
                    crops.append(CenterCrop(width: edge, height: edge, rounding: .transformers))
                } else {
                    resize = .exact(width: edge, height: edge)
                }
            }
        }
        if doCenterCrop {
            guard let cropSize else {
                throw PreprocessingError.invalidValue(key: "crop_size", value: "missing",
                                                      reason: "do_center_crop is set but there is no crop_size")
            }
            crops.append(CenterCrop(width: cropSize.width, height: cropSize.height, rounding: .transformers))
        }
        return PreprocessingConfig(
            processorName: typeName, resize: resize, filter: filter, centerCrops: crops,
            rescale: doRescale ? .multiplyInFloat64(factor: rescaleFactor) : .none,
            mean: doNormalize ? mean : nil, std: doNormalize ? std : nil)
    }

    // MARK: - timm

    /// timm `resolve_data_config` (defaults: 224x224, bicubic, ImageNet mean/std, crop_pct 0.875, crop_mode
    /// "center") followed by `transforms_imagenet_eval`: Resize(floor(size / crop_pct)) + CenterCrop(size) +
    /// ToTensor + Normalize (timm/data/config.py, timm/data/transforms_factory.py).
    private static func fromTimm(root: [String: JSONValue]) throws -> PreprocessingConfig {
        let cfgValue = root["pretrained_cfg"] ?? .object(root)
        guard case .object(let cfg) = cfgValue else {
            throw PreprocessingError.invalidValue(key: "pretrained_cfg", value: cfgValue.summary, reason: "not an object")
        }
        let fields = Fields(cfg)
        var name = "timm"
        if case .string(let arch)? = root["architecture"] { name += " " + arch }

        // input_size: [channels, height, width].
        var height = 224, width = 224
        if let value = fields.present("input_size") {
            guard case .array(let items) = value, items.count == 3 else {
                throw PreprocessingError.invalidValue(key: "input_size", value: value.summary,
                                                      reason: "expected [channels, height, width]")
            }
            let dims = try items.map { item -> Int in
                guard case .number(let d) = item, let n = exactInt(d) else {
                    throw PreprocessingError.invalidValue(key: "input_size", value: value.summary,
                                                          reason: "entries must be integers")
                }
                return n
            }
            guard dims[0] == 3 else {
                throw PreprocessingError.unsupported("input_size with \(dims[0]) channels (only RGB)")
            }
            height = dims[1]; width = dims[2]
            try checkEdge(height, key: "input_size"); try checkEdge(width, key: "input_size")
        }
        // Python truthiness: empty strings and zeros fall back to the defaults.
        var filter = ResampleFilter.bicubic
        if let value = fields.present("interpolation") {
            guard case .string(let s) = value else {
                throw PreprocessingError.invalidValue(key: "interpolation", value: value.summary, reason: "expected a string")
            }
            if !s.isEmpty {
                guard let f = ResampleFilter(interpolationName: s) else {
                    throw PreprocessingError.invalidValue(key: "interpolation", value: value.summary,
                                                          reason: "unknown interpolation")
                }
                filter = f
            }
        }
        let mean = try fields.channelList("mean") ?? [0.485, 0.456, 0.406]
        let std = try fields.channelList("std") ?? [0.229, 0.224, 0.225]
        if let zero = std.firstIndex(of: 0) {
            throw PreprocessingError.invalidValue(key: "std", value: fields.summary("std"), reason: "channel \(zero) is zero")
        }
        var cropPct = 0.875
        if let pct = try fields.number("crop_pct"), pct != 0 {
            guard pct > 0, pct.isFinite else {
                throw PreprocessingError.invalidValue(key: "crop_pct", value: fields.summary("crop_pct"),
                                                      reason: "must be a positive number")
            }
            cropPct = pct
        }
        var cropMode = "center"
        if case .string(let s)? = fields.present("crop_mode"), !s.isEmpty { cropMode = s }

        let scaledHeight = (Double(height) / cropPct).rounded(.down)
        let scaledWidth = (Double(width) / cropPct).rounded(.down)
        guard scaledHeight >= 1, scaledWidth >= 1,
              scaledHeight <= Double(maxConfiguredEdge), scaledWidth <= Double(maxConfiguredEdge) else {
            throw PreprocessingError.invalidValue(key: "crop_pct", value: fields.summary("crop_pct"),
                                                  reason: "gives a resize of \(scaledWidth)x\(scaledHeight)")
        }
        let resize: Resize
        switch cropMode {
        case "center":
            guard scaledHeight == scaledWidth else {
                // timm uses its own ResizeKeepRatio here, which this implementation does not reproduce.
                throw PreprocessingError.unsupported("timm crop_mode center with a non-square input_size")
            }
            resize = .shortestEdge(Int(scaledHeight))
        case "squash":
            resize = .exact(width: Int(scaledWidth), height: Int(scaledHeight))
        default:
            throw PreprocessingError.unsupported("timm crop_mode \(cropMode)")
        }
        return PreprocessingConfig(
            processorName: name, resize: resize, filter: filter,
            centerCrops: [CenterCrop(width: width, height: height, rounding: .torchvision)],
            rescale: .divideBy255InFloat32, mean: mean, std: std)
    }

    // MARK: - Helpers

    private static func readFile(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw PreprocessingError.unreadableFile(path: url.path, reason: "\(error)")
        }
    }

    private static func parseObject(_ data: Data, path: String) throws -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try JSONValue.parse(data)
        } catch {
            throw PreprocessingError.invalidJSON(path: path, reason: "\(error)")
        }
        guard case .object(let object) = value else {
            throw PreprocessingError.invalidJSON(path: path, reason: "top level is \(value.summary), not an object")
        }
        return object
    }

    fileprivate static func exactInt(_ d: Double) -> Int? {
        guard d.isFinite, d == d.rounded(), abs(d) <= 1e15 else { return nil }
        return Int(d)
    }

    fileprivate static func checkEdge(_ n: Int, key: String) throws {
        guard n >= 1 && n <= maxConfiguredEdge else {
            throw PreprocessingError.invalidValue(key: key, value: String(n),
                                                  reason: "sizes must be in 1...\(maxConfiguredEdge)")
        }
    }
}

/// Typed access to a config object; `null` counts as absent (transformers treats None as "use the default").
private struct Fields {
    let object: [String: JSONValue]
    init(_ object: [String: JSONValue]) { self.object = object }

    func present(_ key: String) -> JSONValue? {
        guard let value = object[key], value != .null else { return nil }
        return value
    }

    func summary(_ key: String) -> String { object[key]?.summary ?? "missing" }

    func bool(_ key: String) throws -> Bool? {
        guard let value = present(key) else { return nil }
        guard case .bool(let b) = value else {
            throw PreprocessingError.invalidValue(key: key, value: value.summary, reason: "expected true or false")
        }
        return b
    }

    func number(_ key: String) throws -> Double? {
        guard let value = present(key) else { return nil }
        guard case .number(let d) = value, d.isFinite else {
            throw PreprocessingError.invalidValue(key: key, value: value.summary, reason: "expected a number")
        }
        return d
    }

    func integer(_ key: String) throws -> Int? {
        guard let value = present(key) else { return nil }
        guard case .number(let d) = value, let n = PreprocessingConfig.exactInt(d) else {
            throw PreprocessingError.invalidValue(key: key, value: value.summary, reason: "expected an integer")
        }
        return n
    }

    /// transformers `get_size_dict`: an int is a square (`defaultToSquare`) or a shortest edge; a 2-list is
    /// (height, width); a dict must use `height`+`width` or `shortest_edge`.
    func sizeSpec(_ key: String, defaultToSquare: Bool) throws -> PreprocessingConfig.Resize? {
        guard let value = present(key) else { return nil }
        func edge(_ v: JSONValue) throws -> Int {
            guard case .number(let d) = v, let n = PreprocessingConfig.exactInt(d) else {
                throw PreprocessingError.invalidValue(key: key, value: value.summary, reason: "sizes must be integers")
            }
            try PreprocessingConfig.checkEdge(n, key: key)
            return n
        }
        switch value {
        case .number:
            let n = try edge(value)
            return defaultToSquare ? .exact(width: n, height: n) : .shortestEdge(n)
        case .array(let items) where items.count == 2:
            return .exact(width: try edge(items[1]), height: try edge(items[0]))
        case .object(let dict):
            let keys = Set(dict.keys)
            if keys == ["height", "width"], let h = dict["height"], let w = dict["width"] {
                return .exact(width: try edge(w), height: try edge(h))
            }
            if keys == ["shortest_edge"], let s = dict["shortest_edge"] {
                return .shortestEdge(try edge(s))
            }
            throw PreprocessingError.unsupported("\(key) with keys \(keys.sorted())")
        default:
            throw PreprocessingError.invalidValue(key: key, value: value.summary,
                                                  reason: "expected an integer, [height, width] or an object")
        }
    }

    /// transformers mean/std: a number (used for all three channels) or a list of three numbers.
    func channelTriple(_ key: String) throws -> [Double]? {
        guard let value = present(key) else { return nil }
        if case .number(let d) = value, d.isFinite { return [d, d, d] }
        return try channelList(key)
    }

    /// A list of three finite numbers, one per RGB channel; an empty list means "use the default".
    func channelList(_ key: String) throws -> [Double]? {
        guard let value = present(key) else { return nil }
        guard case .array(let items) = value else {
            throw PreprocessingError.invalidValue(key: key, value: value.summary, reason: "expected a list of numbers")
        }
        if items.isEmpty { return nil }  // falsy in Python: the default applies
        let numbers = try items.map { item -> Double in
            guard case .number(let d) = item, d.isFinite else {
                throw PreprocessingError.invalidValue(key: key, value: value.summary, reason: "expected numbers")
            }
            return d
        }
        guard numbers.count == 3 else {
            throw PreprocessingError.invalidValue(key: key, value: value.summary, reason: "expected 3 channels")
        }
        return numbers
    }
}
