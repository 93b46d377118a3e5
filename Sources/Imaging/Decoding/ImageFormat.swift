/// The poster file formats PosterSim decodes.
public enum ImageFormat: String, Sendable, CaseIterable {
    case jpeg, png, webp
}
