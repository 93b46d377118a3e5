// Shared test material: generated posters (encoded as PNG here), a deterministic embedder, temporary folders.
import Embedding
import PosterSimCore
import TestSupport
import CZlib
import Foundation
import Imaging
import Ingest
import Store
import Synchronization

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Tests/Fixtures, found from this file's path.
let fixturesDirectory: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

func fixtureImage(_ name: String) throws -> [UInt8] {
    let url = fixturesDirectory.appendingPathComponent("images").appendingPathComponent(name)
    guard let data = FileManager.default.contents(atPath: url.path) else { throw TestFailure("missing fixture \(name)") }
    return [UInt8](data)
}


/// RGB pixels of a generated poster: a two-colour gradient plus seeded noise, different for every seed.
func generatedPixels(seed: UInt64, width: Int, height: Int) -> [UInt8] {
    var rng = SplitMix64(seed: seed &* 7919 &+ 1)
    let a = (0..<3).map { _ in Double.random(in: 0...255, using: &rng) }
    let b = (0..<3).map { _ in Double.random(in: 0...255, using: &rng) }
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let t = Double(y) / Double(max(1, height - 1)) * 0.7 + Double(x) / Double(max(1, width - 1)) * 0.3
            for c in 0..<3 {
                let v = a[c] * (1 - t) + b[c] * t + Double(Int.random(in: -20...20, using: &rng))
                pixels[(y * width + x) * 3 + c] = UInt8(max(0, min(255, v)))
            }
        }
    }
    return pixels
}

/// A minimal PNG encoder (8-bit RGB, filter 0, zlib from the system): enough to serve generated posters.
func encodePNG(width: Int, height: Int, rgb: [UInt8]) -> [UInt8] {
    func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        let crc = body.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        return be32(UInt32(data.count)) + body + be32(crc)
    }
    var raw: [UInt8] = []
    raw.reserveCapacity((width * 3 + 1) * height)
    for y in 0..<height {
        raw.append(0)
        raw.append(contentsOf: rgb[(y * width * 3)..<((y + 1) * width * 3)])
    }
    var size = compressBound(uLong(raw.count))
    var compressed = [UInt8](repeating: 0, count: Int(size))
    let status = compressed.withUnsafeMutableBufferPointer { out in
        raw.withUnsafeBufferPointer { input in
            compress2(out.baseAddress, &size, input.baseAddress, uLong(input.count), 6)
        }
    }
    precondition(status == Z_OK, "compress2 failed")
    compressed.removeSubrange(Int(size)...)
    let header = be32(UInt32(width)) + be32(UInt32(height)) + [8, 2, 0, 0, 0]
    return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", compressed)
        + chunk("IEND", [])
}

/// A generated poster, PNG-encoded.
func generatedPoster(seed: UInt64, width: Int = 40, height: Int = 60) -> [UInt8] {
    encodePNG(width: width, height: height, rgb: generatedPixels(seed: seed, width: width, height: height))
}

/// Counts embedder calls across tasks.
final class CallLog: Sendable {
    private let state = Mutex<(batches: Int, images: Int, sizes: [Int], digests: [Int])>((0, 0, [], []))
    func record(_ n: Int) { state.withLock { $0.batches += 1; $0.images += n; $0.sizes.append(n) } }
    func record(digests: [Int]) { state.withLock { $0.digests += digests } }
    var batches: Int { state.withLock { $0.batches } }
    var images: Int { state.withLock { $0.images } }
    var batchSizes: [Int] { state.withLock { $0.sizes } }
    /// A digest of every image the model ran on, in order (see `ProjectionEmbedder.digest`).
    var digests: [Int] { state.withLock { $0.digests } }
}

struct InjectedEmbedderFailure: Error, CustomStringConvertible {
    var description: String { "injected embedder failure" }
}

/// A real, deterministic embedder for tests: a fixed seeded random projection of the preprocessed tensor to a small
/// dimension. It is a genuine function of the image (two different posters give different vectors), cheap enough
/// to run thousands of times, and can be told to fail after a number of batches to simulate a crash mid-run.
struct ProjectionEmbedder: EmbeddingModel {
    /// The product model whose space it stands in for (ingest itself only reads `space`).
    var name: ModelName { ModelName(rawValue: space.name) ?? .clip }
    let space: VectorSpace
    let identity: ModelIdentity
    let preprocessor: ImagePreprocessor
    let weights: [Float]
    let inputSize: Int
    let log = CallLog()
    /// Throw on the batch after this many successful ones.
    var failAfterBatches: Int? = nil
    /// Extra work per batch, seconds (to make batches slow enough to cancel in the middle of a run).
    var delayPerBatch: Double = 0

    static let side = (width: 16, height: 24)

    /// `clipLikeInput`: CLIP's preprocessing (shortest edge 224, bicubic, center crop 224, CLIP mean/std) instead of
    /// a tiny 16x24 resize, for throughput measurements with a realistic input size.
    init(
        name: String, dimension: Int, metric: DistanceMetric, seed: UInt64, weightsVersion: Int = 1,
        clipLikeInput: Bool = false
    ) {
        space = VectorSpace(name: name, dimension: dimension, metric: metric)
        identity = ModelIdentity(
            repo: "test/\(name)", weightsSHA256: String(format: "%048llx%016llx", seed, UInt64(weightsVersion)))
        if clipLikeInput {
            preprocessor = ImagePreprocessor(
                config: PreprocessingConfig(
                    processorName: "test \(name) (CLIP-like)", resize: .shortestEdge(224), filter: .bicubic,
                    centerCrops: [.init(width: 224, height: 224, rounding: .transformers)],
                    rescale: .multiplyInFloat64(factor: 1 / 255), mean: [0.48145466, 0.4578275, 0.40821073],
                    std: [0.26862954, 0.26130258, 0.27577711]))
            inputSize = 3 * 224 * 224
        } else {
            preprocessor = ImagePreprocessor(
                config: PreprocessingConfig(
                    processorName: "test \(name)", resize: .exact(width: Self.side.width, height: Self.side.height),
                    filter: .bilinear, centerCrops: [], rescale: .divideBy255InFloat32, mean: [0.5, 0.5, 0.5],
                    std: [0.25, 0.25, 0.25]))
            inputSize = 3 * Self.side.width * Self.side.height
        }
        // Another checkpoint version is another function.
        var rng = SplitMix64(seed: seed &* 1000 &+ UInt64(weightsVersion))
        weights = (0..<(dimension * inputSize)).map { _ in Float.random(in: -1...1, using: &rng) / 32 }
    }

    func embed(_ batch: ImageTensor) throws -> [[Float]] {
        if let limit = failAfterBatches, log.batches >= limit { throw InjectedEmbedderFailure() }
        if delayPerBatch > 0 { Thread.sleep(forTimeInterval: delayPerBatch) }
        let out = try project(batch)
        log.record(out.count)
        log.record(digests: (0..<batch.shape[0]).map { Self.digest(batch.values[($0 * inputSize)..<(($0 + 1) * inputSize)]) })
        return out
    }

    /// Identifies one preprocessed image: a hash of its values' bits.
    static func digest(_ values: ArraySlice<Float>) -> Int {
        var h = Hasher()
        for v in values { h.combine(v.bitPattern) }
        return h.finalize()
    }

    /// The digest the model would log for this poster.
    func digest(posterBytes: [UInt8]) throws -> Int {
        let tensor = try preprocessor.batch([try PosterDecoder().decode(posterBytes)])
        return Self.digest(tensor.values[...])
    }

    /// The projection itself: vector[d] = sum_j W[d, j] * x[j] over the flattened [3, H, W] input.
    private func project(_ batch: ImageTensor) throws -> [[Float]] {
        guard batch.shape.count == 4, batch.shape[1] * batch.shape[2] * batch.shape[3] == inputSize else {
            throw TestFailure("unexpected batch shape \(batch.shape)")
        }
        return (0..<batch.shape[0]).map { i in
            let base = i * inputSize
            return (0..<space.dimension).map { d in
                var sum: Float = 0
                let row = d * inputSize
                for j in 0..<inputSize { sum += weights[row + j] * batch.values[base + j] }
                return sum
            }
        }
    }

    /// What this embedder gives one encoded poster, computed without the pipeline (and not counted as a call).
    func expectedVector(posterBytes: [UInt8]) throws -> [Float] {
        let image = try PosterDecoder().decode(posterBytes)
        return try project(preprocessor.batch([image]))[0]
    }
}

/// The two test models: a cosine one and a euclidean one, like CLIP and ResNet-50.
func testEmbedders() -> [ProjectionEmbedder] {
    [
        ProjectionEmbedder(name: "clip", dimension: 8, metric: .cosine, seed: 11),
        ProjectionEmbedder(name: "resnet50", dimension: 12, metric: .euclidean, seed: 23),
    ]
}

/// Collects pipeline events.
final class EventLog: Sendable {
    private let events = Mutex<[IngestEvent]>([])
    func record(_ e: IngestEvent) { events.withLock { $0.append(e) } }
    var all: [IngestEvent] { events.withLock { $0 } }
}

/// A TMDB-shaped result object.
func movieJSON(id: Int, title: String, posterPath: String?) -> [String: Any] {
    var m: [String: Any] = [
        "id": id, "title": title, "original_title": title, "overview": "Overview of \(title)",
        "release_date": "20\(10 + id % 15)-0\(1 + id % 9)-1\(id % 10)", "backdrop_path": "/bd\(id).jpg",
        "genre_ids": [18, 28 + id % 3], "original_language": id % 4 == 0 ? "fr" : "en",
        "popularity": 1000.0 / Double(id + 1), "vote_average": 5.5 + Double(id % 40) / 10, "vote_count": 100 + id,
        "adult": false, "video": false,
    ]
    m["poster_path"] = posterPath ?? NSNull()
    return m
}

/// Checks that every movie in `posters` has, in every space, exactly the vector its own poster gives (the nearest
/// stored vector to the expected one is that movie's, at distance ~0), and that each space holds `count` vectors.
func expectStoredVectors(
    store: any VectorStore, embedders: [ProjectionEmbedder], posters: [MovieID: [UInt8]], count: Int
) async throws {
    let stats = try await store.stats()
    for e in embedders {
        guard let s = stats.spaces.first(where: { $0.space.name == e.space.name }) else {
            throw TestFailure("no space \(e.space.name)")
        }
        guard s.vectors == count else { throw TestFailure("\(e.space.name): \(s.vectors) vectors, expected \(count)") }
        for (id, bytes) in posters {
            let expected = try e.expectedVector(posterBytes: bytes)
            let top = try await store.query(space: e.space.name, vector: expected, k: 1)
            guard let first = top.first, first.movieID == id else {
                throw TestFailure("\(e.space.name): nearest to movie \(id)'s poster is \(top.first.map { "\($0.movieID)" } ?? "none")")
            }
            let exact = e.space.metric == .cosine ? abs(first.score - 1) < 1e-5 : first.score < 1e-6 * max(1, expected.reduce(0) { $0 + $1 * $1 })
            guard exact else { throw TestFailure("\(e.space.name): movie \(id) stored vector differs (score \(first.score))") }
        }
    }
}

/// Runs `pipeline` and cancels it when its `cancelAt`-th event arrives, as a kill at that moment would stop it
/// (events come at every listing page, poster, batch and skip). The outcome is not checked: callers look at the store.
func runCancelled(_ pipeline: IngestPipeline, atEvent cancelAt: Int) async {
    let seen = Mutex(0)
    let handle = Mutex<Task<IngestSummary, any Error>?>(nil)
    let task = Task {
        try await pipeline.run { _ in
            if seen.withLock({ $0 += 1; return $0 }) == cancelAt { handle.withLock { $0?.cancel() } }
        }
    }
    handle.withLock { $0 = task }
    // The event may have come before the handle was set.
    if seen.withLock({ $0 }) >= cancelAt { task.cancel() }
    _ = try? await task.value
}
