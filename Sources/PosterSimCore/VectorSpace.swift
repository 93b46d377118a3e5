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

/// The checkpoint that produced an embedding and the precision it computed in: the model repository, the sha256 of
/// its weights and the `Precision`. Two identities are equal only if all three are equal; embeddings made under
/// another identity than a space's current one are stale (so vectors of another precision are never mixed in).
public struct ModelIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    public let repo: String
    /// Lowercase hex sha256 of the weights file.
    public let weightsSHA256: String
    /// The arithmetic the vectors were computed in.
    public let precision: Precision

    public init(repo: String, weightsSHA256: String, precision: Precision = .fp32) {
        self.repo = repo
        self.weightsSHA256 = weightsSHA256.lowercased()
        self.precision = precision
    }

    /// The same checkpoint computed at `precision`.
    public func at(_ precision: Precision) -> ModelIdentity {
        ModelIdentity(repo: repo, weightsSHA256: weightsSHA256, precision: precision)
    }

    /// Marks a precision other than fp32 in the stored form. fp32 has no suffix, so the stored form of every
    /// identity made before precisions existed is unchanged and its vectors stay current.
    static let precisionSuffix = ";precision="

    /// Parses the stored form: `repo@sha256:HEX` (fp32) or `repo@sha256:HEX;precision=NAME`. An unknown precision
    /// name does not parse.
    public init?(storedForm: String) {
        guard let at = storedForm.range(of: "@sha256:", options: .backwards) else { return nil }
        let repo = String(storedForm[..<at.lowerBound])
        var hex = String(storedForm[at.upperBound...])
        var precision = Precision.fp32
        if let marker = hex.range(of: Self.precisionSuffix) {
            guard let named = Precision(rawValue: String(hex[marker.upperBound...])), named != .fp32 else { return nil }
            precision = named
            hex = String(hex[..<marker.lowerBound])
        }
        guard !repo.isEmpty, !hex.isEmpty else { return nil }
        self.init(repo: repo, weightsSHA256: hex, precision: precision)
    }

    /// `repo@sha256:HEX`, plus `;precision=NAME` unless fp32: the string kept with each embedding.
    public var storedForm: String {
        let base = "\(repo)@sha256:\(weightsSHA256)"
        return precision == .fp32 ? base : base + Self.precisionSuffix + precision.rawValue
    }
    public var description: String { storedForm }

    private enum CodingKeys: String, CodingKey { case repo, weightsSHA256, precision }

    /// JSON written before precisions existed has no `precision`: it is fp32.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(repo: try container.decode(String.self, forKey: .repo),
                  weightsSHA256: try container.decode(String.self, forKey: .weightsSHA256),
                  precision: try container.decodeIfPresent(Precision.self, forKey: .precision) ?? .fp32)
    }

    /// fp32 identities encode exactly as before (no `precision` key).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(repo, forKey: .repo)
        try container.encode(weightsSHA256, forKey: .weightsSHA256)
        if precision != .fp32 { try container.encode(precision, forKey: .precision) }
    }
}
