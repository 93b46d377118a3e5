// The three image models PosterSim knows, and what every other module needs to know about them.

/// One of the image models PosterSim embeds posters with. This is the single source of truth for a
/// model's Hugging Face repository, distance metric, embedding size and names (the files it needs are the hub's
/// knowledge: `ModelName.files` in ModelHub).
///
/// Parsing (`init?(parsing:)`) accepts the canonical names `clip`, `resnet50`, `vgg16` and common
/// spellings (`CLIP`, `ResNet-50`, `resnet_50`, `VGG-16`, ...), case-insensitively.
public enum ModelName: String, Sendable, Codable, CaseIterable, Hashable, CustomStringConvertible {
    /// CLIP ViT-B/32 (image and text towers), `openai/clip-vit-base-patch32`.
    case clip
    /// ResNet-50 pooler output, `microsoft/resnet-50`.
    case resnet50
    /// VGG16 fc7 after ReLU, `timm/vgg16.tv_in1k`.
    case vgg16

    /// Parses a user-typed model name; nil when it names none of the models.
    public init?(parsing text: String) {
        // Drop separators so "ResNet-50", "resnet_50" and "resnet 50" all read "resnet50".
        let key = text.lowercased().filter { !"-_ .".contains($0) }
        switch key {
        case "clip", "clipvitb32", "clipvitbasepatch32": self = .clip
        case "resnet50", "resnet": self = .resnet50
        case "vgg16", "vgg": self = .vgg16
        default:
            // Also accept the repository id itself.
            guard let match = ModelName.allCases.first(where: { $0.repoID.lowercased() == text.lowercased() }) else {
                return nil
            }
            self = match
        }
    }

    public var description: String { rawValue }

    /// The Hugging Face repository the weights come from ("org/name").
    public var repoID: String {
        switch self {
        case .clip: "openai/clip-vit-base-patch32"
        case .resnet50: "microsoft/resnet-50"
        case .vgg16: "timm/vgg16.tv_in1k"
        }
    }

    /// How embeddings of this model are compared.
    public var metric: DistanceMetric {
        switch self {
        case .clip: .cosine
        case .resnet50, .vgg16: .euclidean
        }
    }

    /// Length of one embedding vector.
    public var embeddingDimension: Int {
        switch self {
        case .clip: 512
        case .resnet50: 2048
        case .vgg16: 4096
        }
    }

    /// The name as the original front end spells it (`model=CLIP|ResNet-50|VGG16`).
    public var apiName: String {
        switch self {
        case .clip: "CLIP"
        case .resnet50: "ResNet-50"
        case .vgg16: "VGG16"
        }
    }

    /// Parses the front end's spelling, then any spelling `ModelName(parsing:)` accepts.
    public init?(apiName text: String) {
        if let exact = ModelName.allCases.first(where: { $0.apiName == text }) {
            self = exact
        } else if let parsed = ModelName(parsing: text) {
            self = parsed
        } else {
            return nil
        }
    }
}
