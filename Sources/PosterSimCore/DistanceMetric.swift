/// How two embeddings of a model are compared, and what a match's `score` means (Pinecone's convention, so a front end
/// shows the same numbers): `cosine` scores are cosine similarities (higher is closer, sorted descending);
/// `euclidean` scores are squared euclidean distances (lower is closer, sorted ascending).
///
/// The one metric type of the package: a model names its metric here and the store's vector spaces use the same
/// value. Raw values are what stores keep in `vector_space.metric` and what the HTTP API's `/api/models` serves.
public enum DistanceMetric: String, Sendable, Codable, CaseIterable, Hashable, CustomStringConvertible {
    case cosine
    case euclidean

    /// True when a higher score means a closer match.
    public var higherIsCloser: Bool { self == .cosine }

    public var description: String { rawValue }
}
