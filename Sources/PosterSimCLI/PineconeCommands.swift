// `postersim pinecone copy`: records of an index on any Pinecone-speaking server into this store.
import ArgumentParser
import CommandSupport
import Foundation
import Ingest
import Store

struct PineconeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pinecone", abstract: "Pinecone-compatible indexes.", subcommands: [PineconeCopyCommand.self])
}

struct PineconeCopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy one namespace of an index from a Pinecone-speaking server (Pinecone, Pinecone Local, another postersim serve) into this store.",
        discussion: """
            Pages through the source's list and fetch calls and upserts each page, one transaction a page. Interrupted, \
            it resumes where it stopped (a state file beside the store remembers the page). The index is created \
            with the source's dimension and metric unless it exists. The key is read from --api-key or PINECONE_API_KEY.
            """)

    @Option(help: "The source's control-plane URL (https://api.pinecone.io, http://host:port/pinecone).") var from: String
    @Option(help: "The source index.") var index: String
    @Option(help: ArgumentHelp("The source's API key (else PINECONE_API_KEY).", valueName: "key")) var apiKey: String?
    @Option(help: "The namespace to copy (default: the default namespace \"\").") var namespace = ""
    @Option(help: "The index in this store to copy into.") var toIndex: String
    @Option(help: "Records per list/fetch page.") var pageSize = 100
    @Option(help: "Where the resume state is kept (default: beside the store).") var stateFile: String?
    @Option(help: .hidden) var stopAfterPages: Int?
    @Flag(help: "Print a JSON summary.") var json = false
    @OptionGroup var store: StoreOptions

    func run() async throws {
        guard let key = apiKey ?? ProcessInfo.processInfo.environment["PINECONE_API_KEY"], !key.isEmpty else {
            throw ValidationError("give the source's key with --api-key or PINECONE_API_KEY")
        }
        guard (1...1000).contains(pageSize) else { throw ValidationError("--page-size must be between 1 and 1000") }
        let opened = try await store.open()
        guard let records = opened as? any RecordIndexStore else {
            throw ValidationError("this store keeps no Pinecone indexes")
        }
        let state = URL(fileURLWithPath: stateFile ?? defaultStatePath())
        let renderer = ProgressRenderer(unit: "vectors")
        let summary = try await PineconeSourceClient.withClient(controlURL: from, apiKey: key) { client in
            var copier = PineconeCopier(
                client: client, store: records, index: index, namespace: namespace, toIndex: toIndex, stateFile: state)
            copier.pageSize = pageSize
            copier.stopAfterPages = stopAfterPages
            copier.progress = { copied, total, elapsed in
                let rate = elapsed > 0 ? Double(copied) / elapsed : 0
                renderer.handle(
                    .progress(
                        IngestProgress(
                            completed: copied, total: total, embedded: copied, skipped: 0, elapsed: elapsed, rate: rate,
                            eta: rate > 0 ? Double(total - copied) / rate : nil)))
            }
            return try await copier.run()
        }
        FileHandle.standardError.write(Data("\n".utf8))
        if json {
            print(try encodeJSON(summary))
        } else {
            print("copied \(summary.copied) records of \(summary.index)/\"\(summary.namespace)\" into \(summary.toIndex) "
                + "(\(summary.destinationCount) there now, \(summary.pages) pages, "
                + String(format: "%.1f s", summary.seconds) + (summary.resumed ? ", resumed" : "") + ")")
        }
    }

    func defaultStatePath() -> String {
        let base: String
        switch store.location {
        case .sqlite(let path): base = path
        case .postgres: base = "./postersim"
        }
        let safe = "\(index)-\(toIndex)-\(namespace)".map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
        return base + ".pinecone-copy-" + String(safe) + ".json"
    }
}
