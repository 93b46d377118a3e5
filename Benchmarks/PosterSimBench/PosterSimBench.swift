// `postersim-bench`: the Swift side of the benchmarks (`make bench-embed`, `make bench-server`, `make bench-ingest`),
// kept out of the product binary. Benchmarks print measurements; they are never tests.
import ArgumentParser

@main
struct PosterSimBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postersim-bench",
        abstract: "Benchmarks of PosterSim's engine and server (see Benchmarks/README.md).",
        subcommands: [EmbedBench.self, ServerStoreBench.self, ScaleBench.self])
}
