import ArgumentParser
import CommandSupport
import Foundation
import PosterSimCore
import Store

/// `postersim check`: are the stored neighbour lists what exact scans give?
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check that each model's stored neighbour lists agree with exact search.",
        discussion: """
            Queries by movie id are answered from neighbour lists that the store keeps as vectors are written. This \
            compares every list (or --sample of them) with an exact scan and counts lists missing for current \
            vectors. --repair builds the missing lists (a store written before lists existed), in transactions of \
            a few hundred movies, so an interrupted repair keeps what it finished. Exits with status 1 when a list \
            disagrees.
            """)

    @Option(
        name: .customLong("model"), help: "Only these models (repeatable; default: every model in the store).",
        transform: ModelName.parseArgument)
    var models: [ModelName] = []
    @Option(help: "Compare about this many lists per model with an exact scan (default: all).") var sample: Int?
    @Flag(help: "Build the lists that current vectors lack before checking.") var repair = false
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var store: StoreOptions

    func validate() throws {
        if let sample, sample < 1 { throw ValidationError("--sample must be at least 1") }
    }

    struct Report: Encodable {
        var built: [String: Int]
        var spaces: [NeighbourListCheck]
        var consistent: Bool
    }

    func run() async throws {
        let opened = try await store.open()
        guard let lists = opened as? any NeighbourListStore else {
            throw ValidationError("\(store.location) keeps no neighbour lists (the PostgreSQL store does not yet)")
        }
        let stats = try await opened.stats()
        let wanted = models.isEmpty ? Set(stats.spaces.map(\.space.name)) : Set(models.map(\.rawValue))
        var report = Report(built: [:], spaces: [], consistent: true)
        let tty = isatty(STDERR_FILENO) == 1 && !json
        for space in stats.spaces.map(\.space.name).sorted() where wanted.contains(space) {
            if repair {
                report.built[space] = try await lists.buildMissingNeighbourLists(space: space, batch: 256) { done, total in
                    guard tty, total > 0 else { return }
                    FileHandle.standardError.write(Data("\r\(space): building lists \(done)/\(total)   ".utf8))
                }
                if tty { FileHandle.standardError.write(Data("\n".utf8)) }
            }
            let check = try await lists.checkNeighbourLists(space: space, sample: sample)
            report.spaces.append(check)
            report.consistent = report.consistent && check.isConsistent
        }
        if repair { await StoreOptions.writeIndexFile(of: opened) }
        if json {
            print(try encodeJSON(report))
        } else {
            for c in report.spaces {
                let missing = c.vectors - c.lists
                var line = "\(c.space): \(c.vectors) vectors, \(c.lists) lists"
                if let built = report.built[c.space], built > 0 { line += " (\(built) built now)" }
                if missing > 0 { line += ", \(missing) missing (queries by id scan for those; --repair builds them)" }
                line += "; \(c.checked) checked against exact search: "
                line += c.isConsistent ? "all agree" : "\(c.mismatched) disagree (e.g. movies \(c.mismatchedExamples)), \(c.dangling) dangling"
                print(line)
            }
        }
        if !report.consistent { throw ExitCode(1) }
    }
}
