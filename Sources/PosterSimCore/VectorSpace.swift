// Where vectors live and who made them.

/// A named vector space: every embedding stored in it has `dimension` Float32 components and is compared by `metric`.
/// The store never mixes spaces; a space's name, dimension and metric are fixed once created.
public struct VectorSpace: Sendable, Hashable, Codable, CustomStringConvertible {
    public let name: String
    public let dimension: Int
    public let metric: DistanceMetric

    public init(name: String, dimension: Int, metric: DistanceMetric) {
        self.name = name
        self.dimension = dimension
        self.metric = metric
    }

    public var description: String { "\(name) (\(dimension)-d, \(metric.rawValue))" }
}

/// The checkpoint that produced an embedding: the model repository and the sha256 of its weights. Two identities are
/// equal only if both parts are equal; embeddings made under another identity than a space's current one are stale.
public struct ModelIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    public let repo: String
    /// Lowercase hex sha256 of the weights file.
    public let weightsSHA256: String

    public init(repo: String, weightsSHA256: String) {
        self.repo = repo
        self.weightsSHA256 = weightsSHA256.lowercased()
    }

    /// Parses the stored form `repo@sha256:HEX`.
    public init?(storedForm: String) {
        guard let at = storedForm.range(of: "@sha256:", options: .backwards) else { return nil }
        let repo = String(storedForm[..<at.lowerBound])
        let hex = String(storedForm[at.upperBound...])
        guard !repo.isEmpty, !hex.isEmpty else { return nil }
        self.init(repo: repo, weightsSHA256: hex)
    }

    /// `repo@sha256:HEX`, the string kept with each embedding.
    public var storedForm: String { "\(repo)@sha256:\(weightsSHA256)" }
    public var description: String { storedForm }
}
