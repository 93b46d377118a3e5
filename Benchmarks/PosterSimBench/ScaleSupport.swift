// The pieces of `postersim-bench scale`: the synthetic catalogue, the serve probe and the .npy writer.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PosterSimCore
import Store
import TestSupport

/// A seeded catalogue that can give any film's metadata and vectors again without keeping them: everything about film
/// `id` comes from generators seeded with (seed, id), so the store, the exact check and faiss see the same vectors.
///
/// Vectors are clustered (films of a cluster share a centre, as posters of a franchise or a genre do), in each space's
/// real dimension; the euclidean spaces are clipped at zero like the models' post-ReLU features. Metadata follows
/// TMDB's shapes: release years 1920-2026 weighted to recent ones, one to three of TMDB's 19 genres, a handful of
/// languages with English most common, log-normal vote counts.
struct SyntheticCatalogue {
    let seed: UInt64
    let movies: Int
    let clusters: Int
    private var centres: [String: [[Float]]] = [:]
    private var noise: SplitMix64

    static let genres = [28, 12, 16, 35, 80, 99, 18, 10751, 14, 36, 27, 10402, 9648, 10749, 878, 10770, 53, 10752, 37]
    static let languages = ["en", "en", "en", "en", "fr", "ja", "es", "ko", "de", "it", "hi", "zh"]

    init(seed: UInt64, movies: Int) {
        self.seed = seed
        self.movies = movies
        clusters = max(8, movies / 200)
        noise = SplitMix64(seed: seed ^ 0x9e37_79b9)
    }

    func identity(_ space: VectorSpace) -> ModelIdentity {
        ModelIdentity(repo: "bench/synthetic-\(space.name)-seed\(seed)", weightsSHA256: String(repeating: "5", count: 64))
    }

    private func rng(_ id: Int, _ salt: UInt64) -> SplitMix64 {
        SplitMix64(seed: seed &* 0x1000_0000_01b3 ^ UInt64(id) &* 0x9e37_79b9_7f4a_7c15 ^ salt)
    }

    func votes(_ id: MovieID) -> Int {
        var r = rng(id, 1)
        return Int(exp(Self.normal(&r) * 1.6 + 4.5))
    }

    func movie(_ id: MovieID) -> Movie {
        var r = rng(id, 2)
        let year = 2026 - Int(pow(Double.random(in: 0..<1, using: &r), 2) * 106)
        let month = Int.random(in: 1...12, using: &r)
        let genreCount = Int.random(in: 1...3, using: &r)
        let genres = (0..<genreCount).map { _ in Self.genres[Int.random(in: 0..<Self.genres.count, using: &r)] }
        return Movie(
            id: id, title: "Synthetic Film \(id)", originalTitle: "Synthetic Film \(id)", overview: "A generated film.",
            releaseDate: String(format: "%04d-%02d-15", year, month), posterPath: "/synthetic/\(id).jpg",
            backdropPath: nil, genreIDs: Array(Set(genres)).sorted(),
            originalLanguage: Self.languages[Int.random(in: 0..<Self.languages.count, using: &r)],
            popularity: Double.random(in: 0..<500, using: &r), voteAverage: Double.random(in: 3..<9, using: &r),
            voteCount: votes(id), adult: false, video: false, popularityRank: id)
    }

    mutating func vector(_ id: MovieID, in space: VectorSpace) -> [Float] {
        if centres[space.name] == nil {
            var r = rng(0, 3 ^ UInt64(space.dimension))
            centres[space.name] = (0..<clusters).map { _ in (0..<space.dimension).map { _ in Float(Self.normal(&r)) } }
        }
        var r = rng(id, 4 ^ UInt64(space.dimension))
        let centre = centres[space.name]![Int.random(in: 0..<clusters, using: &r)]
        return centre.map { c in
            let x = c + Float(Self.normal(&r)) * 0.7
            return space.metric == .euclidean ? max(0, x) : x
        }
    }

    /// A query near a film's vector (as a new poster of the same film would be).
    mutating func perturbed(_ v: [Float]) -> [Float] {
        v.map { $0 + Float(Self.normal(&noise)) * 0.2 }
    }

    /// Filters on vote count that pass about 1% and 50% of the films (thresholds from the catalogue's own counts).
    func voteFilters() -> [(String, SearchFilter)] {
        let counts = (1...movies).map { votes($0) }.sorted()
        let median = counts[counts.count / 2]
        let top = counts[min(counts.count - 1, counts.count * 99 / 100)]
        return [("50%", SearchFilter(minVoteCount: median)), ("1%", SearchFilter(minVoteCount: top))]
    }

    static func normal(_ r: inout SplitMix64) -> Double {
        let u = Double.random(in: Double.ulpOfOne..<1, using: &r)
        let v = Double.random(in: 0..<1, using: &r)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
}

/// Starts `postersim serve --models none --cache-ttl 0` on a store and measures how long it takes to answer /healthz,
/// how much memory it then holds, and the whole-request time of `/api/get-similar-movies` for `ids` (one request at a
/// time over loopback, a new connection each: what a client sees, not only the store).
enum ServeProbe {
    struct Figures {
        var startup: Double
        var rss: Int
        var similarMs: [Double]
    }

    static func measure(binary: String, store: String, ids: [MovieID], apiModel: String) throws -> Figures {
        let port = 20_000 + Int(getpid() % 20_000)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "serve", "--db", store, "--models", "none", "--port", "\(port)", "--log-level", "warning", "--cache-ttl", "0",
        ]
        process.standardOutput = FileHandle.nullDevice
        let started = Date()
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        let url = URL(string: "http://127.0.0.1:\(port)/healthz")!
        while Date().timeIntervalSince(started) < 600 {
            if process.isRunning == false { throw CocoaError(.executableLoad) }
            if get(url) == 200 {
                let startup = Date().timeIntervalSince(started)
                let rss = residentBytes(pid: process.processIdentifier)
                var times: [Double] = []
                for id in ids {
                    let similar = URL(string: "http://127.0.0.1:\(port)/api/get-similar-movies?movieId=\(id)&model=\(apiModel)")!
                    let t0 = Date()
                    guard get(similar) == 200 else { throw CocoaError(.fileReadUnknown) }
                    times.append(Date().timeIntervalSince(t0) * 1000)
                }
                return Figures(startup: startup, rss: rss, similarMs: times)
            }
            usleep(20_000)
        }
        throw CocoaError(.executableLoad)
    }

    /// The status of a GET (0 when it failed).
    static func get(_ url: URL) -> Int {
        let done = DispatchSemaphore(value: 0)
        let status = LockedStatus()
        var request = URLRequest(url: url)
        request.timeoutInterval = 5
        URLSession.shared.dataTask(with: request) { _, response, _ in
            status.set((response as? HTTPURLResponse)?.statusCode ?? 0)
            done.signal()
        }.resume()
        done.wait()
        return status.value
    }

    /// A process's resident memory (`VmRSS`), or one part of it: `RssAnon` (allocated memory) or `RssFile` (mapped
    /// file pages, which the kernel can drop and read again).
    static func residentBytes(pid: Int32, field: String = "VmRSS") -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }
}

final class LockedStatus: @unchecked Sendable {
    private let lock = NSLock()
    private var status = 0
    func set(_ value: Int) { lock.withLock { status = value } }
    var value: Int { lock.withLock { status } }
}

/// NumPy's .npy format (version 1.0), float32 little-endian, C order: what faiss's Python side loads.
enum NPYWriter {
    static func write(rows: Int, dimension: Int, to path: String, row: (Int) -> [Float]) throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(dimension)), }"
        // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in \n.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xff), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        FileManager.default.createFile(atPath: path, contents: data)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        var chunk = Data()
        for r in 0..<rows {
            let v = row(r)
            precondition(v.count == dimension)
            v.withUnsafeBufferPointer { chunk.append(UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: dimension * 4)) }
            if chunk.count > 64 << 20 {
                try handle.write(contentsOf: chunk)
                chunk.removeAll(keepingCapacity: true)
            }
        }
        try handle.write(contentsOf: chunk)
    }
}
