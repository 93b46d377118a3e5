// `postersim-bench embed`: the Swift side of `make bench-embed` (Benchmarks/scripts/bench_embed.py runs it next to
// PyTorch and ONNX Runtime and prints the ratios). Times only the forward pass, on a fixed preprocessed batch.
import CommandSupport
import PosterSimCore
import ArgumentParser
import Foundation
import Imaging
import ModelHub
import Models

struct EmbedBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Time the models' forward pass (ms per image) and report resident memory.",
        discussion: """
            Loads every listed model first (so the memory figure is for all of them loaded), then for each model \
            and batch size runs --warmup untimed batches and then timed batches until both --min-runs and \
            --min-seconds are reached, and reports the median. The input is a deterministic pseudo-random image \
            batch; content does not change the speed. Use `make bench-embed` for the comparison with PyTorch and \
            ONNX Runtime.
            """)

    @Option(help: "Comma-separated models.", transform: { text in try text.split(separator: ",").map { try ModelName.parseArgument(String($0)) } })
    var models: [ModelName] = ModelName.allCases

    @Option(help: "Comma-separated batch sizes.", transform: { text in
        try text.split(separator: ",").map {
            guard let value = Int($0), value >= 1 else { throw ValidationError("bad batch size \($0)") }
            return value
        }
    })
    var batches: [Int] = [1, 8]

    @Option(help: "Threads for the kernels (runs the command with OMP_NUM_THREADS set to it).")
    var threads: Int?

    @Option(help: "Untimed batches before timing.")
    var warmup = 2

    @Option(help: "Minimum timed batches.")
    var minRuns = 10

    @Option(help: "Minimum timed seconds per model and batch size.")
    var minSeconds = 5.0

    @Flag(help: "Print JSON lines: {\"model\", \"precision\", \"batch\", \"ms_per_image\", \"ms_per_image_min\", \"cpu_ms_per_image\", \"runs\"} and one {\"memory\": …}.")
    var json = false

    @Option(name: .customLong("decode"), parsing: .upToNextOption,
            help: "Poster files: also time decoding them and each model's preprocessing (ms per image, one thread).")
    var posterFiles: [String] = []

    @OptionGroup var location: ModelLocationOptions

    func run() throws {
        if let threads, ProcessInfo.processInfo.environment["OMP_NUM_THREADS"] != String(threads) {
            // libgomp reads OMP_NUM_THREADS once, when it is loaded (before main), so setting it here would not
            // change oneDNN's thread count: start this command again with it set.
            setenv("OMP_NUM_THREADS", String(threads), 1)
            let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
            execv("/proc/self/exe", arguments)
            throw ValidationError("--threads: cannot restart with OMP_NUM_THREADS=\(threads) (errno \(errno))")
        }
        let loaded = try models.map { try location.load($0) }
        let loadedRSS = ProcessMemory.read()
        for embedder in loaded {
            for batch in batches {
                let input = try syntheticBatch(embedder.preprocessor, count: batch)
                for _ in 0..<warmup { _ = try embedder.embed(input) }
                var times: [Double] = []
                let cpuStarted = ProcessCPU.milliseconds()
                let started = DispatchTime.now().uptimeNanoseconds
                while times.count < minRuns || Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 < minSeconds {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    _ = try embedder.embed(input)
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                }
                // CPU time of the whole process (all threads, spin-waits included) per image: on a shared machine
                // it shows how much of the wall time was work and how much waiting for a core.
                let cpuPerImage = (ProcessCPU.milliseconds() - cpuStarted) / Double(times.count * batch)
                times.sort()
                let median = times[times.count / 2] / Double(batch), fastest = times[0] / Double(batch)
                // Resident memory after the runs: what this model and batch size leave behind (workspaces, heap).
                let resident = ProcessMemory.read().resident
                if json {
                    print(#"{"model": "\#(embedder.name.rawValue)", "precision": "\#(embedder.precision)", "batch": \#(batch), "ms_per_image": \#(median), "ms_per_image_min": \#(fastest), "cpu_ms_per_image": \#(cpuPerImage), "runs": \#(times.count), "rss_bytes": \#(resident)}"#)
                } else {
                    print("\(embedder.name.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(embedder.precision) "
                          + "batch \(batch): "
                          + String(format: "%.1f ms/image (median of %d, fastest %.1f), %d MiB resident after",
                                   median, times.count, fastest, resident / 1_048_576))
                }
            }
        }
        if !posterFiles.isEmpty { try timePreparation(loaded) }
        let final = ProcessMemory.read()
        if json {
            print(#"{"memory": {"loaded_rss_bytes": \#(loadedRSS.resident), "peak_rss_bytes": \#(final.peak)}}"#)
        } else {
            print("memory: \(loadedRSS.resident / 1_048_576) MiB resident after loading, peak \(final.peak / 1_048_576) MiB")
        }
    }

    /// What the ingest pipeline does to a poster before the models see it: decode once, then each model's
    /// preprocessing. Median over `--min-runs` passes through the files, per image.
    private func timePreparation(_ loaded: [PosterEmbeddingModel]) throws {
        let files = try posterFiles.map { try Data(contentsOf: URL(fileURLWithPath: $0)).map { $0 } }
        let decoder = PosterDecoder()
        func median(_ body: () throws -> Void) rethrows -> Double {
            var times: [Double] = []
            for _ in 0..<max(minRuns, 1) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6 / Double(files.count))
            }
            return times.sorted()[times.count / 2]
        }
        var images: [RGBImage] = []
        let decode = try median { images = try files.map { try decoder.decode($0) } }
        var rows: [(String, Double)] = [("decode", decode)]
        for embedder in loaded {
            rows.append(("preprocess \(embedder.name.rawValue)",
                         try median { for image in images { _ = try embedder.preprocessor.tensor(for: image) } }))
        }
        for (step, ms) in rows {
            if json {
                print(#"{"step": "\#(step)", "ms_per_image": \#(ms), "images": \#(files.count)}"#)
            } else {
                print("\(step.padding(toLength: 20, withPad: " ", startingAt: 0)) " + String(format: "%.2f ms/image", ms))
            }
        }
    }

    /// A reproducible batch: pseudo-random RGB images through the model's own preprocessing.
    private func syntheticBatch(_ preprocessor: ImagePreprocessor, count: Int) throws -> ImageTensor {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let images = (0..<count).map { _ in
            RGBImage(width: 300, height: 450, pixels: (0..<(300 * 450 * 3)).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 56)
            })
        }
        return try preprocessor.batch(images)
    }
}

/// User plus system CPU time of this process so far (all threads), from getrusage.
enum ProcessCPU {
    static func milliseconds() -> Double {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        func ms(_ t: timeval) -> Double { Double(t.tv_sec) * 1e3 + Double(t.tv_usec) / 1e3 }
        return ms(usage.ru_utime) + ms(usage.ru_stime)
    }
}

/// Resident and peak resident memory of this process, from /proc/self/status (Linux).
enum ProcessMemory {
    static func read() -> (resident: Int, peak: Int) {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
        func kibibytes(_ key: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return 0 }
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return (kibibytes("VmRSS"), kibibytes("VmHWM"))
    }
}
