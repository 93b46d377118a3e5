// What the hub needs to know of each model: the files of its repository.
import PosterSimCore

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

extension ModelName {
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

}
