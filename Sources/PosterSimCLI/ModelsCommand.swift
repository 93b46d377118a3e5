// `postersim models fetch` and `postersim models list`: get the model files into the Hugging Face cache
// and show where each model resolves.
import CommandSupport
import PosterSimCore
import ArgumentParser
import Foundation
import ModelHub

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "Download the image models and show where they are.",
        discussion: """
            PosterSim uses three models, each from a Hugging Face repository:
              clip      openai/clip-vit-base-patch32   (512-d, cosine)
              resnet50  microsoft/resnet-50            (2048-d, euclidean)
              vgg16     timm/vgg16.tv_in1k             (4096-d, euclidean)

            Files are kept in the Hugging Face cache, the same one Python's transformers and \
            huggingface_hub use, so a model downloaded by either is found by the other. The cache is \
            $HF_HUB_CACHE if set, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else \
            ~/.cache/huggingface/hub. Inside it each model has models--ORG--NAME/ with refs/main (the commit \
            'main' pointed to), snapshots/<commit>/<file> and blobs/.

            Environment:
            \(ModelsCommand.environmentHelp)

            Instead of the cache, any command that loads a model accepts --model-dir NAME=PATH, a folder \
            holding the repository's files (config.json, model.safetensors, ...).
            """,
        subcommands: [Fetch.self, List.self])

    static var environmentHelp: String {
        HubSettings.environmentVariables.map { "  \($0.name.padding(toLength: 24, withPad: " ", startingAt: 0))\($0.meaning)" }
            .joined(separator: "\n")
    }


    static func writeStandardError(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    struct Fetch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download model files into the Hugging Face cache.",
            discussion: """
                Downloads each file the model needs from $HF_ENDPOINT (default https://huggingface.co) into \
                the cache. Files already complete in the cache are not downloaded again; an interrupted \
                download resumes where it stopped. Every file is checked against the checksum the Hub \
                announces before it is installed. Set HF_TOKEN for gated or private repositories. With \
                HF_HUB_OFFLINE=1 nothing is downloaded: the command only checks that the cache has the files.
                """)

        @Option(
            name: .customLong("model"),
            help: "Model to fetch: clip, resnet50 or vgg16 (repeat for several; default: all three).",
            transform: ModelName.parseArgument)
        var models: [ModelName] = []

        @Option(help: "Branch, tag or commit hash of the repositories.")
        var revision: String = "main"

        @Flag(help: "Print a JSON report on standard output.")
        var json = false

        func run() async throws {
            let settings = HubSettings.fromProcessEnvironment()
            let selected = models.isEmpty ? ModelName.allCases : models.uniqued()
            let printer = ProgressPrinter(interactive: isatty(STDERR_FILENO) == 1)
            var reports: [FetchReport] = []
            var failures: [FetchFailure] = []
            try await HubClient.withClient(settings: settings) { client in
                for model in selected {
                    printer.begin(model: model)
                    do {
                        let report = try await client.fetch(model, revision: revision) { printer.handle($0) }
                        printer.end(report: report)
                        reports.append(report)
                    } catch {
                        printer.fail(model: model, error: error)
                        failures.append(FetchFailure(model: model, error: "\(error)"))
                    }
                }
            }
            if json {
                print(try encodeJSON(FetchOutput(fetched: reports, failed: failures)))
            }
            if !failures.isEmpty { throw ExitCode.failure }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show where each model resolves and which of its files are present.",
            discussion: """
                Never uses the network. For each model: its repository, where it resolves (a --model-dir \
                folder, else the cache snapshot that refs/<revision> points to), the files present and \
                missing, their total size and the sha256 of the weights (model.safetensors), which \
                identifies the exact weights embeddings were made with.
                """)

        @Option(
            name: .customLong("model"), help: "Model to show (repeat for several; default: all three).",
            transform: ModelName.parseArgument)
        var models: [ModelName] = []

        @Option(
            name: .customLong("model-dir"),
            help: "Use the model files in a folder instead of the cache, as NAME=PATH (repeatable).")
        var modelDirectories: [String] = []

        @Option(help: "Branch, tag or commit hash to look up in the cache.")
        var revision: String = "main"

        @Flag(help: "Re-hash the weights instead of trusting the checksum-verified blob names in the cache.")
        var verify = false

        @Flag(help: "Print JSON on standard output.")
        var json = false

        func run() async throws {
            let resolver: ModelResolver
            do {
                resolver = try ModelResolver(
                    settings: HubSettings.fromProcessEnvironment(), modelDirectoryArguments: modelDirectories)
            } catch {
                throw ValidationError("\(error)")
            }
            let selected = models.isEmpty ? ModelName.allCases : models.uniqued()
            var inventories: [ModelInventory] = []
            for model in selected {
                var inventory = resolver.inventory(model, revision: revision)
                if verify, inventory.problem == nil, let hash = try? resolver.weightsSHA256(for: model, revision: revision, verify: true) {
                    inventory = inventory.replacingWeightsSHA256(hash)
                }
                inventories.append(inventory)
            }
            if json {
                print(try encodeJSON(inventories))
                return
            }
            print("Hugging Face cache: \(resolver.settings.cacheDirectory.path)")
            for inventory in inventories {
                print("")
                print(ModelsCommand.describe(inventory))
            }
        }
    }

    static func describe(_ inventory: ModelInventory) -> String {
        var lines = ["\(inventory.model)  \(inventory.repoID)  (\(inventory.model.embeddingDimension)-d, \(inventory.model.metric))"]
        if let source = inventory.source {
            let commit = inventory.commit.map { " \(inventory.revision) = \($0)" } ?? ""
            lines.append("  resolves to: \(inventory.directory)  [\(source)\(commit)]")
        } else {
            lines.append("  not available: \(inventory.problem ?? "unknown reason")")
        }
        let present = inventory.files.filter(\.present)
        lines.append("  files: \(present.count) of \(inventory.files.count) present, \(formatBytes(inventory.totalSize))")
        for file in inventory.files {
            let mark = file.present ? "ok" : (file.required ? "MISSING" : "absent")
            let size = file.size.map { formatBytes($0) } ?? ""
            lines.append("    \(mark.padding(toLength: 8, withPad: " ", startingAt: 0))\(file.name)  \(size)")
        }
        if let weights = inventory.weightsSHA256 {
            lines.append("  weights sha256: \(weights)")
        }
        return lines.joined(separator: "\n")
    }

    static func formatBytes(_ bytes: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}

struct FetchFailure: Codable {
    let model: ModelName
    let error: String
}

struct FetchOutput: Codable {
    let fetched: [FetchReport]
    let failed: [FetchFailure]
}

extension Array where Element: Hashable {
    /// The elements in order, without repeats.
    fileprivate func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}

/// Draws fetch progress on standard error: a redrawn bar on a terminal, one line per event otherwise.
final class ProgressPrinter: @unchecked Sendable {
    private let interactive: Bool
    private let lock = NSLock()
    // Guarded by `lock`.
    private var lastDraw = Date.distantPast
    private var barVisible = false
    private var fileStart: (file: String, date: Date, bytes: Int64)? = nil

    init(interactive: Bool) {
        self.interactive = interactive
    }

    func begin(model: ModelName) {
        emit("\(model): \(model.repoID)\n")
    }

    func end(report: FetchReport) {
        let downloaded = report.files.filter { $0.status == .downloaded }.count
        let cached = report.files.filter { $0.status == .cached }.count
        emit(
            "\(report.model): \(downloaded) downloaded (\(ModelsCommand.formatBytes(report.bytesTransferred))), "
                + "\(cached) already cached -> \(report.snapshotDirectory)\n")
    }

    func fail(model: ModelName, error: any Error) {
        emit("\(model): FAILED: \(error)\n")
    }

    func handle(_ event: FetchEvent) {
        switch event {
        case .checking:
            break
        case let .downloading(_, file, done, total):
            lock.lock()
            let now = Date()
            var isNewFile = false
            if fileStart?.file != file {
                fileStart = (file, now, done)
                isNewFile = true
            }
            guard interactive else {
                lock.unlock()
                if isNewFile {
                    let size = total.map { " (\(ModelsCommand.formatBytes($0)))" } ?? ""
                    let resumed = done > 0 ? ", resuming at \(ModelsCommand.formatBytes(done))" : ""
                    emit("  downloading \(file)\(size)\(resumed)\n")
                }
                return
            }
            let finished = total.map { done >= $0 } ?? false
            guard finished || now.timeIntervalSince(lastDraw) >= 0.1 else {
                lock.unlock()
                return
            }
            lastDraw = now
            barVisible = true
            let line = bar(file: file, done: done, total: total, now: now)
            lock.unlock()
            ModelsCommand.writeStandardError("\r\(line)\u{1B}[K")
        case let .retrying(_, file, attempt, delay, reason):
            emit("  \(file): \(reason); retry \(attempt) in \(String(format: "%.1f", delay)) s\n")
        case let .finished(result):
            switch result.status {
            case .downloaded:
                emit("  \(result.file): downloaded \(ModelsCommand.formatBytes(result.size ?? 0))\n")
            case .cached:
                emit("  \(result.file): already in cache\n")
            case .absent:
                emit("  \(result.file): not in this repository (optional)\n")
            }
        }
    }

    /// Writes a line, first ending a bar that is being redrawn.
    private func emit(_ text: String) {
        lock.lock()
        let clear = barVisible
        barVisible = false
        lock.unlock()
        ModelsCommand.writeStandardError((clear ? "\r\u{1B}[K" : "") + text)
    }

    private func bar(file: String, done: Int64, total: Int64?, now: Date) -> String {
        let width = 30
        var rate = ""
        if let start = fileStart, now.timeIntervalSince(start.date) > 0.5 {
            let perSecond = Double(done - start.bytes) / now.timeIntervalSince(start.date)
            rate = "  \(ModelsCommand.formatBytes(Int64(perSecond)))/s"
        }
        guard let total, total > 0 else {
            return "  \(file)  \(ModelsCommand.formatBytes(done))\(rate)"
        }
        let fraction = min(1, Double(done) / Double(total))
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let percent = String(format: "%3.0f%%", fraction * 100)
        return "  \(file)  [\(bar)] \(percent)  \(ModelsCommand.formatBytes(done))/\(ModelsCommand.formatBytes(total))\(rate)"
    }
}
