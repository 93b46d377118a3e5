// `postersim-bench server-store`, a helper of `make bench-server`: a store of N movies with real titles (the original front end's title list)
// and random vectors, plus the movie ids as a Lua table for wrk.
import CommandSupport
import PosterSimCore
import ArgumentParser
import Foundation
import ModelHub
import Store

struct ServerStoreBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server-store", abstract: "Build a store of random vectors for the server benchmark.")

    @Option(help: "JSON list of {label: \"Title - YYYY-MM-DD\", id} (the original front end's titles).") var titles: String?
    @Option(help: "Movies in the store (titles beyond the list are generated).") var movies = 10_000
    @Option(help: "Write the movie ids here as a Lua table for wrk.") var idsOut: String?
    @Flag(help: "Use the dimensions of the models found by --model-dir (else 512, 2048, 4096).") var modelDimensions = false
    @Option(help: "Models (spaces) to fill, comma-separated.") var models = "clip,resnet50,vgg16"
    @OptionGroup var store: StoreOptions
    @OptionGroup var location: ModelLocationOptions

    struct Title: Decodable {
        let label: String
        let id: String
    }

    func run() async throws {
        var list: [Movie] = []
        var seen = Set<Int>()
        if let titles {
            let entries = try JSONDecoder().decode([Title].self, from: Data(contentsOf: URL(fileURLWithPath: titles)))
            for entry in entries {
                guard let id = Int(entry.id), seen.insert(id).inserted else { continue }
                var title = entry.label
                var date: String?
                if let dash = entry.label.range(of: " - ", options: .backwards) {
                    title = String(entry.label[..<dash.lowerBound])
                    date = String(entry.label[dash.upperBound...])
                }
                list.append(Self.movie(id: id, title: title, date: date, rank: list.count + 1))
                if list.count == movies { break }
            }
        }
        var next = (list.map(\.id).max() ?? 0) + 1
        while list.count < movies {
            list.append(Self.movie(id: next, title: "Generated Movie \(next)", date: "2000-01-01", rank: list.count + 1))
            next += 1
        }
        let store = try await store.open()
        for start in stride(from: 0, to: list.count, by: 1000) {
            try await store.upsertMovies(Array(list[start..<min(start + 1000, list.count)]))
        }
        var rng = SystemRandomNumberGenerator()
        for text in models.split(separator: ",") {
            let name = try ModelName.parseArgument(String(text))
            let dimension = modelDimensions ? try location.load(name).space.dimension : name.embeddingDimension
            let space = VectorSpace(name: name.rawValue, dimension: dimension, metric: name.metric)
            let identity = ModelIdentity(repo: "bench/random-\(name.rawValue)", weightsSHA256: String(repeating: "0", count: 64))
            try await store.registerSpace(space, identity: identity)
            for start in stride(from: 0, to: list.count, by: 500) {
                let batch = list[start..<min(start + 500, list.count)].map { movie in
                    EmbeddingInput(movieID: movie.id, vector: (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) })
                }
                try await store.upsertEmbeddings(batch, space: space.name, identity: identity)
            }
            print("\(name.rawValue): \(list.count) random \(dimension)-d vectors")
        }
        if let idsOut {
            let lua = "ids = {" + list.map { String($0.id) }.joined(separator: ",") + "}\n"
            try lua.write(toFile: idsOut, atomically: true, encoding: .utf8)
        }
        print("\(list.count) movies in \(self.store.db)")
    }

    static func movie(id: Int, title: String, date: String?, rank: Int) -> Movie {
        Movie(
            id: id, title: title, originalTitle: title, overview: "Overview of \(title).", releaseDate: date,
            posterPath: "/bench\(id).jpg", backdropPath: nil, genreIDs: [18, 35].filter { _ in id % 2 == 0 },
            originalLanguage: "en", popularity: Double(100_000 - rank) / 100, voteAverage: 6.5, voteCount: 100 + id % 900,
            adult: false, video: false, popularityRank: rank)
    }
}
