import ModelHub
import Models
import Store

/// A loaded model the server embeds uploads (and, for CLIP, text) with: the network and its preprocessing, the store
/// space its vectors live in, and the checkpoint identity.
public struct ServedModel: Sendable {
    public let name: ModelName
    public let model: PosterEmbeddingModel
    public let space: VectorSpace
    public let identity: ModelIdentity

    public init(name: ModelName, model: PosterEmbeddingModel, space: VectorSpace, identity: ModelIdentity) {
        self.name = name
        self.model = model
        self.space = space
        self.identity = identity
    }
}

extension ModelName {
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
