// The three image models PosterSim knows, and everything other modules need to know about them.

/// How two embeddings of a model are compared, and what a match's `score` means (Pinecone's convention, so a front end
/// shows the same numbers): `cosine` scores are cosine similarities (higher is closer, sorted descending);
/// `euclidean` scores are squared euclidean distances (lower is closer, sorted ascending).
///
/// The one metric type of the package: a model names its metric here and the store's vector spaces use the same
/// value (the `Store` module re-exports it). Raw values are what stores keep in `vector_space.metric` and what the
/// HTTP API's `/api/models` serves.
public enum DistanceMetric: String, Sendable, Codable, CaseIterable, Hashable, CustomStringConvertible {
    case cosine
    case euclidean

    /// True when a higher score means a closer match.
    public var higherIsCloser: Bool { self == .cosine }

    public var description: String { rawValue }
}

/// The files a model needs from its Hugging Face repository.
///
/// Guarantees: `required` and `optional` are disjoint; every name in `oneOfGroups` is in `optional`.
/// A folder satisfies the set when it has every required file and, if `oneOfGroups` is not empty,
/// every file of at least one group.
public struct ModelFileSet: Sendable, Equatable {
    /// Files that must be present.
    public let required: [String]
    /// Files fetched when the repository has them; individually optional.
    public let optional: [String]
    /// Alternatives of which at least one must be complete (for CLIP: a BPE vocabulary either as
    /// `vocab.json` + `merges.txt` or as a single `tokenizer.json`).
    public let oneOfGroups: [[String]]

    /// Every file worth fetching, required first.
    public var all: [String] { required + optional }

    /// The names to report as missing for a folder holding `present`; empty when the set is satisfied.
    /// For an unsatisfied `oneOfGroups` the first group's missing files are named, joined with " or "
    /// for the other alternatives.
    public func missing(present: Set<String>) -> [String] {
        var missing = required.filter { !present.contains($0) }
        if !oneOfGroups.isEmpty, !oneOfGroups.contains(where: { $0.allSatisfy(present.contains) }) {
            missing.append(oneOfGroups.map { $0.joined(separator: "+") }.joined(separator: " or "))
        }
        return missing
    }
}

/// One of the image models PosterSim embeds posters with. This is the single source of truth for a
/// model's Hugging Face repository, files, distance metric and embedding size.
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

    /// The files this model needs.
    public var files: ModelFileSet {
        switch self {
        case .clip:
            ModelFileSet(
                required: ["config.json", "preprocessor_config.json", "model.safetensors"],
                optional: [
                    "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                ],
                oneOfGroups: [["vocab.json", "merges.txt"], ["tokenizer.json"]])
        case .resnet50:
            ModelFileSet(
                required: ["config.json", "preprocessor_config.json", "model.safetensors"], optional: [],
                oneOfGroups: [])
        case .vgg16:
            ModelFileSet(required: ["config.json", "model.safetensors"], optional: [], oneOfGroups: [])
        }
    }

    /// The file holding the weights; its sha256 identifies the model's weights.
    public var weightsFile: String { "model.safetensors" }

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
}
