import ArgumentParser
import Ingest

/// How `ingest` and `sync` batch their work: images per forward pass, vectors per store transaction.
struct BatchOptions: ParsableArguments {
    @Option(help: "Images per forward pass (and per store transaction unless --write-batch says more).")
    var batchSize = 8
    @Option(help: """
        Vectors per store transaction and model (default: --batch-size). Bigger writes make neighbour-list upkeep \
        cheaper per film on big catalogues.
        """)
    var writeBatch: Int?

    func apply(to configuration: inout IngestConfiguration) {
        configuration.batchSize = batchSize
        configuration.writeBatchSize = writeBatch
    }
}
